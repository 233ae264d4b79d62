/**
 * One client's TCP connection on the server, and the connection's own state machine:
 *
 * ```
 * awaiting-hello --hello--> challenged --register--> verifying --valid--> registered
 *        \                      \                        \                    |
 *         `----------------------`------------------------`---> closing <-----'
 *                                                                  |
 *                                                                closed
 * ```
 *
 * The phase is a typed value: what is known in each phase (the key and nonce while challenged,
 * the {@linkcode RegisteredClient} once registered, the linger deadline while closing) exists only
 * in that phase, and only this class moves it on (each transition checks where it comes from).
 * An idle registered connection holds a few numbers, its socket and an empty write queue; no
 * timers of its own (one sweep serves all, see `liveness.ts`).
 *
 * @module
 */
import type { Runtime, StreamConn } from "../../shared/runtime/mod.ts";
import {
  encodeControlFrame,
  MAX_FRAME_LENGTH,
  type ServerMessage,
  WriteQueue,
} from "../../shared/signaling/mod.ts";
import type { FrameReaderEnd, FrameSink } from "../frame_reader.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { RegisteredClient } from "./registered_client.ts";
import type { CreditWindow } from "./credit_window.ts";

/**
 * Largest frame accepted before registration: `hello` and `register` (16 IPv6 addresses) fit in
 * well under 2 KiB. Issue 11: 2,560 unregistered connections announcing 65,536-byte frames took
 * the server from 147 to 462 MB; now each holds at most this much.
 */
export const MAX_UNREGISTERED_FRAME_LENGTH = 4096;

/** Where a connection is in its life. */
export type ConnectionPhase =
  | { readonly name: "awaiting-hello" }
  | {
    readonly name: "challenged";
    readonly publicKey: string;
    readonly nonce: Uint8Array;
    readonly challengedAt: number;
    /** Bits of the admission puzzle asked in the challenge (0: none). */
    readonly puzzleBits: number;
    /** Features the client declared in `hello`. */
    readonly features: readonly string[];
  }
  | { readonly name: "verifying"; readonly publicKey: string }
  | { readonly name: "registered"; readonly client: RegisteredClient }
  | {
    readonly name: "closing";
    /** Why it is closing (for the log and the `closes` counter). */
    readonly reason: string;
    /** The client it had registered, if it had. */
    readonly client: RegisteredClient | null;
    /** When to stop waiting for the client to close (0 until the write side is shut). */
    readonly lingerUntil: number;
    /** The client has closed its side (or reading ended otherwise). */
    readonly readEnded: boolean;
  }
  | { readonly name: "closed"; readonly reason: string };

/** The names of the phases. */
export type ConnectionPhaseName = ConnectionPhase["name"];

/** What a connection reports to the service that owns it. */
export interface ConnectionEvents {
  /** A complete frame arrived. */
  onFrame(connection: ClientConnection, kind: number, body: Uint8Array): void | Promise<void>;
  /** A frame of length 0 arrived. */
  onEmptyFrame(connection: ClientConnection): void;
  /** A frame length above the limit arrived. */
  onFrameTooLarge(connection: ClientConnection, length: number): void;
  /** Reading ended (end of stream, oversized frame, stop, or a read error). */
  onReadEnd(connection: ClientConnection, end: FrameReaderEnd, error?: unknown): void;
  /** The write queue failed (the socket is broken). */
  onWriteError(connection: ClientConnection, error: unknown): void;
}

/** Settings of a new {@linkcode ClientConnection}. */
export interface ConnectionSettings {
  /** Clock and timers. */
  runtime: Runtime;
  /** Normalised remote address. */
  remoteHost: string;
  /** A number for logs (the n-th connection accepted). */
  serial: number;
  /**
   * The runtime's clock as a function, shared by every connection (default: one made per
   * connection; the service passes one, so an idle connection holds no closure of its own).
   */
  clock?: () => number;
  /** Control messages per second ... */
  controlRate: number;
  /** ... with this burst. */
  controlBurst: number;
}

/** A connection's write queue: tells the connection's owner when a write fails (no closure). */
class ConnectionWriteQueue extends WriteQueue {
  readonly #connection: ClientConnection;
  readonly #events: ConnectionEvents;

  constructor(
    stream: StreamConn,
    connection: ClientConnection,
    events: ConnectionEvents,
    runtime: Runtime,
  ) {
    super(stream, { runtime });
    this.#connection = connection;
    this.#events = events;
  }

  protected override onWriteError(error: unknown): void {
    this.#events.onWriteError(this.#connection, error);
  }
}

/** Raised on a transition from a phase it does not start from (a server bug). */
export class PhaseError extends Error {
  /**
   * @param from The phase the connection was in.
   * @param to The transition asked for.
   */
  constructor(from: ConnectionPhaseName, to: string) {
    super(`connection cannot go from ${from} to ${to}`);
    this.name = "PhaseError";
  }
}

/**
 * A client connection: socket, write queue, liveness, per-connection limits and its phase.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * declare const stream: import("../../shared/runtime/mod.ts").StreamConn;
 * declare const events: ConnectionEvents;
 * const connection = new ClientConnection(stream, events, {
 *   runtime: systemRuntime,
 *   remoteHost: "192.0.2.7",
 *   serial: 1,
 *   controlRate: 50,
 *   controlBurst: 100,
 * });
 * console.log(connection.phase.name); // "awaiting-hello"
 * ```
 */
export class ClientConnection implements FrameSink {
  /** The TCP connection. */
  readonly stream: StreamConn;
  /** Outgoing bytes, drained by one writer loop. */
  readonly queue: WriteQueue;
  /** Normalised remote address (per-address limits, logs). */
  readonly remoteHost: string;
  /** The n-th connection accepted (logs). */
  readonly serial: number;
  /** When it was accepted (ms, runtime clock). */
  readonly connectedAt: number;
  /** Control-message rate limit. */
  readonly controlBucket: TokenBucket;
  /** When bytes last arrived (ms). */
  lastSeen: number;
  /** Protocol violations so far. */
  violations = 0;
  /**
   * Relay credit (issue 11): the most relay frame bytes written to this client and not yet
   * acknowledged (0: the client did not declare `relay-credit`; no limit). Starts at the granted
   * window and follows the client's consumption rate ({@linkcode ClientConnection.relayPace}).
   */
  relayWindow = 0;
  /**
   * Grows and shrinks {@linkcode ClientConnection.relayWindow} with the client's measured
   * consumption rate (issue 14); made at its first credit frame.
   */
  relayPace: CreditWindow | null = null;
  /** Relay frame bytes written to this client and not yet acknowledged. */
  relayUnacked = 0;
  /** Relay frame bytes this client has acknowledged in all (progress, for stall detection). */
  relayAcked = 0;
  /** `queue.writtenBytes` when a relay sender last gave up waiting for it (-1: never). */
  stalledAt = -1;
  /** The read loop, once started. */
  served: Promise<unknown> | null = null;
  readonly #events: ConnectionEvents;
  readonly #runtime: Runtime;
  #phase: ConnectionPhase = { name: "awaiting-hello" };

  /**
   * Wraps an accepted stream (reading is started by the service).
   */
  constructor(stream: StreamConn, events: ConnectionEvents, settings: ConnectionSettings) {
    this.stream = stream;
    this.#events = events;
    this.#runtime = settings.runtime;
    this.remoteHost = settings.remoteHost;
    this.serial = settings.serial;
    this.connectedAt = settings.runtime.now();
    this.lastSeen = this.connectedAt;
    const clock = settings.clock ?? (() => settings.runtime.now());
    this.controlBucket = new TokenBucket(settings.controlRate, settings.controlBurst, clock);
    this.queue = new ConnectionWriteQueue(stream, this, events, settings.runtime);
  }

  /** The current phase. */
  get phase(): ConnectionPhase {
    return this.#phase;
  }

  /** The registered client, while registered. */
  get client(): RegisteredClient | null {
    return this.#phase.name === "registered" ? this.#phase.client : null;
  }

  /** True once closing or closed: nothing it sends is processed any more. */
  get closed(): boolean {
    return this.#phase.name === "closing" || this.#phase.name === "closed";
  }

  /** `awaiting-hello` → `challenged`. */
  challenge(
    publicKey: string,
    nonce: Uint8Array,
    puzzleBits = 0,
    features: readonly string[] = [],
  ): void {
    if (this.#phase.name !== "awaiting-hello") throw new PhaseError(this.#phase.name, "challenged");
    this.#phase = {
      name: "challenged",
      publicKey,
      nonce,
      challengedAt: this.#runtime.now(),
      puzzleBits,
      features,
    };
  }

  /**
   * `challenged` → `verifying`: takes the nonce (one signature attempt per challenge) and
   * returns what the signature is checked against.
   */
  beginVerify(): {
    publicKey: string;
    nonce: Uint8Array;
    challengedAt: number;
    puzzleBits: number;
    features: readonly string[];
  } {
    const phase = this.#phase;
    if (phase.name !== "challenged") throw new PhaseError(phase.name, "verifying");
    this.#phase = { name: "verifying", publicKey: phase.publicKey };
    return {
      publicKey: phase.publicKey,
      nonce: phase.nonce,
      challengedAt: phase.challengedAt,
      puzzleBits: phase.puzzleBits,
      features: phase.features,
    };
  }

  /** `verifying` → `registered`. */
  register(client: RegisteredClient): void {
    if (this.#phase.name !== "verifying") throw new PhaseError(this.#phase.name, "registered");
    this.#phase = { name: "registered", client };
  }

  /**
   * Any open phase → `closing`; returns the client it had registered (null if none, or if it
   * was already closing).
   */
  beginClose(reason: string): RegisteredClient | null {
    if (this.closed) return null;
    const client = this.client;
    this.#phase = { name: "closing", reason, client, lingerUntil: 0, readEnded: false };
    return client;
  }

  /** While closing: the write side is shut; linger until `lingerUntil`. */
  lingerUntil(at: number): void {
    if (this.#phase.name !== "closing") return;
    this.#phase = { ...this.#phase, lingerUntil: at };
  }

  /** While closing: the client closed its side. */
  markReadEnded(): void {
    if (this.#phase.name !== "closing") return;
    this.#phase = { ...this.#phase, readEnded: true };
  }

  /** → `closed` (idempotent); returns false when it was already closed. */
  release(reason: string): boolean {
    if (this.#phase.name === "closed") return false;
    const why = this.#phase.name === "closing" ? this.#phase.reason : reason;
    this.#phase = { name: "closed", reason: why };
    return true;
  }

  /** Queues a control message. */
  send(message: ServerMessage): void {
    this.queue.pushOwned(encodeControlFrame(message));
  }

  /** {@inheritDoc FrameSink.onData} */
  onData(): void {
    this.lastSeen = this.#runtime.now();
  }

  /** {@inheritDoc FrameSink.onFrame} */
  onFrame(kind: number, body: Uint8Array): void | Promise<void> {
    if (this.closed) return; // draining: input is read and discarded
    return this.#events.onFrame(this, kind, body);
  }

  /** {@inheritDoc FrameSink.onEmptyFrame} */
  onEmptyFrame(): void {
    if (this.closed) return;
    this.#events.onEmptyFrame(this);
  }

  /** {@inheritDoc FrameSink.onFrameTooLarge} */
  onFrameTooLarge(length: number): void {
    this.#events.onFrameTooLarge(this, length);
  }

  /** {@inheritDoc FrameSink.frameLimit} */
  frameLimit(): number {
    return this.#phase.name === "registered" ? MAX_FRAME_LENGTH : MAX_UNREGISTERED_FRAME_LENGTH;
  }

  /** {@inheritDoc FrameSink.isStopped} */
  isStopped(): boolean {
    return this.#phase.name === "closed";
  }

  /** {@inheritDoc FrameSink.onEnd} */
  onEnd(end: FrameReaderEnd, error?: unknown): void {
    this.#events.onReadEnd(this, end, error);
  }

  /** A short label for logs: `#serial host` plus the ID once registered. */
  get label(): string {
    const client = this.client ?? (this.#phase.name === "closing" ? this.#phase.client : null);
    return client === null
      ? `#${this.serial} ${this.remoteHost}`
      : `#${this.serial} ${client.shortId} ${this.remoteHost}`;
  }
}
