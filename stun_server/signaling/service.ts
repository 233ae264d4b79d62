/**
 * The signaling service on TCP, joined from its parts through one entry point,
 * {@linkcode SignalingService.accept}: admission (`admission.ts`), each connection's own state
 * machine (`connection.ts`), control messages (`control.ts`), the relay (`relay.ts`) and the
 * heartbeat sweep (`liveness.ts`). This file owns only what joins them: the set of open
 * connections, closing (last words, unregistering, telling peers, lingering) and shutdown.
 *
 * Every clock read, timer and random byte comes from the injected {@linkcode Runtime}, and
 * connections arrive as {@linkcode StreamConn}s, so the same code serves real sockets
 * (`systemRuntime`) or an in-memory network on virtual time (`testing/virtual_runtime.ts`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import type { Runtime, StreamConn, StreamListener } from "../../shared/runtime/mod.ts";
import {
  DEFAULT_HEARTBEAT_MS,
  type ErrorCode,
  FRAME_KIND_CONTROL,
  FRAME_KIND_CREDIT,
  FRAME_KIND_RELAY,
  MAX_FRAME_LENGTH,
  MAX_PROTOCOL_ERRORS,
  MAX_RELAY_PAYLOAD,
  REGISTRATION_TIMEOUT_MS,
  type ServerMessage,
} from "../../shared/signaling/mod.ts";
import { type FrameReaderEnd, readFrames } from "../frame_reader.ts";
import { normalizeHost } from "../host_address.ts";
import { ServerMetrics } from "../metrics.ts";
import { Registry } from "../registry.ts";
import { ServerLog } from "../server_log.ts";
import { SERVER_VERSION } from "../version.ts";
import { sourcePrefixes } from "../address_prefix.ts";
import { Admission, closeQuietly, PENDING_CONNECTION_ALLOWANCE } from "./admission.ts";
import { ClientConnection, type ConnectionEvents } from "./connection.ts";
import type { CloseHow, SignalingContext, SignalingLimits } from "./context.ts";
import { ControlHandler } from "./control.ts";
import { acceptLoop } from "./listener.ts";
import { Relay, RELAY_CREDIT_BYTES } from "./relay.ts";
import { CONTROL_SLACK_BYTES, LivenessSweep } from "./liveness.ts";
import type { RegisteredClient } from "./registered_client.ts";
import type { RelayBudget } from "../relay_budget.ts";
import { type ClusterBus, LocalBus } from "../cluster/bus.ts";
import { ClusterRouter } from "../cluster/cluster_router.ts";

/** Grace for flushing a last error or bye before the socket is closed. */
const CLOSE_FLUSH_MS = 2000;
/** After the last words, how long the server waits for the client to close its side. */
const CLOSE_LINGER_MS = 2000;

/** Limits and settings of a {@linkcode SignalingService}. All but `runtime` have defaults. */
export interface SignalingServiceOptions {
  /** Clock, timers, randomness (and the network, for {@linkcode SignalingService.listen}). */
  runtime: Runtime;
  /** The STUN port announced in `registered` (default 54321). */
  stunPort?: number;
  /** Registry shared with the STUN service (default: a new one). */
  registry?: Registry<RegisteredClient>;
  /** Counters (default: new ones). */
  metrics?: ServerMetrics;
  /** Most registered clients (default 10,000). */
  maxClients?: number;
  /** Most open connections from one source address (default 64). */
  maxConnectionsPerAddress?: number;
  /** Relayed payload bytes per second per sending client (default 4 MiB/s). */
  relayBytesPerSecond?: number;
  /** Bytes that may wait for one receiver before relay frames to it are refused (default 1 MiB, at least 65,540). */
  relayQueueBytes?: number;
  /**
   * Relay window of a receiver that declared `relay-credit`: relay frame bytes written and not yet
   * acknowledged (default 64 KiB; 0 grants no credit).
   */
  relayCreditBytes?: number;
  /** Heartbeat interval in ms (default 10,000); dead after 2.5 intervals of silence. */
  heartbeatMs?: number;
  /** Time to complete registration in ms (default 10,000). */
  registrationTimeoutMs?: number;
  /** Control messages per second per connection (default 50) ... */
  controlMessagesPerSecond?: number;
  /** ... with this burst (default 100). */
  controlMessageBurst?: number;
  /** Most peers one client may be introduced to at once (default 1024). */
  maxBrokeredPeers?: number;
  /** Most connections open and not yet registered (default 1024); see `SignalingLimits`. */
  maxPendingConnections?: number;
  /** Most bits of the admission puzzle under load (default 16; 0: never ask one). */
  maxPuzzleBits?: number;
  /** A relay budget shared with the TURN relay (bytes per second over the whole server). */
  relayBudget?: RelayBudget;
  /** Logger (default category `["stun-server", "signaling"]`). */
  logger?: Logger;
  /** The cluster this server is a node of (default: none, a {@linkcode LocalBus}). */
  cluster?: ClusterBus;
}

/** Counters of a running {@linkcode SignalingService}. */
export interface SignalingStats {
  /** Open connections. */
  connections: number;
  /** Registered clients. */
  registered: number;
  /** Relay frames forwarded. */
  relayedFrames: number;
  /** Relay payload bytes forwarded. */
  relayedBytes: number;
  /** Relay frames refused (each answered with an `error`). */
  refusedFrames: number;
  /** Connections closed for protocol violations or refused registrations. */
  violationCloses: number;
}

/** Close reasons that count as violations in {@linkcode SignalingStats.violationCloses}. */
const VIOLATION_REASONS = new Set([
  "protocol-error",
  "frame-too-large",
  "not-registered",
  "auth-failed",
]);

/**
 * The signaling service: hand it connections with {@linkcode SignalingService.accept} (or a
 * listener with {@linkcode SignalingService.listen}).
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const service = new SignalingService({ runtime: systemRuntime, stunPort: 54321 });
 * const listener = systemRuntime.net.listen({ hostname: "127.0.0.1", port: 0 });
 * service.listen(listener);
 * console.log(listener.addr.port > 0); // true
 * await service.shutdown();
 * ```
 */
export class SignalingService implements SignalingContext, ConnectionEvents {
  /** {@inheritDoc SignalingContext.runtime} */
  readonly runtime: Runtime;
  /** {@inheritDoc SignalingContext.log} */
  readonly log: ServerLog;
  /** {@inheritDoc SignalingContext.metrics} */
  readonly metrics: ServerMetrics;
  /** {@inheritDoc SignalingContext.registry} */
  readonly registry: Registry<RegisteredClient>;
  /** {@inheritDoc SignalingContext.limits} */
  readonly limits: SignalingLimits;
  /** The relay budget shared with the TURN relay, if any. */
  readonly relayBudget: RelayBudget | undefined;
  /** {@inheritDoc SignalingContext.cluster} */
  readonly cluster: ClusterRouter<RegisteredClient>;
  readonly #connections = new Set<ClientConnection>();
  /** Open connections not registered yet (pruned lazily of registered and closing ones). */
  readonly #pending = new Set<ClientConnection>();
  /** The runtime's clock, one function for every connection's rate limit. */
  readonly #clock = () => this.runtime.now();
  readonly #admission: Admission;
  readonly #control: ControlHandler;
  readonly #relay: Relay;
  readonly #liveness: LivenessSweep;
  readonly #listeners: StreamListener[] = [];
  readonly #acceptLoops: Promise<void>[] = [];
  #serial = 0;
  #shuttingDown = false;

  /** @param options Runtime, limits, and optionally a shared registry, metrics and logger. */
  constructor(options: SignalingServiceOptions) {
    this.runtime = options.runtime;
    const clock = () => options.runtime.now();
    this.log = new ServerLog(options.logger ?? getLogger(["stun-server", "signaling"]), clock);
    this.metrics = options.metrics ?? new ServerMetrics(SERVER_VERSION, clock);
    this.registry = options.registry ?? new Registry<RegisteredClient>();
    const relayRate = options.relayBytesPerSecond ?? 4 * 1024 * 1024;
    this.relayBudget = options.relayBudget;
    this.limits = {
      stunPort: options.stunPort ?? 54321,
      maxClients: options.maxClients ?? 10_000,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 64,
      relayBytesPerSecond: relayRate,
      relayBurstBytes: Math.max(relayRate, MAX_RELAY_PAYLOAD),
      relayQueueBytes: Math.max(options.relayQueueBytes ?? 1024 * 1024, MAX_FRAME_LENGTH + 4),
      relayCreditBytes: Math.max(0, options.relayCreditBytes ?? RELAY_CREDIT_BYTES),
      heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      registrationTimeoutMs: options.registrationTimeoutMs ?? REGISTRATION_TIMEOUT_MS,
      controlMessagesPerSecond: options.controlMessagesPerSecond ?? 50,
      controlMessageBurst: options.controlMessageBurst ?? 100,
      maxBrokeredPeers: options.maxBrokeredPeers ?? 1024,
      maxPendingConnections: options.maxPendingConnections ?? PENDING_CONNECTION_ALLOWANCE,
      maxPuzzleBits: options.maxPuzzleBits ?? 16,
    };
    this.#admission = new Admission(this);
    this.#control = new ControlHandler(this);
    this.#relay = new Relay(this);
    this.cluster = new ClusterRouter<RegisteredClient>(options.cluster ?? new LocalBus(), {
      get: (id) => this.registry.get(id),
      canBroker: (client) =>
        client.peers.size + this.cluster.remotePeerCount(client.id) < this.limits.maxBrokeredPeers,
      send: (client, message) => this.sendBounded(client.connection, message),
      deliverRelay: (client, from, payload) => this.#relay.deliver(client, from, payload),
      replace: (client, nonce) => {
        this.log.info("{client} replaced by a newer registration on another node", {
          client: client.connection.label,
        });
        this.close(client.connection, {
          reason: "replaced",
          bye: "replaced",
          byeRegistrationNonce: nonce,
          peerLeft: "replaced",
        });
      },
      now: () => this.runtime.wallClock(),
      askConsent: (callee, callerId, node, answer) =>
        this.#control.askConsent(callee, callerId, node, answer),
    }, this.runtime);
    this.#liveness = new LivenessSweep(this, this.#connections, (c) => this.#release(c));
    this.#liveness.start();
    this.metrics.setGauges({
      connected: () => this.#connections.size,
      registered: () => this.registry.size,
      queuedBytes: () => {
        let sum = 0;
        for (const connection of this.#connections) sum += connection.queue.queuedBytes;
        return sum;
      },
    });
  }

  /** Current counters. */
  get stats(): SignalingStats {
    let violations = 0;
    for (const reason of VIOLATION_REASONS) violations += this.metrics.closes.get(reason);
    return {
      connections: this.#connections.size,
      registered: this.registry.size,
      relayedFrames: this.metrics.relayFrames,
      relayedBytes: this.metrics.relayBytes,
      refusedFrames: this.metrics.relayRefused.total,
      violationCloses: violations,
    };
  }

  /** The open connections (for tests and the status page). */
  get connections(): ReadonlySet<ClientConnection> {
    return this.#connections;
  }

  /**
   * Serves connections from `listener` until shutdown (which closes it).
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../../shared/runtime/mod.ts";
   * const service = new SignalingService({ runtime: systemRuntime });
   * service.listen(systemRuntime.net.listen({ hostname: "127.0.0.1", port: 0 }));
   * await service.shutdown();
   * ```
   */
  listen(listener: StreamListener): void {
    this.#listeners.push(listener);
    this.#acceptLoops.push(
      acceptLoop(listener, (conn) => this.accept(conn), {
        runtime: this.runtime,
        log: this.log,
        stopped: () => this.#shuttingDown,
      }),
    );
  }

  /**
   * The entry point: takes one accepted connection, admits or refuses it, and serves it until
   * it closes.
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../../shared/runtime/mod.ts";
   * const service = new SignalingService({ runtime: systemRuntime });
   * declare const conn: import("../../shared/runtime/mod.ts").StreamConn;
   * service.accept(conn);
   * ```
   */
  accept(conn: StreamConn): void {
    if (this.#shuttingDown) {
      closeQuietly(conn);
      return;
    }
    const host = normalizeHost(conn.remoteAddr.hostname);
    if (this.#pending.size >= this.limits.maxPendingConnections && !this.#evictPendingFor(host)) {
      this.metrics.connections.inc("server-busy");
      this.log.refusal("connection-busy", "refused a connection from {host}: too many pending", {
        host,
        pending: this.#pending.size,
      });
      this.#admission.refuse(conn, "server-busy", "too many connections are registering: retry");
      return;
    }
    // Registered and pending connections count; closing ones (lingering for their last words)
    // do not, or a flood closed for its frames would keep honest newcomers out for 2 s.
    if (!this.#admission.admit(conn, host, this.registry.size + this.#pending.size)) return;
    try {
      conn.setNoDelay?.(true);
    } catch {
      // not fatal: only latency
    }
    const connection = new ClientConnection(conn, this, {
      runtime: this.runtime,
      remoteHost: host,
      serial: ++this.#serial,
      clock: this.#clock,
      controlRate: this.limits.controlMessagesPerSecond,
      controlBurst: this.limits.controlMessageBurst,
    });
    this.#connections.add(connection);
    this.#pending.add(connection);
    this.log.debug("connection {client} from {host}:{port}", {
      client: connection.label,
      host,
      port: conn.remoteAddr.port,
    });
    connection.served = readFrames(conn, connection);
  }

  /**
   * Graceful shutdown: stops accepting, sends `bye {reason: "server-shutdown"}` to every
   * connection, gives the byes up to 2 s to be written, then closes everything.
   */
  async shutdown(): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#liveness.stop();
    for (const listener of this.#listeners) closeQuietly(listener);
    await Promise.all(this.#acceptLoops);
    const connections = [...this.#connections];
    const registered = this.registry.size;
    for (const connection of connections) {
      if (connection.closed) continue;
      connection.send({ type: "bye", reason: "server-shutdown" });
      this.#beginClose(connection, "server-shutdown");
    }
    await this.#deadline(Promise.all(connections.map((c) => c.queue.flush())), CLOSE_FLUSH_MS);
    // Shut the write side, then give clients a moment to close theirs, so that nobody gets a
    // reset (which could discard the bye) for input we had not read yet.
    for (const connection of connections) this.#shutWrite(connection, CLOSE_LINGER_MS);
    await this.#deadline(Promise.all(connections.map((c) => c.served)), CLOSE_LINGER_MS);
    for (const connection of connections) this.#release(connection);
    await this.#deadline(Promise.all(connections.map((c) => c.served)), CLOSE_FLUSH_MS);
    this.log.info(
      "signaling stopped: said bye to {connections} connections ({registered} registered); {relayFrames} frames, {relayBytes} bytes relayed",
      {
        connections: connections.length,
        registered,
        relayFrames: this.metrics.relayFrames,
        relayBytes: this.metrics.relayBytes,
      },
    );
  }

  /**
   * Stops at once, as a crash would: no `bye`, every socket closed now (clients see the
   * connection drop). For simulations of a server that dies; operators get
   * {@linkcode SignalingService.shutdown}.
   */
  abort(): void {
    this.#shuttingDown = true;
    this.#liveness.stop();
    for (const listener of this.#listeners) closeQuietly(listener);
    for (const connection of [...this.#connections]) {
      connection.beginClose("aborted");
      this.#release(connection); // also unregisters it
    }
  }

  // --- ConnectionEvents -------------------------------------------------------------------------

  /** {@inheritDoc ConnectionEvents.onFrame} */
  onFrame(connection: ClientConnection, kind: number, body: Uint8Array): void | Promise<void> {
    if (kind === FRAME_KIND_RELAY) return this.#relay.forward(connection, body);
    if (kind === FRAME_KIND_CONTROL) return this.#control.handle(connection, body);
    if (kind === FRAME_KIND_CREDIT) return this.#relay.credit(connection, body);
    this.violation(connection, "bad-frame", `unknown frame kind ${kind}`);
  }

  /** {@inheritDoc ConnectionEvents.onEmptyFrame} */
  onEmptyFrame(connection: ClientConnection): void {
    this.violation(connection, "bad-frame", "frame of length 0");
  }

  /** {@inheritDoc ConnectionEvents.onFrameTooLarge} */
  onFrameTooLarge(connection: ClientConnection, length: number): void {
    this.metrics.protocolErrors.inc("frame-too-large");
    this.log.refusal("frame-too-large", "closing {client}: frame length {length}", {
      client: connection.label,
      length,
    });
    this.close(connection, {
      reason: "frame-too-large",
      error: ["frame-too-large", `frame length ${length} is above ${MAX_FRAME_LENGTH}`],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  /** {@inheritDoc ConnectionEvents.onReadEnd} */
  onReadEnd(connection: ClientConnection, end: FrameReaderEnd, error?: unknown): void {
    const phase = connection.phase;
    if (phase.name === "closing") {
      if (end === "too-large") {
        // Input can no longer be framed, but unread input would turn our close into a reset
        // that may destroy the error we queued: discard it until the client closes.
        this.#discardInput(connection);
        return;
      }
      connection.markReadEnded();
      if (phase.lingerUntil > 0) this.#release(connection);
      return;
    }
    if (phase.name === "closed") return;
    if (end !== "error" || isConnectionError(error)) {
      this.close(connection, {
        reason: end === "eof" ? "client-closed" : "connection-lost",
        peerLeft: "disconnected",
      });
      return;
    }
    this.log.error("internal error on {client}: {error}", {
      client: connection.label,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    this.close(connection, {
      reason: "internal-error",
      error: ["internal", "internal server error"],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  /** {@inheritDoc ConnectionEvents.onWriteError} */
  onWriteError(connection: ClientConnection, error: unknown): void {
    this.log.debug("write to {client} failed: {error}", {
      client: connection.label,
      error: String(error),
    });
    this.close(connection, { reason: "write-failed", peerLeft: "disconnected" });
  }

  // --- SignalingContext --------------------------------------------------------------------------

  /** {@inheritDoc SignalingContext.sendBounded} */
  sendBounded(connection: ClientConnection, message: ServerMessage): void {
    if (connection.queue.queuedBytes > this.limits.relayQueueBytes + CONTROL_SLACK_BYTES) {
      this.log.refusal("slow-reader", "closing {client}: it does not read what it is sent", {
        client: connection.label,
        queued: connection.queue.queuedBytes,
      });
      this.close(connection, { reason: "slow-reader", peerLeft: "disconnected" });
      return;
    }
    connection.send(message);
  }

  /** {@inheritDoc SignalingContext.load} */
  load(): number {
    return Math.max(
      this.#pending.size / this.limits.maxPendingConnections,
      this.registry.size / this.limits.maxClients,
    );
  }

  /** {@inheritDoc SignalingContext.noteRegistered} */
  noteRegistered(connection: ClientConnection): void {
    this.#pending.delete(connection);
  }

  /** {@inheritDoc SignalingContext.evictIdleFor} */
  evictIdleFor(host: string): boolean {
    const groups = new Map<string, RegisteredClient[]>();
    for (const connection of this.#connections) {
      const client = connection.client;
      if (client === null) continue;
      const wide = sourcePrefixes(connection.remoteHost).wide;
      const group = groups.get(wide);
      if (group === undefined) groups.set(wide, [client]);
      else group.push(client);
    }
    const own = groups.get(sourcePrefixes(host).wide)?.length ?? 0;
    let victim: RegisteredClient | undefined;
    let most = own + 1; // evict only from a network holding at least two more than the newcomer's
    for (const group of groups.values()) {
      if (group.length <= most) continue;
      const idle = group.find((c) => c.idle);
      if (idle === undefined) continue;
      victim = idle;
      most = group.length;
    }
    if (victim === undefined) return false;
    this.metrics.registrations.inc("evicted");
    this.log.refusal("evicted", "evicted idle {client} to admit a registration from {host}", {
      client: victim.connection.label,
      host,
    });
    this.close(victim.connection, {
      reason: "evicted",
      error: ["server-busy", "the server is full: an idle session was evicted"],
      bye: "evicted",
      peerLeft: "disconnected",
    });
    return true;
  }

  /**
   * Too many connections are pending: evicts the oldest pending one (preferring one that has not
   * sent `hello`) from the network holding the most pending connections, if that network holds
   * at least two more than `host`'s; true when one was evicted.
   */
  #evictPendingFor(host: string): boolean {
    const groups = new Map<string, ClientConnection[]>();
    for (const connection of this.#pending) {
      if (connection.closed || connection.client !== null) {
        this.#pending.delete(connection);
        continue;
      }
      const wide = sourcePrefixes(connection.remoteHost).wide;
      const group = groups.get(wide);
      if (group === undefined) groups.set(wide, [connection]);
      else group.push(connection);
    }
    if (this.#pending.size < this.limits.maxPendingConnections) return true;
    const own = groups.get(sourcePrefixes(host).wide)?.length ?? 0;
    let largest: ClientConnection[] = [];
    for (const group of groups.values()) if (group.length > largest.length) largest = group;
    if (largest.length < own + 2) return false;
    const victim = largest.find((c) => c.phase.name === "awaiting-hello") ?? largest[0];
    this.metrics.connections.inc("evicted");
    this.log.refusal("evicted-pending", "evicted pending {client} to admit one from {host}", {
      client: victim.label,
      host,
    });
    this.close(victim, {
      reason: "evicted",
      error: ["server-busy", "the server is busy: this connection did not register in time"],
      peerLeft: "disconnected",
    });
    this.#pending.delete(victim);
    return true;
  }

  /** {@inheritDoc SignalingContext.violation} */
  violation(connection: ClientConnection, code: ErrorCode, message: string): void {
    if (connection.closed) return;
    connection.violations++;
    this.metrics.protocolErrors.inc(code);
    if (connection.violations >= MAX_PROTOCOL_ERRORS) {
      this.log.refusal(
        "protocol-error",
        "closing {client} after {count} protocol errors, last: {code} {message}",
        { client: connection.label, count: connection.violations, code, message },
      );
      this.close(connection, {
        reason: "protocol-error",
        error: [code, message],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    if (code === "rate-limited") {
      this.log.refusal("control-flood", "{client} sends too many control messages", {
        client: connection.label,
      });
    }
    this.sendBounded(connection, { type: "error", code, message: message.slice(0, 500) });
  }

  /** {@inheritDoc SignalingContext.close} */
  close(connection: ClientConnection, how: CloseHow): void {
    if (connection.closed) return;
    if (how.error !== undefined) {
      connection.send({ type: "error", code: how.error[0], message: how.error[1] });
    }
    if (how.bye !== undefined) {
      connection.send({
        type: "bye",
        reason: how.bye,
        ...(how.byeRegistrationNonce !== undefined
          ? { registrationNonce: how.byeRegistrationNonce }
          : {}),
      });
    }
    const client = this.#beginClose(connection, how.reason, how);
    if (client !== null) {
      for (const peer of client.peers.values()) {
        peer.unlink(client.id);
        if (!peer.connection.closed) {
          this.sendBounded(peer.connection, {
            type: "peer-left",
            peer: client.id,
            reason: how.peerLeft,
          });
        }
      }
      client.unlinkAll();
      this.#control.forgetClient(client);
    }
    if (connection.queue.queuedBytes > 0) {
      this.#deadline(connection.queue.flush(), CLOSE_FLUSH_MS).then(() =>
        this.#shutWrite(connection, CLOSE_LINGER_MS)
      );
    } else {
      this.#shutWrite(connection, CLOSE_LINGER_MS);
    }
  }

  // --- closing ------------------------------------------------------------------------------------

  /** Moves to `closing`, unregisters, counts and logs the end of the connection's story. */
  #beginClose(
    connection: ClientConnection,
    reason: string,
    how?: CloseHow,
  ): RegisteredClient | null {
    const client = connection.beginClose(reason);
    this.#pending.delete(connection);
    this.metrics.closes.inc(reason);
    if (client !== null && !how?.unregistered) this.registry.remove(client);
    if (client !== null) this.cluster.unregistered(client, how?.peerLeft ?? "disconnected");
    if (reason === "server-shutdown") return client;
    const lifetime = Math.round((this.runtime.now() - connection.connectedAt) / 1000);
    if (client !== null) {
      this.log.info(
        "closed {client} ({reason}) after {seconds} s: {introductions} introductions, relayed {frames} frames / {bytes} bytes, {refused} refused",
        {
          client: connection.label,
          id: client.id,
          reason,
          seconds: lifetime,
          introductions: client.introductions,
          frames: client.relayedFrames,
          bytes: client.relayedBytes,
          refused: client.refusedFrames,
        },
      );
    } else {
      this.log.debug("closed unregistered {client} ({reason}) after {seconds} s", {
        client: connection.label,
        reason,
        seconds: lifetime,
      });
    }
    return client;
  }

  /**
   * Shuts the write side (the client sees end of stream after our last words) and keeps reading
   * and discarding until the client closes or `lingerMs` pass (the sweep enforces the deadline).
   * Closing a socket with unread input would send a reset, which can destroy our last words.
   */
  #shutWrite(connection: ClientConnection, lingerMs: number): void {
    const phase = connection.phase;
    if (phase.name !== "closing") return;
    connection.queue.close();
    connection.lingerUntil(this.runtime.now() + lingerMs);
    if (phase.readEnded) {
      this.#release(connection);
      return;
    }
    try {
      connection.stream.closeWrite().catch(() => this.#release(connection));
    } catch {
      this.#release(connection);
    }
  }

  /** Releases a connection's socket and bookkeeping (idempotent). */
  #release(connection: ClientConnection): void {
    const client = connection.phase.name === "closing" ? connection.phase.client : null;
    connection.release("released");
    if (!this.#connections.delete(connection)) return;
    if (client !== null && this.registry.get(client.id) === client) this.registry.remove(client);
    this.#admission.release(connection.remoteHost);
    connection.queue.close();
    closeQuietly(connection.stream);
  }

  /** Reads and discards a closing connection's input until end of stream (the sweep bounds it). */
  async #discardInput(connection: ClientConnection): Promise<void> {
    const scratch = new Uint8Array(256);
    try {
      for (let reads = 0; reads < 65_536 && connection.phase.name === "closing"; reads++) {
        if (await connection.stream.read(scratch) === null) break;
      }
    } catch {
      // reset or closed meanwhile
    }
    connection.markReadEnded();
    const phase = connection.phase;
    if (phase.name === "closing" && phase.lingerUntil > 0) this.#release(connection);
  }

  /** Resolves when `promise` settles or after `ms` on the runtime's clock. */
  #deadline(promise: Promise<unknown>, ms: number): Promise<void> {
    let timer: number | undefined;
    return Promise.race([
      promise.then(() => {}, () => {}),
      new Promise<void>((resolve) => timer = this.runtime.setTimer(resolve, ms)),
    ]).finally(() => this.runtime.clearTimer(timer));
  }
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.TimedOut;
}
