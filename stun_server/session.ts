/**
 * One client connection's state on the server. Kept small: an idle registered session holds a
 * few numbers and strings, its socket and its (empty) write queue; no timers of its own.
 *
 * @module
 */
import {
  type Address,
  encodeControlFrame,
  type ServerMessage,
  WriteQueue,
} from "../shared/signaling/mod.ts";
import type { FrameReaderEnd, FrameSink } from "./frame_reader.ts";
import { normalizeHost } from "./host_address.ts";
import type { RegistryEntry, StunEndpoint } from "./registry.ts";
import type { TokenBucket } from "./token_bucket.ts";

/**
 * Where a session is in its life: `new` (waiting for `hello`), `challenged` (waiting for
 * `register`), `registered` (may broker and relay), `closing` (its last words are being
 * written, then its input is drained until the client closes or a deadline, so the client reads
 * them instead of a reset), `closed` (socket released).
 */
export type SessionState = "new" | "challenged" | "registered" | "closing" | "closed";

/** What a session forwards to the server that owns it. */
export interface SessionHandler {
  /** A complete frame arrived on `session`. */
  onFrame(session: Session, kind: number, body: Uint8Array): void | Promise<void>;
  /** A frame of length 0 arrived on `session`. */
  onEmptyFrame(session: Session): void;
  /** A frame length above the limit arrived on `session`. */
  onFrameTooLarge(session: Session, length: number): void;
  /** An authenticated STUN Binding for `session` came from `endpoint`. */
  onStunBinding(session: Session, endpoint: Address): void;
  /** Reading from `session` ended (end of stream, oversized frame, stop, or a read error). */
  onReadEnd(session: Session, end: FrameReaderEnd, error?: unknown): void;
  /** The session's write queue failed (the socket is broken). */
  onWriteError(session: Session, error: unknown): void;
  /** The current time in milliseconds. */
  now(): number;
}

/**
 * A client connection: socket, write queue, registration state, brokered peers and quotas.
 *
 * @example
 * ```ts
 * declare const conn: Deno.TcpConn;
 * declare const handler: SessionHandler;
 * const session = new Session(conn, "127.0.0.1", handler, Date.now());
 * session.send({ type: "ping", t: Date.now() });
 * ```
 */
export class Session implements RegistryEntry, FrameSink {
  /** The TCP connection. */
  readonly conn: Deno.Conn;
  /** Outgoing bytes, drained by one writer loop. */
  readonly queue: WriteQueue;
  /** Normalised remote address (for per-address limits and logs). */
  readonly remoteHost: string;
  readonly #handler: SessionHandler;
  /** Lifecycle state. */
  state: SessionState = "new";
  /** When the connection was accepted (ms). */
  readonly connectedAt: number;
  /** When bytes last arrived (ms). */
  lastSeen: number;
  /** When the server last sent `ping` (ms). */
  lastPingAt = 0;
  /** Latest measured round-trip time (ms), -1 until measured. */
  rttMs = -1;
  /** Protocol violations so far. */
  violations = 0;
  /** Control-message rate limit (set at accept). */
  controlBucket: TokenBucket | null = null;
  /** Relayed-bytes rate limit (created on first relay). */
  relayBucket: TokenBucket | null = null;
  /** The Ed25519 public key from `hello`, base64 as received (32 bytes once decoded). */
  publicKey = "";
  /** The outstanding challenge nonce (cleared once used). */
  nonce: Uint8Array | null = null;
  /** The peer ID, once registered. */
  id = "";
  /** The peer ID's 20 bytes, made on first use by the relay (written into relayed frames). */
  idBytes: Uint8Array | null = null;
  /** The issued STUN username. */
  stunUsername = "";
  /** The issued STUN password. */
  stunPassword = "";
  /** The client's local UDP addresses. */
  localAddresses: Address[] = [];
  /** The public UDP endpoint seen over STUN. */
  publicEndpoint: Address | null = null;
  /** Sessions this one is brokered with, by ID (null when none). */
  peers: Map<string, Session> | null = null;
  /** The last relay destination (skips the ID lookup for runs of frames to one peer). */
  lastTarget: Session | null = null;
  /** While closing: when to stop waiting for the client to close (0 until the write side is shut). */
  lingerUntil = 0;
  /** While closing: the client has closed its side (or reading ended otherwise). */
  readEnded = false;
  /** `queue.writtenBytes` when a relay sender last gave up waiting for this session (-1: never). */
  stalledAt = -1;
  /** The read loop, once started. */
  served: Promise<unknown> | null = null;

  /** {@inheritDoc FrameSink.onEnd} */
  onEnd(end: FrameReaderEnd, error?: unknown): void {
    this.#handler.onReadEnd(this, end, error);
  }

  /** {@inheritDoc FrameSink.isStopped} */
  isStopped(): boolean {
    return this.state === "closed";
  }

  /**
   * Wraps an accepted connection.
   *
   * @example
   * ```ts
   * declare const conn: Deno.TcpConn;
   * declare const handler: SessionHandler;
   * const session = new Session(conn, "::1", handler, 0);
   * ```
   */
  constructor(conn: Deno.Conn, remoteHost: string, handler: SessionHandler, now: number) {
    this.conn = conn;
    this.remoteHost = remoteHost;
    this.#handler = handler;
    this.connectedAt = now;
    this.lastSeen = now;
    this.queue = new WriteQueue(conn, { onError: (e) => handler.onWriteError(this, e) });
  }

  /** True once the session is closing or closed: nothing it sends is processed any more. */
  get closed(): boolean {
    return this.state === "closing" || this.state === "closed";
  }

  /**
   * Queues a control message.
   *
   * @example
   * ```ts
   * declare const session: Session;
   * session.send({ type: "pong", t: 1 });
   * ```
   */
  send(message: ServerMessage): void {
    this.queue.pushOwned(encodeControlFrame(message));
  }

  /** {@inheritDoc FrameSink.onData} */
  onData(): void {
    this.lastSeen = this.#handler.now();
  }

  /** {@inheritDoc FrameSink.onFrame} */
  onFrame(kind: number, body: Uint8Array): void | Promise<void> {
    if (this.state === "closing") return; // draining: input is read and discarded
    return this.#handler.onFrame(this, kind, body);
  }

  /** {@inheritDoc FrameSink.onEmptyFrame} */
  onEmptyFrame(): void {
    if (this.state === "closing") return;
    this.#handler.onEmptyFrame(this);
  }

  /** {@inheritDoc FrameSink.onFrameTooLarge} */
  onFrameTooLarge(length: number): void {
    this.#handler.onFrameTooLarge(this, length);
  }

  /** {@inheritDoc RegistryEntry.onStunBinding} */
  onStunBinding(endpoint: StunEndpoint): void {
    this.#handler.onStunBinding(this, {
      host: normalizeHost(endpoint.hostname),
      port: endpoint.port,
    });
  }
}
