/**
 * The client's link to the rendezvous servers: registers with the first reachable server of the
 * list, fails over to the next, answers heartbeats, notices a dead server, and reconnects with a
 * jittered backoff capped at 3 s when the server goes away, re-introducing itself with the same key
 * (hence the same ID).
 *
 * @module
 */
import type { ServerAddress } from "../shared/config/mod.ts";
import { formatServerAddress } from "../shared/config/mod.ts";
import {
  type RegistrationSigner,
  SignalingConnection,
  type SignalingEvent,
  SignalingRequestError,
} from "../shared/signaling/connection.ts";
import type { Address, ClientMessage, ServerMessageOf } from "../shared/signaling/messages.ts";
import { Backoff } from "./backoff.ts";
import { type Runtime, type StreamConn, type TimerId, withTimeout } from "../shared/runtime/mod.ts";

/** The current registration: which server, what it said, and the measured round trip. */
export interface Registration {
  /** `host:port` of the server. */
  server: string;
  /** The server's `registered` message. */
  registered: ServerMessageOf<"registered">;
  /** The server's host as dialled (for STUN). */
  host: string;
  /** Round-trip time to the server in ms (registration, then the latest ping sample). */
  rttMs: number;
}

/** Callbacks and settings of a {@linkcode ServerSession}. */
export interface ServerSessionOptions {
  /** Servers in order of preference (TCP signaling addresses). */
  servers: ServerAddress[];
  /** The identity that registers. */
  identity: RegistrationSigner;
  /** The local addresses to announce (called at each registration). */
  localAddresses: () => Address[];
  /** Called after each successful registration. */
  onRegistered: (registration: Registration) => void;
  /** Called for every control message and relay payload after registration. */
  onEvent: (event: SignalingEvent) => void;
  /** Called when the registered connection is lost (before reconnecting). */
  onDisconnected: (server: string, reason: string) => void;
  /** Called when a connection attempt fails (server unreachable, refused). */
  onAttemptFailed?: (server: string, reason: string) => void;
  /**
   * Called (before `onAttemptFailed`) when the server refused the registration with an `error`
   * (`code`: its error code) or a `bye` (`code`: its reason), with the server's own words.
   */
  onRefused?: (server: string, code: string, message: string) => void;
  /**
   * Called about every second while our pings go unanswered on a registered connection (our
   * side of the TCP connection may be stuck in retransmission backoff after a partition): the
   * client checks whether the server answers over UDP (STUN) and, if it does, calls
   * {@linkcode ServerSession.serverReachable}.
   */
  onStalled?: () => void;
  /** Called when the session stops for good (replaced by a newer session of the same ID). */
  onFatal?: (code: string, message: string) => void;
  /** Clock, timers, randomness and the network (TCP connections come from `runtime.net`). */
  runtime: Runtime;
  /** Opens TCP connections (default `runtime.net.connect`). */
  dial?: (options: { hostname: string; port: number }) => Promise<StreamConn>;
  /** Debug log. */
  log?: (message: string) => void;
  /** Backoff between rounds of failed attempts. */
  backoff?: Backoff;
  /** Time allowed for connect + registration, ms (default 5000). */
  attemptTimeoutMs?: number;
  /** Declare `consent`: the server asks before introducing anyone (`introduce-request`). */
  consent?: boolean;
}

/**
 * A ping unanswered for the ping period plus this (or 4 RTTs) means the connection may be stuck;
 * while it is, the session checks every `STALL_CHECK_MS` (pings, and the client's STUN check).
 */
const STALL_GRACE_MS = 2000;
const STALL_CHECK_MS = 1000;

/**
 * Longest pause between rounds of reconnection attempts, ms. Short: a server that was frozen or
 * restarted, or a partition that healed, must not leave a client away for the 10 s of a longer
 * backoff (issue 9: the link usable again within 5 s), and an attempt costs one TCP connection.
 * (A client that was registered also watches the server over STUN and redials on its answer.)
 */
const RECONNECT_MAX_MS = 3000;

/** A second `replaced` within this time means another instance holds our identity. */
const REPLACED_AGAIN_MS = 60_000;

/**
 * Keeps the client registered with one of its servers.
 *
 * @example
 * ```ts
 * import { Identity } from "../shared/identity/mod.ts";
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * const session = new ServerSession({
 *   runtime: systemRuntime,
 *   servers: [{ host: "127.0.0.1", port: 3478 }],
 *   identity: await Identity.generate(),
 *   localAddresses: () => [],
 *   onRegistered: (r) => console.log(r.registered.id),
 *   onEvent: () => {},
 *   onDisconnected: () => {},
 * });
 * session.start();
 * await session.stop();
 * ```
 */
export class ServerSession {
  readonly #options: ServerSessionOptions;
  readonly #backoff: Backoff;
  readonly #runtime: Runtime;
  #connection: SignalingConnection | undefined;
  #registration: Registration | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;
  #wakeSleep: (() => void) | undefined;
  #heartbeat: TimerId | undefined;
  #lastReceived = 0;
  #lastPongAt = 0;
  /** Closes the registered connection to redial at once (set while serving one). */
  #redial: ((reason: string) => void) | undefined;
  #lastReplacedAt = -Infinity;
  /** One random value per client process, the same on every retry (`registrationNonce`). */
  readonly #nonce: string;
  /** Whose registration replaced ours, by the nonce in `bye replaced` (unknown without one). */
  #replacedBy: "us" | "another" | "unknown" = "unknown";

  /**
   * Creates a session (call {@linkcode ServerSession.start}).
   *
   * @example
   * ```ts
   * // see the class example
   * ```
   */
  constructor(options: ServerSessionOptions) {
    if (options.servers.length === 0) throw new RangeError("no server to register with");
    this.#options = options;
    this.#runtime = options.runtime;
    this.#nonce = options.runtime.randomBytes(16).toHex();
    this.#backoff = options.backoff ??
      new Backoff({ maxMs: RECONNECT_MAX_MS, random: () => options.runtime.random() });
  }

  /** The current registration, or undefined while not registered. */
  get registration(): Registration | undefined {
    return this.#registration;
  }

  /**
   * Starts connecting (in the background).
   *
   * @example
   * ```ts
   * // session.start();
   * ```
   */
  start(): void {
    this.#running ??= this.#run();
  }

  /**
   * Sends a control message; returns false when not registered.
   *
   * @example
   * ```ts
   * // session.send({ type: "connect", peer: id });
   * ```
   */
  send(message: ClientMessage): boolean {
    if (!this.#registration || !this.#connection || this.#connection.isClosed) return false;
    this.#connection.send(message);
    return true;
  }

  /**
   * Sends a relay payload to `peer`; returns false when not registered.
   *
   * @example
   * ```ts
   * // session.sendRelay(peerId, packet);
   * ```
   */
  sendRelay(peer: string, payload: Uint8Array): boolean {
    if (!this.#registration || !this.#connection || this.#connection.isClosed) return false;
    this.#connection.sendRelay(peer, payload);
    return true;
  }

  /**
   * Reserves a relay frame to `peer` in the signaling connection's write queue and returns its
   * payload space (`payloadLength` bytes) to fill before yielding to the event loop, or undefined
   * when not registered (see `SignalingConnection.reserveRelay`; issue 14).
   *
   * @example
   * ```ts
   * // const space = session.reserveRelay(peerId, packetLength);
   * // if (space) seal(packet, space);
   * ```
   */
  reserveRelay(peer: string, payloadLength: number): Uint8Array | undefined {
    if (!this.#registration || !this.#connection || this.#connection.isClosed) return undefined;
    return this.#connection.reserveRelay(peer, payloadLength);
  }

  /**
   * Takes back the relay frame just reserved with {@linkcode ServerSession.reserveRelay} (same
   * tick); see `SignalingConnection.cancelRelay`.
   *
   * @example
   * ```ts
   * // const space = session.reserveRelay(peerId, 100);
   * // if (space && !sealed) session.cancelRelay(space);
   * ```
   */
  cancelRelay(payload: Uint8Array): void {
    this.#connection?.cancelRelay(payload);
  }

  /** Bytes queued on the signaling connection and not yet written. */
  get queuedBytes(): number {
    return this.#connection?.queuedBytes ?? 0;
  }

  /**
   * The server just answered over another way (a STUN response on UDP). If our pings have gone
   * unanswered meanwhile, the signaling connection is stuck — typically our TCP segments wait in
   * retransmission backoff (an RTO doubling up to a minute) after a partition healed — so it is
   * closed and the server dialled again at once, instead of waiting for the next retransmission
   * or for the server to time us out. Returns true when it redials.
   *
   * @example
   * ```ts
   * // stun.onAnswer = () => session.serverReachable();
   * ```
   */
  serverReachable(): boolean {
    if (!this.#redial || !this.#stalled()) return false;
    this.#redial("no answer to pings while the server answers over UDP");
    return true;
  }

  /**
   * The server answers over UDP again after it did not (a healed partition, a restarted server):
   * while not registered, the reconnection stops waiting out its backoff and dials now. Returns
   * true when it did.
   *
   * @example
   * ```ts
   * // stun.onReachable = () => session.serverBack();
   * ```
   */
  serverBack(): boolean {
    if (this.#registration) return false;
    const wake = this.#wakeSleep;
    wake?.();
    return wake !== undefined;
  }

  /** True when our latest ping has gone unanswered for a while on the registered connection. */
  #stalled(): boolean {
    const registration = this.#registration;
    if (!registration || !this.#connection) return false;
    const periodMs = this.#pingPeriodMs(registration.registered.heartbeatMs);
    const graceMs = Math.max(STALL_GRACE_MS, 4 * registration.rttMs);
    return this.#runtime.now() - this.#lastPongAt > periodMs + graceMs;
  }

  #pingPeriodMs(heartbeatMs: number): number {
    return Math.max(200, Math.min(heartbeatMs, 5000));
  }

  /**
   * Stops at once without a word to the server (as a crash would).
   *
   * @example
   * ```ts
   * // session.abort();
   * ```
   */
  abort(): void {
    this.#stopped = true;
    this.#wakeSleep?.();
    this.#connection?.close();
  }

  /**
   * Says goodbye to the server and stops (no reconnect).
   *
   * @example
   * ```ts
   * // await session.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeSleep?.();
    const connection = this.#connection;
    if (connection && !connection.isClosed) {
      try {
        connection.send({ type: "bye", reason: "client exit" });
        await withTimeout(this.#runtime, connection.flush(), 500, "flush").catch(() => {});
      } catch {
        // closing anyway
      }
      connection.close();
    }
    await this.#running;
  }

  async #run(): Promise<void> {
    const servers = this.#options.servers;
    while (!this.#stopped) {
      let registeredThisRound = false;
      for (const server of servers) {
        if (this.#stopped) return;
        const name = formatServerAddress(server);
        const connection = await this.#attempt(server, name);
        if (!connection) continue;
        registeredThisRound = true;
        this.#backoff.reset();
        const reason = await this.#serve(connection);
        this.#registration = undefined;
        this.#connection = undefined;
        if (this.#stopped) return;
        if (
          reason === "replaced" &&
          (this.#replacedBy === "us" ||
            (this.#replacedBy === "unknown" && this.#mayHaveReplacedItself()))
        ) {
          // Under loss a slow registration may complete after its retry did: the server then
          // replaces our live connection with our own stale one. Register again (once per
          // minute): a real second instance replaces us again within the minute, and we stop.
          this.#options.log?.("replaced by a registration with our key; registering again");
          this.#options.onDisconnected(name, "replaced (registering again)");
          break;
        }
        if (reason === "replaced") {
          this.#stopped = true;
          this.#options.onFatal?.(
            "replaced",
            "another client registered with this identity; not reconnecting",
          );
          return;
        }
        this.#options.onDisconnected(name, reason);
        break;
      }
      if (this.#stopped) return;
      const delay = this.#backoff.next();
      if (registeredThisRound) {
        // Lost a working server: a short pause before trying the list again.
        await this.#sleep(Math.min(delay, 250));
      } else {
        await this.#sleep(delay);
      }
    }
  }

  /**
   * True when a `replaced` without our nonce may still be our own late registration (a server
   * that does not echo nonces): not seen in the last minute.
   */
  #mayHaveReplacedItself(): boolean {
    const now = this.#runtime.now();
    const recent = now - this.#lastReplacedAt < REPLACED_AGAIN_MS;
    this.#lastReplacedAt = now;
    return !recent;
  }

  async #attempt(server: ServerAddress, name: string): Promise<SignalingConnection | undefined> {
    const timeoutMs = this.#options.attemptTimeoutMs ?? 5000;
    let connection: SignalingConnection | undefined;
    try {
      const connecting = SignalingConnection.connect({
        hostname: server.host,
        port: server.port,
        dial: this.#options.dial,
        runtime: this.#runtime,
      });
      let gaveUp = false;
      // A connection that completes after the timeout is closed, never leaked.
      connecting.then((late) => {
        if (gaveUp) late.close();
      }, () => {});
      try {
        connection = await withTimeout(this.#runtime, connecting, timeoutMs, "answer");
      } catch (error) {
        gaveUp = true;
        throw error;
      }
      const sentAt = this.#runtime.now();
      const registered = await connection.register(
        this.#options.identity,
        this.#options.localAddresses(),
        timeoutMs,
        this.#nonce,
        { consent: this.#options.consent },
      );
      const receivedAt = this.#runtime.now();
      if (this.#stopped) {
        connection.close();
        return undefined;
      }
      this.#connection = connection;
      this.#registration = {
        server: name,
        host: server.host,
        registered,
        rttMs: Math.max(0, receivedAt - sentAt),
      };
      this.#options.onRegistered(this.#registration);
      return connection;
    } catch (error) {
      connection?.close();
      const reply = error instanceof SignalingRequestError ? error.reply : undefined;
      if (reply?.type === "error") this.#options.onRefused?.(name, reply.code, reply.message);
      else if (reply?.type === "bye") {
        this.#options.onRefused?.(name, reply.reason, `the server said goodbye (${reply.reason})`);
      }
      this.#options.onAttemptFailed?.(name, error instanceof Error ? error.message : String(error));
      return undefined;
    }
  }

  async #serve(connection: SignalingConnection): Promise<string> {
    const heartbeatMs = this.#registration!.registered.heartbeatMs;
    this.#lastReceived = this.#lastPongAt = this.#runtime.now();
    let deadReason: string | undefined;
    const periodMs = this.#pingPeriodMs(heartbeatMs);
    this.#redial = (reason) => {
      this.#options.log?.(`signaling stalled (${reason}): redialling`);
      deadReason = "signaling stalled";
      connection.close();
    };
    const beat = () => {
      if (this.#runtime.now() - this.#lastReceived > heartbeatMs * 2.5) {
        this.#heartbeat = undefined;
        deadReason = "server silent";
        connection.close();
        return;
      }
      connection.send({ type: "ping", t: this.#runtime.now() });
      const stalled = this.#stalled();
      if (stalled) this.#options.onStalled?.();
      this.#heartbeat = this.#runtime.setTimer(beat, stalled ? STALL_CHECK_MS : periodMs);
    };
    this.#heartbeat = this.#runtime.setTimer(beat, periodMs);
    let byeReason: string | undefined;
    this.#replacedBy = "unknown";
    try {
      for await (const event of connection) {
        this.#lastReceived = this.#runtime.now();
        if (event.kind === "message") {
          const message = event.message;
          if (message.type === "ping") {
            connection.send({ type: "pong", t: message.t });
            continue;
          }
          if (message.type === "pong") {
            if (this.#registration) {
              this.#registration.rttMs = Math.max(0, this.#runtime.now() - message.t);
            }
            this.#lastPongAt = this.#runtime.now();
            continue;
          }
          if (message.type === "bye") {
            byeReason = message.reason;
            // The server echoes the newer registration's nonce: ours means our own retried
            // registration replaced this connection (not another instance).
            if (message.reason === "replaced" && message.registrationNonce !== undefined) {
              this.#replacedBy = message.registrationNonce === this.#nonce ? "us" : "another";
            }
            connection.close();
            continue;
          }
        }
        this.#options.onEvent(event);
      }
    } finally {
      this.#runtime.clearTimer(this.#heartbeat);
      this.#heartbeat = undefined;
      this.#redial = undefined;
    }
    return byeReason ?? deadReason ?? connection.closeReason ?? "connection closed";
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#runtime.setTimer(() => {
        this.#wakeSleep = undefined;
        resolve();
      }, ms);
      this.#wakeSleep = () => {
        this.#runtime.clearTimer(timer);
        this.#wakeSleep = undefined;
        resolve();
      };
    });
  }
}
