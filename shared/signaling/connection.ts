/**
 * A client's signaling connection: framing, strict validation of server messages, a batching
 * writer, registration with the Ed25519 challenge, and a pull-based event stream whose depth is
 * bounded (a consumer that stops pulling stops the reads, so TCP pushes back on the server).
 *
 * @module
 */
import { type Runtime, type StreamConn, systemRuntime } from "../runtime/mod.ts";
import {
  FRAME_HEADER_BYTES,
  FRAME_KIND_CONTROL,
  FRAME_KIND_RELAY,
  MAX_FRAME_LENGTH,
  RELAY_PEER_ID_BYTES,
  SIGNALING_VERSION,
} from "./constants.ts";
import {
  decodeControlBody,
  decodeRelayBody,
  encodeControlFrame,
  encodeCreditFrame,
  FrameDecoder,
  peerIdToBytes,
  writeFrameHeader,
} from "./frame.ts";
import {
  type Address,
  type ClientFeature,
  type ClientMessage,
  parseServerMessage,
  type ServerMessage,
  type ServerMessageOf,
} from "./messages.ts";
import { solvePuzzle } from "./puzzle.ts";
import { registrationSignedData } from "./registration.ts";
import { WriteQueue } from "./write_queue.ts";

/** Something that arrived from the server: a control message or a relayed payload. */
export type SignalingEvent =
  | { kind: "message"; message: ServerMessage }
  | { kind: "relay"; peer: string; payload: Uint8Array };

/** What {@linkcode SignalingConnection.register} needs of an identity. */
export interface RegistrationSigner {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Signs `data` with the matching private key. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Options of {@linkcode SignalingConnection.connect}. */
export interface SignalingConnectOptions {
  /** Server host name or address. */
  hostname: string;
  /** Server TCP port. */
  port: number;
  /** Opens the TCP connection (default `runtime.net.connect`); lets tests inject transports. */
  dial?: (options: { hostname: string; port: number }) => Promise<StreamConn | Deno.Conn>;
  /** Events buffered before reading pauses (default 4096). */
  maxBufferedEvents?: number;
  /** Clock, timers and network (default `systemRuntime`). */
  runtime?: Runtime;
}

/** A failure reported by the server (`error` or `bye`) while waiting for a reply. */
export class SignalingRequestError extends Error {
  /** The server message that ended the wait (`error` or `bye`), if any. */
  readonly reply: ServerMessageOf<"error"> | ServerMessageOf<"bye"> | undefined;

  /**
   * Creates the error.
   *
   * @example
   * ```ts
   * const error = new SignalingRequestError("refused", { type: "bye", reason: "timeout" });
   * console.log(error.reply?.type); // "bye"
   * ```
   */
  constructor(
    message: string,
    reply?: ServerMessageOf<"error"> | ServerMessageOf<"bye">,
  ) {
    super(message);
    this.name = "SignalingRequestError";
    this.reply = reply;
  }
}

/**
 * Bytes asked of the socket per read: room for a few 64 KiB relay frames, so most frames are
 * decoded whole from the read buffer (one copy) rather than pieced together across reads (issue
 * 14). One read may overshoot {@linkcode MAX_BUFFERED_BYTES} by this much: at most 512 KiB of
 * unread relay payload in all.
 */
const READ_BUFFER_BYTES = 256 * 1024;
/** Buffer the frame decoder keeps between frames: one largest frame (see `FrameDecoder`). */
const DECODER_RETAIN_BYTES = 4 + MAX_FRAME_LENGTH;
/**
 * Relay payload bytes buffered (read, not yet taken with `next`) before reading pauses: the
 * event count alone (4,096 by default) let a relay flood of 60 KB frames park up to 245 MB in a
 * client that consumes more slowly than it reads. Beyond it the TCP window pushes back to the
 * server, whose per-receiver fair queue decides what comes next. Latency under the attack
 * bench's flood did not measurably change (A/B, 3 runs each, load average 3.7: p50 1.1-7.5 ms
 * before, 1.5-11.4 ms after: within the run-to-run spread); memory is what this bounds.
 */
const MAX_BUFFERED_BYTES = 256 * 1024;
/** What a control message counts against {@linkcode MAX_BUFFERED_BYTES}. */
const CONTROL_EVENT_BYTES = 256;
/**
 * Relay frame bytes consumed between two credit frames (or a quarter of the server's window if
 * that is smaller): 16 KiB against a 64 KiB window keeps three quarters of the window in flight.
 */
const CREDIT_ACK_BYTES = 16 * 1024;

/**
 * One TCP signaling connection from a client to the server.
 *
 * @example
 * ```ts
 * import { Identity } from "../identity/mod.ts";
 * const me = await Identity.generate();
 * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
 * const registered = await conn.register(me, []);
 * console.log(registered.id === me.id); // true
 * conn.close();
 * ```
 */
export class SignalingConnection {
  readonly #conn: StreamConn;
  readonly #runtime: Runtime;
  readonly #queue: WriteQueue;
  /** Keeps room for a partial 64 KiB relay frame between reads (issue 14). */
  readonly #decoder = new FrameDecoder({ retainBytes: DECODER_RETAIN_BYTES });
  /** The last peer {@linkcode SignalingConnection.reserveRelay} wrote to, and its ID bytes. */
  #relayPeer = "";
  #relayPeerBytes: Uint8Array = new Uint8Array(RELAY_PEER_ID_BYTES);
  readonly #maxBuffered: number;
  #events: SignalingEvent[] = [];
  #eventHead = 0;
  /** Bytes of the buffered events (relay payloads; control messages count a fixed amount). */
  #bufferedBytes = 0;
  #waiter: (() => void) | null = null;
  #resumeReading: (() => void) | null = null;
  #closed = false;
  #closeReason: string | undefined;
  /** Acknowledge after this many consumed relay frame bytes (0: the server granted no credit). */
  #creditAckBytes = 0;
  /** Relay frame bytes consumed and not yet acknowledged. */
  #consumed = 0;
  /** Resolves when the connection has closed and its read loop has ended. */
  readonly closed: Promise<void>;

  /**
   * Connects to a signaling server.
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.close();
   * ```
   */
  static async connect(options: SignalingConnectOptions): Promise<SignalingConnection> {
    const runtime = options.runtime ?? systemRuntime;
    const dial = options.dial ?? ((o) => runtime.net.connect(o));
    const conn = await dial({ hostname: options.hostname, port: options.port });
    return new SignalingConnection(conn as StreamConn, options.maxBufferedEvents, runtime);
  }

  /**
   * Wraps an open connection.
   *
   * @example
   * ```ts
   * const tcp = await Deno.connect({ hostname: "127.0.0.1", port: 3478 });
   * const conn = new SignalingConnection(tcp);
   * conn.close();
   * ```
   */
  constructor(
    conn: StreamConn | Deno.Conn,
    maxBufferedEvents = 4096,
    runtime: Runtime = systemRuntime,
  ) {
    this.#conn = conn as StreamConn;
    // Credit frames are 9 bytes: Nagle's algorithm would hold one behind an unacknowledged
    // segment for a delayed ACK (measured: 64 MiB over the relay 14 s instead of 4 s).
    try {
      this.#conn.setNoDelay?.(true);
    } catch {
      // not a TCP socket
    }
    this.#runtime = runtime;
    this.#maxBuffered = maxBufferedEvents;
    this.#queue = new WriteQueue(this.#conn, {
      onError: () => this.#shutdown("write failed"),
      runtime,
    });
    this.closed = this.#readLoop();
  }

  /** Why the connection closed (undefined while open or after a local close). */
  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** True once the connection is closed. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Bytes queued for sending and not yet written to the socket. */
  get queuedBytes(): number {
    return this.#queue.queuedBytes;
  }

  /**
   * Queues a control message (never awaits; see {@linkcode SignalingConnection.flush}).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.send({ type: "ping", t: 1 });
   * conn.close();
   * ```
   */
  send(message: ClientMessage): void {
    this.#queue.push(encodeControlFrame(message));
  }

  /**
   * Queues a relay frame carrying `payload` to `peer` (40 hex digits).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.sendRelay("00".repeat(20), new Uint8Array([1]));
   * conn.close();
   * ```
   */
  sendRelay(peer: string, payload: Uint8Array): void {
    // Built in the write queue itself: no frame of its own to allocate and copy again.
    this.reserveRelay(peer, payload.length).set(payload);
  }

  /**
   * Reserves a relay frame to `peer` (40 hex digits) with a payload of `payloadLength` bytes
   * (1 to `MAX_RELAY_PAYLOAD`; a `RangeError` otherwise) at the end of the write queue, and returns
   * the payload's space for the caller to fill before it next yields to the event loop: a sealed
   * packet is written straight into it, with no frame of its own to allocate and copy (issue 14).
   * {@linkcode SignalingConnection.cancelRelay} takes it back if it cannot be filled after all.
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.reserveRelay("00".repeat(20), 3).set([1, 2, 3]);
   * conn.close();
   * ```
   */
  reserveRelay(peer: string, payloadLength: number): Uint8Array {
    const length = 1 + RELAY_PEER_ID_BYTES + payloadLength;
    if (!Number.isInteger(payloadLength) || payloadLength < 1 || length > MAX_FRAME_LENGTH) {
      throw new RangeError(`relay payload of ${payloadLength} bytes is out of range`);
    }
    if (peer !== this.#relayPeer) {
      this.#relayPeerBytes = peerIdToBytes(peer);
      this.#relayPeer = peer;
    }
    const frame = this.#queue.reserve(FRAME_HEADER_BYTES + length - 1);
    writeFrameHeader(frame, 0, length, FRAME_KIND_RELAY);
    frame.set(this.#relayPeerBytes, FRAME_HEADER_BYTES);
    return frame.subarray(FRAME_HEADER_BYTES + RELAY_PEER_ID_BYTES);
  }

  /**
   * Takes back the relay frame just reserved with {@linkcode SignalingConnection.reserveRelay}
   * (same tick, nothing reserved or queued since): nothing of it is sent. Returns false when it
   * could not be taken back; then its payload space (already zeroed here) goes out as it is.
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * const space = conn.reserveRelay("00".repeat(20), 3);
   * console.log(conn.cancelRelay(space)); // true
   * conn.close();
   * ```
   */
  cancelRelay(payload: Uint8Array): boolean {
    if (this.#queue.unreserve(FRAME_HEADER_BYTES + RELAY_PEER_ID_BYTES + payload.length)) {
      return true;
    }
    payload.fill(0);
    return false;
  }

  /**
   * Queues raw bytes as they are (for tests that send malformed frames).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.sendRaw(new Uint8Array([0, 0, 0, 0]));
   * conn.close();
   * ```
   */
  sendRaw(bytes: Uint8Array): void {
    this.#queue.push(bytes);
  }

  /**
   * Resolves when everything queued so far has been written.
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.send({ type: "bye" });
   * await conn.flush();
   * conn.close();
   * ```
   */
  flush(): Promise<void> {
    return this.#queue.flush();
  }

  /**
   * The next event, or `undefined` once the connection is closed and every event was taken.
   * Rejects with a `Deno.errors.TimedOut` after `timeoutMs` (when given).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * const event = await conn.next(5000);
   * console.log(event?.kind);
   * conn.close();
   * ```
   */
  async next(timeoutMs?: number): Promise<SignalingEvent | undefined> {
    const runtime = this.#runtime;
    const deadline = timeoutMs === undefined ? Infinity : runtime.now() + timeoutMs;
    while (this.#eventHead >= this.#events.length) {
      if (this.#closed) return undefined;
      const remaining = deadline - runtime.now();
      if (remaining <= 0) throw new Deno.errors.TimedOut("no signaling event in time");
      let timer: number | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        if (remaining !== Infinity) timer = runtime.setTimer(resolve, remaining);
      });
      runtime.clearTimer(timer);
      this.#waiter = null;
    }
    const event = this.#events[this.#eventHead];
    this.#events[this.#eventHead++] = undefined as unknown as SignalingEvent;
    this.#bufferedBytes -= eventBytes(event);
    if (event.kind === "relay" && this.#creditAckBytes > 0) {
      this.#consumed += FRAME_HEADER_BYTES + RELAY_PEER_ID_BYTES + event.payload.length;
      if (this.#consumed >= this.#creditAckBytes) {
        this.#queue.push(encodeCreditFrame(this.#consumed));
        this.#consumed = 0;
      }
    }
    if (this.#eventHead > 1024 && this.#eventHead * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#eventHead);
      this.#eventHead = 0;
    }
    if (
      this.#resumeReading && this.#events.length - this.#eventHead < this.#maxBuffered / 2 &&
      this.#bufferedBytes < MAX_BUFFERED_BYTES / 2
    ) {
      const resume = this.#resumeReading;
      this.#resumeReading = null;
      resume();
    }
    return event;
  }

  /**
   * Waits for the next control message of type `type`, skipping other events, within
   * `timeoutMs`. An `error` or `bye` from the server rejects with
   * {@linkcode SignalingRequestError} (unless it is the awaited type).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.send({ type: "ping", t: 1 });
   * const pong = await conn.waitFor("pong", 5000);
   * console.log(pong.t); // 1
   * conn.close();
   * ```
   */
  async waitFor<T extends ServerMessage["type"]>(
    type: T,
    timeoutMs: number,
  ): Promise<ServerMessageOf<T>> {
    const deadline = this.#runtime.now() + timeoutMs;
    for (;;) {
      const event = await this.next(Math.max(1, deadline - this.#runtime.now()));
      if (event === undefined) {
        throw new SignalingRequestError(
          `connection closed while waiting for ${type}: ${this.#closeReason ?? "closed"}`,
        );
      }
      if (event.kind !== "message") continue;
      const message = event.message;
      if (message.type === type) return message as ServerMessageOf<T>;
      if (message.type === "error" || message.type === "bye") {
        throw new SignalingRequestError(
          `server replied ${message.type} ${
            message.type === "error" ? message.code : message.reason
          } while waiting for ${type}`,
          message,
        );
      }
    }
  }

  /**
   * Registers with the server: `hello`, signs the challenge, `register`, and returns the
   * `registered` message. Rejects with {@linkcode SignalingRequestError} when refused.
   * `registrationNonce` (optional, at most 64 characters, one random value per client process)
   * is echoed in `registered` and in the `bye {reason: "replaced"}` a superseded connection gets,
   * so a client can tell its own retried registration from another instance of its identity.
   * The client always declares the `puzzle` feature and solves the admission puzzle when the
   * server asks for one (under load); `options.consent` declares `consent`: the server then asks
   * this client (`introduce-request`) before introducing anyone to it, and the caller must answer
   * each with `introduce-answer`. It also declares `relay-credit` (unless `options.relayCredit` is
   * false, as a client from before it would): when `registered.relay.creditBytes`
   * grants credit, every relay frame taken with {@linkcode SignalingConnection.next} counts as
   * consumed, and a credit frame (kind 0x03) acknowledges each 16 KiB consumed.
   *
   * @example
   * ```ts
   * import { Identity } from "../identity/mod.ts";
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * const registered = await conn.register(await Identity.generate(), [], 10_000);
   * console.log(registered.stunUsername);
   * conn.close();
   * ```
   */
  async register(
    signer: RegistrationSigner,
    localAddresses: Address[],
    timeoutMs = 10_000,
    registrationNonce?: string,
    options: { consent?: boolean; relayCredit?: boolean } = {},
  ): Promise<ServerMessageOf<"registered">> {
    const deadline = this.#runtime.now() + timeoutMs;
    const features: ClientFeature[] = ["puzzle"];
    if (options.consent) features.push("consent");
    if (options.relayCredit !== false) features.push("relay-credit");
    this.send({
      type: "hello",
      version: SIGNALING_VERSION,
      publicKey: signer.publicKey.toBase64(),
      features,
    });
    const challenge = await this.waitFor("challenge", timeoutMs);
    const nonce = Uint8Array.fromBase64(challenge.nonce);
    const signature = await signer.sign(registrationSignedData(nonce));
    const work = challenge.puzzle === undefined
      ? undefined
      : solvePuzzle(nonce, signer.publicKey, challenge.puzzle.bits).toBase64();
    this.send({
      type: "register",
      signature: signature.toBase64(),
      localAddresses,
      ...(registrationNonce !== undefined ? { registrationNonce } : {}),
      ...(work !== undefined ? { work } : {}),
    });
    const registered = await this.waitFor(
      "registered",
      Math.max(1, deadline - this.#runtime.now()),
    );
    const credit = registered.relay.creditBytes;
    // Relay frames come only after `registered`, so every one taken from here on is counted.
    if (credit !== undefined) {
      this.#creditAckBytes = Math.max(1, Math.min(CREDIT_ACK_BYTES, Math.floor(credit / 4)));
    }
    return registered;
  }

  /**
   * Iterates events until the connection closes.
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * for await (const event of conn) {
   *   if (event.kind === "relay") console.log(event.peer, event.payload.length);
   *   break;
   * }
   * conn.close();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<SignalingEvent> {
    for (;;) {
      const event = await this.next();
      if (event === undefined) return;
      yield event;
    }
  }

  /**
   * Closes the connection now, dropping unsent bytes (call {@linkcode SignalingConnection.flush}
   * first to send them).
   *
   * @example
   * ```ts
   * const conn = await SignalingConnection.connect({ hostname: "127.0.0.1", port: 3478 });
   * conn.close();
   * await conn.closed;
   * ```
   */
  close(): void {
    this.#shutdown(undefined);
  }

  #shutdown(reason: string | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#queue.close();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#wake();
    const resume = this.#resumeReading;
    this.#resumeReading = null;
    resume?.();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  #deliver(event: SignalingEvent): void {
    this.#events.push(event);
    this.#bufferedBytes += eventBytes(event);
    this.#wake();
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (!this.#closed) {
        if (
          this.#events.length - this.#eventHead >= this.#maxBuffered ||
          this.#bufferedBytes >= MAX_BUFFERED_BYTES
        ) {
          await new Promise<void>((resolve) => this.#resumeReading = resolve);
          continue;
        }
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.#shutdown("server closed the connection");
          break;
        }
        for (const frame of this.#decoder.push(buffer.subarray(0, n))) {
          if (frame.kind === FRAME_KIND_CONTROL) {
            const parsed = parseServerMessage(decodeControlBody(frame.body));
            if (!parsed.ok) throw new Error(`invalid server message: ${parsed.error}`);
            this.#deliver({ kind: "message", message: parsed.message });
          } else if (frame.kind === FRAME_KIND_RELAY) {
            const { peer, payload } = decodeRelayBody(frame.body);
            this.#deliver({ kind: "relay", peer, payload });
          } else {
            throw new Error(`unknown frame kind ${frame.kind}`);
          }
        }
      }
    } catch (error) {
      this.#shutdown(this.#closed ? this.#closeReason : String(error));
    }
  }
}

function eventBytes(event: SignalingEvent): number {
  return event.kind === "relay" ? event.payload.length : CONTROL_EVENT_BYTES;
}
