/**
 * The signaling service on TCP: registration with an Ed25519 challenge, brokering with a common
 * punch time, the relay between brokered pairs, heartbeats, and per-client limits. One sweep
 * timer drives heartbeats and timeouts for every session; relay frames are forwarded without
 * JSON and without awaiting anything per message.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import { peerIdFromPublicKey, verifySignature } from "../shared/identity/mod.ts";
import {
  type Address,
  type ByeReason,
  type Candidate,
  CHALLENGE_NONCE_BYTES,
  type ClientMessage,
  type ClientMessageOf,
  decodeControlBody,
  DEFAULT_HEARTBEAT_MS,
  encodeControlFrame,
  type ErrorCode,
  FRAME_KIND_CONTROL,
  FRAME_KIND_RELAY,
  FrameError,
  HEARTBEAT_DEAD_FACTOR,
  MAX_FRAME_LENGTH,
  MAX_PROTOCOL_ERRORS,
  MAX_RELAY_PAYLOAD,
  parseClientMessage,
  type PeerLeftReason,
  REGISTRATION_TIMEOUT_MS,
  registrationSignedData,
  RELAY_PEER_ID_BYTES,
  SIGNALING_VERSION,
  writeFrameHeader,
} from "../shared/signaling/mod.ts";
import { type FrameReaderEnd, readFrames } from "./frame_reader.ts";
import { normalizeHost } from "./host_address.ts";
import { punchLeadMs } from "./punch_schedule.ts";
import { Registry } from "./registry.ts";
import { Session, type SessionHandler } from "./session.ts";
import { TokenBucket } from "./token_bucket.ts";

/** Limits and settings of a {@linkcode SignalingServer}. All have defaults. */
export interface SignalingServerOptions {
  /** Address to listen on (default: all interfaces, IPv6 and IPv4, falling back to `0.0.0.0`). */
  hostname?: string;
  /** TCP port (default 3478; 0 picks a free one). */
  port?: number;
  /** The STUN port announced in `registered` (default 54321). */
  stunPort?: number;
  /** Registry shared with the STUN service (default: a new one). */
  registry?: Registry<Session>;
  /** Most registered clients (default 10,000). */
  maxClients?: number;
  /** Most open connections from one source address (default 64). */
  maxConnectionsPerAddress?: number;
  /** Relayed payload bytes per second per sending client (default 4 MiB/s). */
  relayBytesPerSecond?: number;
  /** Bytes that may wait for one receiver before relay frames to it are refused (default 1 MiB). */
  relayQueueBytes?: number;
  /** Heartbeat interval in ms (default 10,000); dead after 2.5 intervals of silence. */
  heartbeatMs?: number;
  /** Time to complete registration in ms (default 10,000). */
  registrationTimeoutMs?: number;
  /** Control messages per second per connection (default 50) ... */
  controlMessagesPerSecond?: number;
  /** ... with this burst (default 100). */
  controlMessageBurst?: number;
  /** Most peers one session may be brokered with at once (default 1024). */
  maxBrokeredPeers?: number;
  /** Clock in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** Source of random bytes (default `crypto.getRandomValues`). */
  randomBytes?: (length: number) => Uint8Array;
  /** Logger (default category `["stun-server", "signaling"]`). */
  logger?: Logger;
}

/** Counters of a running {@linkcode SignalingServer}. */
export interface SignalingServerStats {
  /** Open connections. */
  connections: number;
  /** Registered sessions. */
  registered: number;
  /** Relay frames forwarded. */
  relayedFrames: number;
  /** Relay payload bytes forwarded. */
  relayedBytes: number;
  /** Relay frames refused (each answered with an `error`). */
  refusedFrames: number;
  /** Connections closed for protocol violations. */
  violationCloses: number;
}

/** Bytes of control messages a receiver may have queued beyond the relay queue before it is cut. */
const CONTROL_SLACK_BYTES = 256 * 1024;
/** Grace for flushing a last error or bye before the socket is closed. */
const CLOSE_FLUSH_MS = 2000;
/** After the last words, how long the server waits for the client to close its side. */
const CLOSE_LINGER_MS = 2000;
/** Each relay frame counts at least this many bytes against the rate (bounds frames per second). */
const RELAY_MIN_CHARGE_BYTES = 64;
/** How long a sender is paused for a receiver that is behind before the receiver counts as stalled. */
const RELAY_STALL_MS = 500;
/** Refused connections allowed to linger (drain before close) at once. */
const MAX_LINGERING_REFUSALS = 256;
/** Accepted-but-unregistered connections allowed beyond `maxClients`. */
const PENDING_CONNECTION_ALLOWANCE = 1024;

/**
 * The signaling server.
 *
 * @example
 * ```ts
 * const server = SignalingServer.listen({ hostname: "127.0.0.1", port: 0, stunPort: 54321 });
 * console.log(server.address.port);
 * await server.shutdown();
 * ```
 */
export class SignalingServer implements SessionHandler {
  readonly #listener: Deno.TcpListener;
  readonly #registry: Registry<Session>;
  readonly #sessions = new Set<Session>();
  readonly #perAddress = new Map<string, number>();
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: (length: number) => Uint8Array;
  readonly #stunPort: number;
  readonly #maxClients: number;
  readonly #maxPerAddress: number;
  readonly #relayRate: number;
  readonly #relayBurst: number;
  readonly #relayQueue: number;
  readonly #heartbeatMs: number;
  readonly #registrationTimeoutMs: number;
  readonly #controlRate: number;
  readonly #controlBurst: number;
  readonly #maxPeers: number;
  readonly #sweepTimer: ReturnType<typeof setInterval>;
  readonly #acceptLoop: Promise<void>;
  #shuttingDown = false;
  #lingeringRefusals = 0;
  #stats: SignalingServerStats = {
    connections: 0,
    registered: 0,
    relayedFrames: 0,
    relayedBytes: 0,
    refusedFrames: 0,
    violationCloses: 0,
  };

  private constructor(listener: Deno.TcpListener, options: SignalingServerOptions) {
    this.#listener = listener;
    this.#registry = options.registry ?? new Registry<Session>();
    this.#log = options.logger ?? getLogger(["stun-server", "signaling"]);
    this.#now = options.now ?? Date.now;
    this.#random = options.randomBytes ??
      ((length) => crypto.getRandomValues(new Uint8Array(length)));
    this.#stunPort = options.stunPort ?? 54321;
    this.#maxClients = options.maxClients ?? 10_000;
    this.#maxPerAddress = options.maxConnectionsPerAddress ?? 64;
    this.#relayRate = options.relayBytesPerSecond ?? 4 * 1024 * 1024;
    this.#relayBurst = Math.max(this.#relayRate, MAX_RELAY_PAYLOAD);
    this.#relayQueue = Math.max(options.relayQueueBytes ?? 1024 * 1024, MAX_FRAME_LENGTH + 4);
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#registrationTimeoutMs = options.registrationTimeoutMs ?? REGISTRATION_TIMEOUT_MS;
    this.#controlRate = options.controlMessagesPerSecond ?? 50;
    this.#controlBurst = options.controlMessageBurst ?? 100;
    this.#maxPeers = options.maxBrokeredPeers ?? 1024;
    const sweepMs = Math.max(10, Math.min(1000, Math.floor(this.#heartbeatMs / 4)));
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#acceptLoop = this.#accept();
  }

  /**
   * Starts listening. Throws what `Deno.listen` throws (address in use, permission).
   *
   * @example
   * ```ts
   * const server = SignalingServer.listen({ hostname: "127.0.0.1", port: 0 });
   * await server.shutdown();
   * ```
   */
  static listen(options: SignalingServerOptions = {}): SignalingServer {
    const port = options.port ?? 3478;
    let listener: Deno.TcpListener;
    if (options.hostname !== undefined) {
      listener = Deno.listen({ hostname: options.hostname, port, transport: "tcp" });
    } else {
      try {
        listener = Deno.listen({ hostname: "::", port, transport: "tcp" });
      } catch {
        listener = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
      }
    }
    return new SignalingServer(listener, options);
  }

  /** The bound address (with the real port when 0 was asked). */
  get address(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** The registry of live sessions (also the STUN service's user directory). */
  get registry(): Registry<Session> {
    return this.#registry;
  }

  /** The relay limits announced in `registered`. */
  get relayLimits(): { bytesPerSecond: number; queueBytes: number; maxPayload: number } {
    return {
      bytesPerSecond: this.#relayRate,
      queueBytes: this.#relayQueue,
      maxPayload: MAX_RELAY_PAYLOAD,
    };
  }

  /** Current counters. */
  get stats(): SignalingServerStats {
    return {
      ...this.#stats,
      connections: this.#sessions.size,
      registered: this.#registry.size,
    };
  }

  /**
   * Graceful shutdown: stops accepting, sends `bye {reason: "server-shutdown"}` to every
   * connection, gives the byes up to 2 s to be written, then closes everything.
   *
   * @example
   * ```ts
   * const server = SignalingServer.listen({ hostname: "127.0.0.1", port: 0 });
   * await server.shutdown();
   * ```
   */
  async shutdown(): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    clearInterval(this.#sweepTimer);
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#acceptLoop;
    const sessions = [...this.#sessions];
    for (const session of sessions) {
      if (session.closed) continue;
      session.send({ type: "bye", reason: "server-shutdown" });
      session.state = "closing";
    }
    await withDeadline(Promise.all(sessions.map((s) => s.queue.flush())), CLOSE_FLUSH_MS);
    // Shut the write side, then give clients a moment to close theirs, so that nobody gets a
    // reset (which could discard the bye) for input we had not read yet.
    for (const session of sessions) this.#shutWrite(session, CLOSE_LINGER_MS);
    await withDeadline(Promise.all(sessions.map((s) => s.served)), CLOSE_LINGER_MS);
    for (const session of sessions) this.#drop(session);
    await withDeadline(Promise.all(sessions.map((s) => s.served)), CLOSE_FLUSH_MS);
    this.#log.info("signaling stopped after {relayedFrames} relayed frames", { ...this.stats });
  }

  // --- SessionHandler -------------------------------------------------------------------------

  /** {@inheritDoc SessionHandler.now} */
  now(): number {
    return this.#now();
  }

  /** {@inheritDoc SessionHandler.onFrame} */
  onFrame(session: Session, kind: number, body: Uint8Array): void | Promise<void> {
    if (kind === FRAME_KIND_RELAY) return this.#relay(session, body);
    if (kind === FRAME_KIND_CONTROL) return this.#control(session, body);
    this.#violation(session, "bad-frame", `unknown frame kind ${kind}`);
  }

  /** {@inheritDoc SessionHandler.onEmptyFrame} */
  onEmptyFrame(session: Session): void {
    this.#violation(session, "bad-frame", "frame of length 0");
  }

  /** {@inheritDoc SessionHandler.onFrameTooLarge} */
  onFrameTooLarge(session: Session, length: number): void {
    this.#stats.violationCloses++;
    this.#close(session, {
      error: ["frame-too-large", `frame length ${length} is above ${MAX_FRAME_LENGTH}`],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  /** {@inheritDoc SessionHandler.onStunBinding} */
  onStunBinding(session: Session, endpoint: Address): void {
    if (session.closed) return;
    const known = session.publicEndpoint;
    if (known !== null && known.host === endpoint.host && known.port === endpoint.port) return;
    session.publicEndpoint = endpoint;
    session.send({ type: "endpoint", public: endpoint });
    this.#log.debug("public endpoint of {id}: {host}:{port}", { id: session.id, ...endpoint });
  }

  /** {@inheritDoc SessionHandler.onWriteError} */
  onWriteError(session: Session, error: unknown): void {
    this.#log.debug("write to {host} failed: {error}", {
      host: session.remoteHost,
      error: String(error),
    });
    this.#close(session, { peerLeft: "disconnected" });
  }

  // --- accepting ------------------------------------------------------------------------------

  async #accept(): Promise<void> {
    let failures = 0;
    while (!this.#shuttingDown) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
        failures = 0;
      } catch (error) {
        if (this.#shuttingDown || error instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: log, back off briefly, keep serving.
        failures++;
        this.#log.warn("accept failed: {error}", { error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 10 * failures)));
        continue;
      }
      try {
        this.#admit(conn);
      } catch (error) {
        this.#log.error("admitting a connection failed: {error}", { error: String(error) });
        closeQuietly(conn);
      }
    }
  }

  #admit(conn: Deno.TcpConn): void {
    const host = normalizeHost(conn.remoteAddr.hostname);
    if (this.#sessions.size >= this.#maxClients + PENDING_CONNECTION_ALLOWANCE) {
      this.#refuseConnection(conn, "server-full", "the server has no room for more connections");
      return;
    }
    const count = (this.#perAddress.get(host) ?? 0) + 1;
    if (count > this.#maxPerAddress) {
      this.#refuseConnection(
        conn,
        "too-many-connections",
        "too many connections from your address",
      );
      this.#log.info("refused a connection from {host}: over {limit} connections", {
        host,
        limit: this.#maxPerAddress,
      });
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // not fatal: only latency
    }
    this.#perAddress.set(host, count);
    const now = this.#now();
    const session = new Session(conn, host, this, now);
    session.controlBucket = new TokenBucket(this.#controlRate, this.#controlBurst, this.#now);
    this.#sessions.add(session);
    session.served = readFrames(session.conn, session);
  }

  /**
   * Answers a connection it will not serve with one `error` and closes it gracefully (write side
   * first, input drained for up to 2 s so the client reads the error rather than a reset). At most
   * 256 refused connections linger at once; beyond that they are closed at once.
   */
  #refuseConnection(conn: Deno.TcpConn, code: ErrorCode, message: string): void {
    const frame = encodeControlFrame({ type: "error", code, message });
    if (this.#lingeringRefusals >= MAX_LINGERING_REFUSALS) {
      conn.write(frame).catch(() => {}).finally(() => closeQuietly(conn));
      return;
    }
    this.#lingeringRefusals++;
    const timer = setTimeout(() => closeQuietly(conn), CLOSE_LINGER_MS);
    (async () => {
      try {
        await conn.write(frame);
        await conn.closeWrite();
        const scratch = new Uint8Array(256);
        for (let reads = 0; reads < 1024; reads++) {
          if (await conn.read(scratch) === null) break;
        }
      } catch {
        // reset, or closed by the timer: either way done
      } finally {
        clearTimeout(timer);
        this.#lingeringRefusals--;
        closeQuietly(conn);
      }
    })();
  }

  /** {@inheritDoc SessionHandler.onReadEnd} */
  onReadEnd(session: Session, end: FrameReaderEnd, error?: unknown): void {
    if (session.state === "closing") {
      if (end === "too-large") {
        // Input can no longer be framed, but unread input would turn our close into a reset
        // that may destroy the error we queued: discard it until the client closes.
        this.#discardInput(session);
        return;
      }
      session.readEnded = true;
      if (session.lingerUntil > 0) this.#drop(session);
      return;
    }
    if (session.closed) return;
    if (end !== "error" || isConnectionError(error)) {
      this.#close(session, { peerLeft: "disconnected" });
      return;
    }
    this.#log.error("internal error on a connection from {host}: {error}", {
      host: session.remoteHost,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    this.#close(session, {
      error: ["internal", "internal server error"],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  /** Reads and discards a closing session's input until end of stream (the sweep bounds it). */
  async #discardInput(session: Session): Promise<void> {
    const scratch = new Uint8Array(256);
    try {
      for (let reads = 0; reads < 65_536 && session.state === "closing"; reads++) {
        if (await session.conn.read(scratch) === null) break;
      }
    } catch {
      // reset or closed meanwhile
    }
    session.readEnded = true;
    if (session.state === "closing" && session.lingerUntil > 0) this.#drop(session);
  }

  // --- control messages -----------------------------------------------------------------------

  #control(session: Session, body: Uint8Array): void | Promise<void> {
    if (!session.controlBucket!.take(1)) {
      this.#violation(session, "rate-limited", "too many control messages");
      return;
    }
    let value: unknown;
    try {
      value = decodeControlBody(body);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#violation(session, "bad-frame", error.message);
      return;
    }
    const parsed = parseClientMessage(value);
    if (!parsed.ok) {
      const type = String((value as { type: unknown }).type).slice(0, 32);
      this.#violation(session, "bad-message", `${type}: ${parsed.error}`);
      return;
    }
    const message = parsed.message;
    switch (session.state) {
      case "new":
        if (message.type === "hello") return this.#hello(session, message);
        return this.#notRegistered(session, message);
      case "challenged":
        if (message.type === "register") return this.#register(session, message);
        if (message.type === "hello") {
          return this.#violation(session, "bad-message", "hello was already received");
        }
        return this.#notRegistered(session, message);
      case "registered":
        return this.#registeredMessage(session, message);
      case "closing":
      case "closed":
        return;
    }
  }

  #notRegistered(session: Session, message: ClientMessage): void {
    this.#stats.violationCloses++;
    this.#close(session, {
      error: ["not-registered", `${message.type} before registration`],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  #hello(session: Session, message: ClientMessageOf<"hello">): void {
    if (message.version !== SIGNALING_VERSION) {
      this.#close(session, {
        error: ["unsupported-version", `this server speaks version ${SIGNALING_VERSION}`],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    let publicKeyLength = 0;
    try {
      publicKeyLength = Uint8Array.fromBase64(message.publicKey).length;
    } catch {
      this.#violation(session, "bad-message", "publicKey is not valid base64");
      return;
    }
    if (publicKeyLength !== 32) {
      this.#violation(session, "bad-message", "publicKey must be 32 bytes");
      return;
    }
    session.publicKey = message.publicKey;
    session.nonce = this.#random(CHALLENGE_NONCE_BYTES);
    session.state = "challenged";
    session.send({
      type: "challenge",
      version: SIGNALING_VERSION,
      nonce: session.nonce.toBase64(),
      serverTime: this.#now(),
    });
  }

  async #register(session: Session, message: ClientMessageOf<"register">): Promise<void> {
    const publicKey = Uint8Array.fromBase64(session.publicKey);
    const nonce = session.nonce!;
    session.nonce = null; // one signature attempt per challenge: no replays, no guessing
    let signature: Uint8Array;
    try {
      signature = Uint8Array.fromBase64(message.signature);
    } catch {
      signature = new Uint8Array(0);
    }
    const valid = await verifySignature(publicKey, registrationSignedData(nonce), signature);
    if (session.closed) return;
    if (!valid) {
      this.#stats.violationCloses++;
      this.#log.info("registration from {host} refused: bad signature", {
        host: session.remoteHost,
      });
      this.#close(session, {
        error: ["auth-failed", "the signature does not verify against the public key"],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    const id = await peerIdFromPublicKey(publicKey);
    if (session.closed) return;
    if (this.#registry.size >= this.#maxClients && this.#registry.get(id) === undefined) {
      this.#close(session, {
        error: ["server-full", `the server holds its maximum of ${this.#maxClients} clients`],
        peerLeft: "disconnected",
      });
      return;
    }
    const password = this.#random(18).toBase64();
    session.id = id;
    session.stunUsername = this.#random(12).toHex();
    session.stunPassword = password;
    session.localAddresses = message.localAddresses;
    session.state = "registered";
    const older = this.#registry.add(session);
    if (older !== undefined) {
      this.#log.info("session {id} replaced by a newer one from {host}", {
        id,
        host: session.remoteHost,
      });
      this.#close(older, { bye: "replaced", peerLeft: "replaced", unregistered: true });
    }
    const now = this.#now();
    session.send({
      type: "registered",
      id,
      stunUsername: session.stunUsername,
      stunPassword: password,
      stunPort: this.#stunPort,
      heartbeatMs: this.#heartbeatMs,
      relay: this.relayLimits,
      serverTime: now,
    });
    // A first ping measures the RTT that brokering uses for its punch lead time. The next one
    // comes between half and one interval later, spread by ID, so that clients registered in a
    // burst are not all pinged in the same sweep.
    session.lastPingAt = now -
      Math.floor((parseInt(id.slice(0, 4), 16) / 0x10000) * this.#heartbeatMs / 2);
    session.send({ type: "ping", t: now });
    this.#log.debug("registered {id} from {host}", { id, host: session.remoteHost });
  }

  #registeredMessage(session: Session, message: ClientMessage): void {
    switch (message.type) {
      case "ping":
        session.send({ type: "pong", t: message.t });
        return;
      case "pong": {
        const rtt = this.#now() - message.t;
        if (rtt >= 0 && rtt <= 60_000) session.rttMs = rtt;
        return;
      }
      case "addresses":
        session.localAddresses = message.localAddresses;
        return;
      case "connect":
        this.#broker(session, message);
        return;
      case "bye":
        this.#close(session, { peerLeft: "disconnected" });
        return;
      case "hello":
      case "register":
        this.#violation(session, "bad-message", "already registered");
        return;
    }
  }

  #broker(session: Session, message: ClientMessageOf<"connect">): void {
    const target = this.#registry.get(message.peer);
    if (target === undefined || target === session) {
      session.send({
        type: "error",
        code: "unknown-peer",
        message: target === session ? "that is your own ID" : "no client with that ID is online",
        peer: message.peer,
        ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
      });
      return;
    }
    const already = session.peers?.has(target.id) ?? false;
    if (
      !already &&
      ((session.peers?.size ?? 0) >= this.#maxPeers || (target.peers?.size ?? 0) >= this.#maxPeers)
    ) {
      session.send({
        type: "error",
        code: "rate-limited",
        message: `at most ${this.#maxPeers} brokered peers per client`,
        peer: message.peer,
        ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
      });
      return;
    }
    (session.peers ??= new Map()).set(target.id, target);
    (target.peers ??= new Map()).set(session.id, session);
    const now = this.#now();
    const punchAt = now + punchLeadMs(session.rttMs, target.rttMs);
    session.send({
      type: "introduce",
      peer: target.id,
      publicKey: target.publicKey,
      candidates: candidatesOf(target),
      role: "initiator",
      punchAt,
      serverTime: now,
      ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
    });
    target.send({
      type: "introduce",
      peer: session.id,
      publicKey: session.publicKey,
      candidates: candidatesOf(session),
      role: "responder",
      punchAt,
      serverTime: now,
    });
    this.#log.debug("brokered {a} -> {b}, punch in {lead} ms", {
      a: session.id,
      b: target.id,
      lead: punchAt - now,
    });
  }

  // --- relay ----------------------------------------------------------------------------------

  #relay(sender: Session, body: Uint8Array): void | Promise<void> {
    if (sender.state !== "registered") {
      this.#stats.violationCloses++;
      this.#close(sender, {
        error: ["not-registered", "relay before registration"],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    if (body.length <= RELAY_PEER_ID_BYTES) {
      this.#violation(sender, "bad-frame", "relay frame without peer ID and payload");
      return;
    }
    const payloadBytes = body.length - RELAY_PEER_ID_BYTES;
    let target = sender.lastTarget;
    if (target === null || !sameId(body, target.idBytes!)) {
      const id = body.subarray(0, RELAY_PEER_ID_BYTES).toHex();
      target = sender.peers?.get(id) ?? null;
      if (target === null) {
        const code = this.#registry.get(id) !== undefined ? "relay-not-brokered" : "peer-offline";
        this.#refuse(sender, code, id, payloadBytes);
        return;
      }
      target.idBytes ??= Uint8Array.fromHex(target.id);
      sender.lastTarget = target;
    }
    const frameBytes = 4 + 1 + body.length;
    if (target.queue.queuedBytes + frameBytes > this.#relayQueue) {
      this.#refuse(sender, "relay-queue-full", target.id, payloadBytes);
      return;
    }
    const bucket = sender.relayBucket ??= new TokenBucket(
      this.#relayRate,
      this.#relayBurst,
      this.#now,
    );
    if (!bucket.take(Math.max(payloadBytes, RELAY_MIN_CHARGE_BYTES))) {
      this.#refuse(sender, "relay-quota", target.id, payloadBytes);
      return;
    }
    const out = target.queue.reserve(frameBytes);
    writeFrameHeader(out, 0, 1 + body.length, FRAME_KIND_RELAY);
    out.set(sender.idBytes ??= Uint8Array.fromHex(sender.id), 5);
    out.set(body.subarray(RELAY_PEER_ID_BYTES), 5 + RELAY_PEER_ID_BYTES);
    this.#stats.relayedFrames++;
    this.#stats.relayedBytes += payloadBytes;
    // Backpressure: while the receiver is behind, stop reading from the sender (TCP slows it
    // down) until the receiver catches up, unless the receiver is stalled, in which case
    // reading goes on and frames beyond its queue cap are refused.
    if (
      target.queue.queuedBytes > this.#relayQueue / 2 &&
      target.stalledAt !== target.queue.writtenBytes
    ) {
      return this.#awaitDrain(target);
    }
  }

  async #awaitDrain(target: Session): Promise<void> {
    const caughtUp = await target.queue.waitBelow(this.#relayQueue / 4, RELAY_STALL_MS);
    if (!caughtUp) target.stalledAt = target.queue.writtenBytes;
  }

  #refuse(sender: Session, code: ErrorCode, peer: string, bytes: number): void {
    this.#stats.refusedFrames++;
    this.#sendBounded(sender, {
      type: "error",
      code,
      message: REFUSAL_MESSAGES[code] ?? code,
      peer,
      bytes,
    });
  }

  // --- errors, closing, sweeping --------------------------------------------------------------

  /** Sends a control message unless the receiver is so far behind that it must be cut off. */
  #sendBounded(session: Session, message: Parameters<Session["send"]>[0]): void {
    if (session.queue.queuedBytes > this.#relayQueue + CONTROL_SLACK_BYTES) {
      this.#log.info("closing {host}: it does not read what it is sent", {
        host: session.remoteHost,
      });
      this.#close(session, { peerLeft: "disconnected" });
      return;
    }
    session.send(message);
  }

  #violation(session: Session, code: ErrorCode, message: string): void {
    if (session.closed) return;
    session.violations++;
    if (session.violations >= MAX_PROTOCOL_ERRORS) {
      this.#stats.violationCloses++;
      this.#log.info("closing {host} after {count} protocol errors, last: {code} {message}", {
        host: session.remoteHost,
        count: session.violations,
        code,
        message,
      });
      this.#close(session, {
        error: [code, message],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    this.#sendBounded(session, { type: "error", code, message: message.slice(0, 500) });
  }

  /**
   * Closes a session: optionally tells it why, unregisters it, tells its brokered peers, releases
   * its per-address slot, and closes the socket once the last words are written (bounded).
   */
  #close(
    session: Session,
    how: {
      error?: [ErrorCode, string];
      bye?: ByeReason;
      peerLeft: PeerLeftReason;
      unregistered?: boolean;
    },
  ): void {
    if (session.closed) return;
    const wasRegistered = session.state === "registered";
    session.state = "closing";
    if (how.error !== undefined) {
      session.send({ type: "error", code: how.error[0], message: how.error[1] });
    }
    if (how.bye !== undefined) session.send({ type: "bye", reason: how.bye });
    if (wasRegistered && !how.unregistered) this.#registry.remove(session);
    if (session.peers !== null) {
      for (const peer of session.peers.values()) {
        peer.peers?.delete(session.id);
        if (peer.lastTarget === session) peer.lastTarget = null;
        if (!peer.closed) {
          this.#sendBounded(peer, { type: "peer-left", peer: session.id, reason: how.peerLeft });
        }
      }
      session.peers = null;
    }
    session.lastTarget = null;
    if (session.queue.queuedBytes > 0) {
      withDeadline(session.queue.flush(), CLOSE_FLUSH_MS).then(() =>
        this.#shutWrite(session, CLOSE_LINGER_MS)
      );
    } else {
      this.#shutWrite(session, CLOSE_LINGER_MS);
    }
  }

  /**
   * Shuts the write side (the client sees end of stream after our last words) and keeps reading
   * and discarding until the client closes or `lingerMs` pass (the sweep enforces the deadline).
   * Closing a socket with unread input would send a reset, which can destroy our last words.
   */
  #shutWrite(session: Session, lingerMs: number): void {
    if (session.state === "closed") return;
    session.queue.close();
    session.lingerUntil = this.#now() + lingerMs;
    if (session.readEnded) {
      this.#drop(session);
      return;
    }
    try {
      (session.conn as Deno.TcpConn).closeWrite().catch(() => this.#drop(session));
    } catch {
      this.#drop(session);
    }
  }

  /** Releases a session's socket and bookkeeping (idempotent). */
  #drop(session: Session): void {
    session.state = "closed";
    if (!this.#sessions.delete(session)) return;
    if (this.#registry.get(session.id) === session) this.#registry.remove(session);
    const count = (this.#perAddress.get(session.remoteHost) ?? 1) - 1;
    if (count <= 0) this.#perAddress.delete(session.remoteHost);
    else this.#perAddress.set(session.remoteHost, count);
    session.queue.close();
    closeQuietly(session.conn);
  }

  #sweep(): void {
    try {
      const now = this.#now();
      const deadAfter = this.#heartbeatMs * HEARTBEAT_DEAD_FACTOR;
      // One heartbeat frame per sweep, shared by every queue it is pushed to.
      let ping: Uint8Array | null = null;
      for (const session of this.#sessions) {
        if (session.state === "closing") {
          if (session.lingerUntil > 0 && now > session.lingerUntil) this.#drop(session);
          continue;
        }
        if (session.closed) continue;
        if (session.state !== "registered") {
          if (now - session.connectedAt > this.#registrationTimeoutMs) {
            this.#close(session, {
              error: ["timeout", "registration was not completed in time"],
              bye: "timeout",
              peerLeft: "disconnected",
            });
          }
          continue;
        }
        if (now - session.lastSeen > deadAfter) {
          this.#log.info("session {id} timed out", { id: session.id });
          this.#close(session, { bye: "timeout", peerLeft: "timeout" });
        } else if (now - session.lastPingAt >= this.#heartbeatMs) {
          session.lastPingAt = now;
          if (session.queue.queuedBytes > this.#relayQueue + CONTROL_SLACK_BYTES) {
            this.#sendBounded(session, { type: "ping", t: now }); // cuts it off
          } else {
            session.queue.pushOwned(ping ??= encodeControlFrame({ type: "ping", t: now }));
          }
        }
      }
    } catch (error) {
      this.#log.error("heartbeat sweep failed: {error}", { error: String(error) });
    }
  }
}

const REFUSAL_MESSAGES: Partial<Record<ErrorCode, string>> = {
  "relay-quota": "relay rate quota exceeded; frame not forwarded",
  "relay-queue-full": "the receiver's relay queue is full; frame not forwarded",
  "relay-not-brokered": "relay only to a peer you were introduced to; frame not forwarded",
  "peer-offline": "that peer is not online; frame not forwarded",
};

function candidatesOf(session: Session): Candidate[] {
  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  const add = (address: Address, kind: Candidate["kind"]) => {
    const key = `${address.host}|${address.port}`;
    if (seen.has(key)) return;
    seen.add(key);
    candidates.push({ host: address.host, port: address.port, kind });
  };
  if (session.publicEndpoint !== null) add(session.publicEndpoint, "public");
  for (const address of session.localAddresses) add(address, "local");
  return candidates;
}

function sameId(body: Uint8Array, id: Uint8Array): boolean {
  for (let i = 0; i < RELAY_PEER_ID_BYTES; i++) if (body[i] !== id[i]) return false;
  return true;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
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

function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.then(() => {}, () => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]).finally(() => clearTimeout(timer));
}
