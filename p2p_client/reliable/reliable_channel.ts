/**
 * A reliable, ordered, exactly-once message channel to one peer, as a pure state machine: no
 * sockets and no timers. The caller seals the frames it emits into TRANSPORT packets on whatever
 * path is current, feeds received DATA and ACK frames to {@linkcode ReliableChannel.receive}, and
 * runs {@linkcode ReliableChannel.tick} at {@linkcode ReliableChannel.nextDeadline}.
 *
 * - Messages up to `maxMessageBytes` (1 MiB) are cut into DATA fragments that fit
 *   {@linkcode MAX_DATA_PAYLOAD_BYTES} (a 1200-byte packet) and numbered with a 48-bit sequence
 *   number per stream; once the path is known to carry larger packets (a PMTU prober, RFC 8899),
 *   {@linkcode ReliableChannel.setMaxFrameBytes} lets later fragments grow up to a 65,507-byte
 *   TRANSPORT_LARGE packet (fragments already cut keep their size).
 * - The receiver acknowledges cumulatively plus up to 64 selective ranges: at once for anything
 *   out of order or duplicated and for every second in-order fragment; a fragment that completes
 *   a message at the next {@linkcode ReliableChannel.tick} (its deadline is now: the caller runs
 *   it once the packets already received are processed); any other within `ackDelayMs`.
 * - The sender keeps a sliding window (at most the peer's advertised window of fragments beyond
 *   the cumulative point: the receiver's buffer is bounded), a NewReno-style congestion window
 *   that grows only while at least half of it is used (RFC 9002, 7.8) and leaves slow start when
 *   the round trip time grows (HyStart++, RFC 9406), before the receiver's socket overflows,
 *   fast retransmission when three later fragments were acknowledged (fewer for tiny flights,
 *   RFC 5827), a tail-loss probe after 2·SRTT of silence (RFC 8985), and an RFC 6298
 *   retransmission timeout (SRTT/RTTVAR, Karn's rule, exponential backoff, 200 ms to 5 s) that
 *   sends the oldest fragment twice on a datagram path (RFC 9002's two probes; at 44 % loss each
 *   way, 4 of 8 seeded runs left 19-23 of 60 messages unsent after 30 s with one copy, none with
 *   two).
 * - With data outstanding and no acknowledgement progress for `failureTimeoutMs` (30 s), the
 *   channel fails and reports every unacknowledged message ID through `onFailure`: nothing is
 *   lost silently.
 * - A path switch needs nothing (later frames just go another way); calling
 *   {@linkcode ReliableChannel.pathChanged} also resets the RTT estimate and resends the
 *   unacknowledged fragments at once.
 *
 * @module
 */
import {
  type AckFrame,
  DATA_FIRST_HEADER_BYTES,
  type DataFrame,
  decodeFrame,
  encodeDataHead,
  encodeFrame,
  FrameType,
  MAX_DATA_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  MAX_LARGE_FRAME_BYTES,
  MAX_SEQUENCE,
} from "../../shared/peer/frames.ts";
import {
  ChannelClosedError,
  ChannelProtocolError,
  MessageTooLargeError,
  PeerUnreachableError,
  SendQueueFullError,
} from "./errors.ts";
import { ReceiveBuffer } from "./receive_buffer.ts";
import { RingBuffer } from "./ring_buffer.ts";
import { RttEstimator } from "./rtt_estimator.ts";

/** Default largest message: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 1 << 20;

/** Fragments acknowledged above a missing one before it is deemed lost (as TCP's dupthresh). */
const REORDERING_THRESHOLD = 3;

/** HyStart++ (RFC 9406): RTT samples per round before its delay test, and the threshold bounds. */
const HYSTART_SAMPLES = 8;
const HYSTART_MIN_THRESHOLD_MS = 4;
const HYSTART_MAX_THRESHOLD_MS = 16;

/** Settings and hooks of a {@linkcode ReliableChannel}. */
export interface ReliableChannelOptions {
  /** Clock in ms (monotonic). */
  now: () => number;
  /** Sends one encoded DATA or ACK frame (plaintext): the caller seals it and sends it. */
  send: (frame: Uint8Array) => void;
  /**
   * When given, DATA frames go through this hook instead of `send`, as their header and a view
   * of the message bytes they carry (the frame is `head ‖ payload`): the caller seals the two
   * without joining them (`SecureSession.sealPartsSync`), one copy fewer per fragment.
   */
  sendParts?: (head: Uint8Array, payload: Uint8Array) => void;
  /** Receives each complete message, in order, exactly once. */
  deliver: (message: Uint8Array) => void;
  /**
   * A message that fits one DATA fragment is delivered as a view of the frame's payload, valid
   * only during `deliver` (default false: a copy of its own). For a caller that opens packets in
   * place in a reused buffer and whose `deliver` copies what it keeps (file chunks go into a
   * pool): no allocation per bulk packet.
   */
  deliverViews?: boolean;
  /**
   * The peer has received message `messageId` (called in the order the messages went on the wire:
   * a `normal` message may overtake `bulk` ones queued before it).
   */
  onAcknowledged?: (messageId: number) => void;
  /**
   * The channel failed (peer unreachable, protocol violation) or was closed with messages
   * outstanding: `undeliveredMessageIds` were not acknowledged (the peer may still have
   * received some of them). `neverSentIds` is the subset of which not one byte was ever sent:
   * those certainly did not arrive. Called at most once; the channel is closed afterwards.
   */
  onFailure?: (error: Error, undeliveredMessageIds: number[], neverSentIds: number[]) => void;
  /** Largest message sent or accepted (default 1 MiB). */
  maxMessageBytes?: number;
  /** Most messages queued or in flight, not yet acknowledged (default 1024). */
  maxQueuedMessages?: number;
  /** Most bytes queued or in flight, not yet acknowledged (default 16 MiB). */
  maxQueuedBytes?: number;
  /**
   * Most bytes of `bulk` messages queued or in flight, not yet acknowledged (default 8 MiB),
   * counted apart from the limits above so bulk data never fills the queue of ordinary messages.
   */
  maxBulkBytes?: number;
  /** Receive window advertised to the peer and largest send window, in fragments (default 512). */
  windowFragments?: number;
  /** Congestion window at the start and after a path change, in fragments (default 10). */
  initialCongestionWindow?: number;
  /** RTO before any RTT measurement (default 1000 ms). */
  initialRtoMs?: number;
  /** Lower bound of the RTO (default 200 ms). */
  minRtoMs?: number;
  /** Upper bound of the RTO (default 5 s: at least 8 attempts before the 30 s failure timeout). */
  maxRtoMs?: number;
  /**
   * Longest delay of an acknowledgement for in-order data that does not complete a message
   * (default 10 ms). A completed message is acknowledged at the next tick.
   */
  ackDelayMs?: number;
  /** Time without acknowledgement progress, data outstanding, before failing (default 30 s). */
  failureTimeoutMs?: number;
  /** This channel's stream ID (u32); random by default. A new channel must use a new one. */
  streamId?: number;
  /**
   * The peer's UDP receive buffer, as far as we can tell (default 196,608 bytes: Linux's default
   * `rmem_default` of 212,992 less a margin; a peer that enlarged its own says so in a PARAMETERS
   * frame: {@linkcode ReliableChannel.setReceiveBufferBytes}). While the round trip is
   * under `smallRttMs` (or not yet measured), fragments in flight are kept within it, counting
   * each as its bytes plus 1 KiB of kernel overhead: on such a path the data in flight waits in
   * that buffer rather than in the network, and what does not fit is lost. Measured on loopback
   * with 65,507-byte packets (three fit): 0 retransmissions instead of about 440 per 256 MiB, and
   * twice the rate.
   */
  receiveBufferBytes?: number;
  /** Round trips below this (ms) count as "the data in flight is in the peer's buffer" (default 2). */
  smallRttMs?: number;
  /**
   * Largest DATA frame at the start (default and least {@linkcode MAX_FRAME_BYTES}, 1171, which a
   * 1200-byte packet carries; at most {@linkcode MAX_LARGE_FRAME_BYTES}). See
   * {@linkcode ReliableChannel.setMaxFrameBytes}.
   */
  maxFrameBytes?: number;
}

/** Counters and estimates of a {@linkcode ReliableChannel}. */
export interface ReliableChannelStats {
  /** Smoothed RTT in ms, once measured. */
  srtt: number | undefined;
  /** RTT variation in ms, once measured. */
  rttvar: number | undefined;
  /** Current retransmission timeout in ms. */
  rto: number;
  /** Congestion window in fragments. */
  congestionWindow: number;
  /** Fragments sent and not yet acknowledged (cumulatively or selectively). */
  inFlight: number;
  /** Messages accepted by `sendMessage` and not yet acknowledged. */
  queued: number;
  /** Bytes of those messages. */
  queuedBytes: number;
  /** Fragments sent again. */
  retransmissions: number;
  /** Retransmission timeouts that fired. */
  timeouts: number;
  /** Tail-loss probes sent (retransmissions after 2·SRTT of silence, before the RTO). */
  probes: number;
  /** Frames handed to `send` (DATA, first or again, and ACK). */
  framesSent: number;
  /** Frames whose `send` hook threw (counted as lost). */
  sendErrors: number;
  /** Messages delivered to the application. */
  delivered: number;
  /** Messages the peer acknowledged. */
  acknowledged: number;
  /** DATA fragments received that were already held or delivered. */
  duplicatesReceived: number;
  /** Out-of-order fragments the receive buffer holds. */
  receiveBuffered: number;
}

interface Fragment {
  seq: number;
  /** The encoded frame, or only its header when `payload` is set (`sendParts`). */
  frame: Uint8Array;
  payload: Uint8Array | undefined;
  messageId: number;
  /** The message's length when this is its last fragment, else -1. */
  lastOfMessage: number;
  /** Its message was sent as `bulk`. */
  bulk: boolean;
  sentAt: number;
  sendOrder: number;
  transmissions: number;
  /** Sent more than once or timed out: its acknowledgement gives no RTT sample (Karn). */
  ambiguous: boolean;
  sacked: boolean;
  lost: boolean;
}

interface PendingMessage {
  id: number;
  bytes: Uint8Array;
  offset: number;
  bulk: boolean;
}

/**
 * How a message is scheduled: `normal` ones (chat lines, control) are cut into fragments before
 * any `bulk` one (file data) not yet started, so a line never waits behind queued bulk data, only
 * behind the rest of the bulk message being cut and what is in flight.
 */
export type MessagePriority = "normal" | "bulk";

/**
 * One peer's reliable message channel.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * import { ReliableChannel } from "./reliable_channel.ts";
 * declare function sealAndSend(frame: Uint8Array): void;
 * const channel = new ReliableChannel({
 *   now: () => systemRuntime.now(),
 *   send: (frame) => sealAndSend(frame),
 *   deliver: (message) => console.log(new TextDecoder().decode(message)),
 *   onAcknowledged: (id) => console.log(`message ${id} delivered`),
 *   onFailure: (error, ids) => console.log(`${ids.length} messages failed: ${error.message}`),
 * });
 * const id = channel.sendMessage(new TextEncoder().encode("hello"));
 * // on every DATA/ACK frame from the peer: channel.receive(frame);
 * // whenever channel.nextDeadline() passes: channel.tick();
 * ```
 */
export class ReliableChannel {
  /** This channel's stream ID, carried in its DATA frames. */
  readonly streamId: number;
  readonly #now: () => number;
  readonly #send: (frame: Uint8Array) => void;
  readonly #sendParts: ((head: Uint8Array, payload: Uint8Array) => void) | undefined;
  readonly #deliver: (message: Uint8Array) => void;
  readonly #onAcknowledged: ((messageId: number) => void) | undefined;
  readonly #onFailure:
    | ((error: Error, ids: number[], neverSentIds: number[]) => void)
    | undefined;
  readonly #maxMessageBytes: number;
  readonly #maxQueuedMessages: number;
  readonly #maxQueuedBytes: number;
  readonly #window: number;
  readonly #initialCwnd: number;
  readonly #ackDelay: number;
  readonly #failureTimeout: number;
  readonly #rtt: RttEstimator;
  readonly #receiver: ReceiveBuffer;
  #fragmentPayload = MAX_DATA_PAYLOAD_BYTES;
  #receiveBufferBytes: number;
  /** The `receiveBufferBytes` option: what a peer's PARAMETERS frame can only raise. */
  readonly #leastReceiveBufferBytes: number;
  readonly #smallRttMs: number;
  /** Bytes of the fragments counted in `#inFlight`, each plus its datagram overhead. */
  #inFlightBytes = 0;

  // Sender.
  readonly #pending = new RingBuffer<PendingMessage>();
  readonly #bulkPending = new RingBuffer<PendingMessage>();
  /** The message being cut into fragments (its fragments must be consecutive). */
  #current: PendingMessage | undefined;
  readonly #maxBulkBytes: number;
  #unackedBulkBytes = 0;
  #unackedBulkMessages = 0;
  readonly #flight = new RingBuffer<Fragment>(); // seq sndUna + i at index i
  readonly #lostQueue = new RingBuffer<Fragment>();
  #nextMessageId = 1;
  #unackedMessages = 0;
  #unackedBytes = 0;
  #sndUna = 0;
  #sndNxt = 0;
  #inFlight = 0;
  #peerWindow: number;
  #cwnd: number;
  #ssthresh = Infinity;
  #recoveryEnd = 0;
  #sendOrder = 0;
  #newestAckedOrder = -1;
  #highestSacked = -1;
  #rtoDeadline: number | undefined;
  #ptoDeadline: number | undefined;
  #probeAllowed = true;
  #lastProgressAt = 0;
  // Per round trip (ends when the fragment sent first after its start is acknowledged): the
  // smallest RTT sample (HyStart++) and the most fragments in flight (app-limited test).
  #roundEnd = 0;
  #roundMinRtt = Infinity;
  #lastRoundMinRtt = Infinity;
  #roundSamples = 0;
  #flightPeak = 0;
  #lastRoundFlightPeak = 0;

  // Receiver.
  #ackDeadline: number | undefined;
  #unackedInOrder = 0;

  #closed = false;
  #retransmissions = 0;
  #timeouts = 0;
  /** Frames go over a lossy datagram path (see `setDatagramPath`). */
  #datagramPath = true;
  #probes = 0;
  #framesSent = 0;
  #sendErrors = 0;
  #delivered = 0;
  #acknowledged = 0;
  #duplicates = 0;

  /**
   * Creates an idle channel: nothing is sent until a message is queued or a frame arrives.
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../../shared/runtime/mod.ts";
   * import { ReliableChannel } from "./reliable_channel.ts";
   * declare function send(frame: Uint8Array): void;
   * declare function deliver(message: Uint8Array): void;
   * const channel = new ReliableChannel({ now: () => systemRuntime.now(), send, deliver });
   * ```
   */
  constructor(options: ReliableChannelOptions) {
    this.#now = options.now;
    this.#send = options.send;
    this.#sendParts = options.sendParts;
    this.#deliver = options.deliver;
    this.#onAcknowledged = options.onAcknowledged;
    this.#onFailure = options.onFailure;
    this.#maxMessageBytes = positive(
      "maxMessageBytes",
      options.maxMessageBytes,
      DEFAULT_MAX_MESSAGE_BYTES,
    );
    if (this.#maxMessageBytes > 0xffff_ffff) throw new RangeError("maxMessageBytes above u32");
    this.#maxQueuedMessages = positive("maxQueuedMessages", options.maxQueuedMessages, 1024);
    this.#maxQueuedBytes = positive("maxQueuedBytes", options.maxQueuedBytes, 16 << 20);
    this.#maxBulkBytes = positive("maxBulkBytes", options.maxBulkBytes, 8 << 20);
    this.#receiveBufferBytes = this.#leastReceiveBufferBytes = positive(
      "receiveBufferBytes",
      options.receiveBufferBytes,
      LINUX_DEFAULT_RECEIVE_BUFFER - RECEIVE_BUFFER_MARGIN,
    );
    this.#smallRttMs = options.smallRttMs ?? 2;
    this.#window = positive("windowFragments", options.windowFragments, 512);
    if (!Number.isInteger(this.#window) || this.#window > 1 << 20) {
      throw new RangeError("windowFragments must be an integer up to 2^20");
    }
    this.#initialCwnd = positive("initialCongestionWindow", options.initialCongestionWindow, 10);
    this.#ackDelay = options.ackDelayMs ?? 10;
    this.#failureTimeout = positive("failureTimeoutMs", options.failureTimeoutMs, 30_000);
    this.#rtt = new RttEstimator({
      initialRtoMs: options.initialRtoMs,
      minRtoMs: options.minRtoMs,
      maxRtoMs: options.maxRtoMs,
    });
    this.#receiver = new ReceiveBuffer({
      windowFragments: this.#window,
      maxMessageBytes: this.#maxMessageBytes,
      viewSingleFragments: options.deliverViews ?? false,
    });
    this.#peerWindow = this.#window;
    this.#cwnd = Math.min(this.#initialCwnd, this.#window);
    if (options.maxFrameBytes !== undefined) this.setMaxFrameBytes(options.maxFrameBytes);
    this.streamId = options.streamId ?? crypto.getRandomValues(new Uint32Array(1))[0];
    if (!Number.isInteger(this.streamId) || this.streamId < 0 || this.streamId > 0xffff_ffff) {
      throw new RangeError(`streamId is not a u32: ${this.streamId}`);
    }
  }

  /**
   * Whether frames now go over a lossy datagram path (a direct UDP path: true, the default) or a
   * stream that does not lose them (the relay over TCP: false). On a datagram path a
   * retransmission timeout sends the oldest fragment twice.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * channel.setDatagramPath(false); // now over the relay
   * ```
   */
  setDatagramPath(datagram: boolean): void {
    this.#datagramPath = datagram;
  }

  /**
   * Sets the largest DATA frame the channel cuts from now on (clamped to
   * [{@linkcode MAX_FRAME_BYTES}, {@linkcode MAX_LARGE_FRAME_BYTES}]): the path's probed packet size
   * minus the 29 bytes of TRANSPORT header and tag. Fragments already cut keep their size (a
   * retransmission of a large one after the path shrank must go where it fits, e.g. the relay,
   * which carries up to 65,515 bytes).
   *
   * @example
   * ```ts
   * import type { PmtuProber } from "../pmtu/prober.ts";
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * declare const prober: PmtuProber;
   * channel.setMaxFrameBytes(prober.size - 29);
   * ```
   */
  setMaxFrameBytes(frameBytes: number): void {
    const clamped = Math.max(
      MAX_FRAME_BYTES,
      Math.min(MAX_LARGE_FRAME_BYTES, Math.floor(frameBytes)),
    );
    if (!Number.isFinite(clamped)) throw new RangeError(`bad frame size ${frameBytes}`);
    this.#fragmentPayload = clamped - DATA_FIRST_HEADER_BYTES;
  }

  /**
   * The peer's UDP receive buffer as its kernel reports it (its PARAMETERS frame): the data kept
   * in flight on a short path. Taken less the margin the default leaves, at most 64 MiB; a
   * figure below the `receiveBufferBytes` option (or invalid) keeps that option.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * channel.setReceiveBufferBytes(8_388_608); // a peer that enlarged its buffer to 4 MiB
   * ```
   */
  setReceiveBufferBytes(bytes: number): void {
    if (!Number.isFinite(bytes)) return;
    const usable = Math.min(MAX_PEER_RECEIVE_BUFFER, bytes) - RECEIVE_BUFFER_MARGIN;
    this.#receiveBufferBytes = Math.max(this.#leastReceiveBufferBytes, usable);
    this.#pump(this.#now());
  }

  /**
   * The largest DATA frame cut now, in bytes.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * console.log(channel.maxFrameBytes); // 1171 until setMaxFrameBytes
   * ```
   */
  get maxFrameBytes(): number {
    return this.#fragmentPayload + DATA_FIRST_HEADER_BYTES;
  }

  /**
   * Whether the channel is closed (by {@linkcode ReliableChannel.close} or a failure).
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare let channel: ReliableChannel;
   * declare function newChannel(): ReliableChannel;
   * if (channel.closed) channel = newChannel();
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Counters and estimates.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const { srtt, inFlight, retransmissions } = channel.stats;
   * ```
   */
  get stats(): ReliableChannelStats {
    return {
      srtt: this.#rtt.srtt,
      rttvar: this.#rtt.rttvar,
      rto: this.#rtt.rto,
      congestionWindow: this.#cwnd,
      inFlight: this.#inFlight,
      queued: this.#unackedMessages + this.#unackedBulkMessages,
      queuedBytes: this.#unackedBytes + this.#unackedBulkBytes,
      retransmissions: this.#retransmissions,
      timeouts: this.#timeouts,
      probes: this.#probes,
      framesSent: this.#framesSent,
      sendErrors: this.#sendErrors,
      delivered: this.#delivered,
      acknowledged: this.#acknowledged,
      duplicatesReceived: this.#duplicates,
      receiveBuffered: this.#receiver.bufferedFragments,
    };
  }

  /**
   * Queues a message and returns its ID (1, 2, 3, ...). Throws {@linkcode MessageTooLargeError},
   * {@linkcode SendQueueFullError} (too many unacknowledged messages or bytes of that priority) or
   * {@linkcode ChannelClosedError}. The bytes of a `normal` message are copied; those of a `bulk`
   * one are not (the caller must leave them unchanged until acknowledged). A `bulk` message (file data) is cut
   * only when no `normal` one waits (see {@linkcode MessagePriority}); the peer receives every
   * message once, in the order they went on the wire.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const id = channel.sendMessage(new TextEncoder().encode("hi"));
   * ```
   */
  sendMessage(bytes: Uint8Array, priority: MessagePriority = "normal"): number {
    if (this.#closed) throw new ChannelClosedError();
    if (bytes.length > this.#maxMessageBytes) {
      throw new MessageTooLargeError(
        `message of ${bytes.length} bytes exceeds the limit of ${this.#maxMessageBytes}`,
      );
    }
    const bulk = priority === "bulk";
    if (bulk) {
      if (
        this.#unackedBulkBytes > 0 && this.#unackedBulkBytes + bytes.length > this.#maxBulkBytes
      ) {
        throw new SendQueueFullError(
          `${this.#unackedBulkBytes} bulk bytes are not yet acknowledged`,
        );
      }
    } else if (this.#unackedMessages >= this.#maxQueuedMessages) {
      throw new SendQueueFullError(`${this.#unackedMessages} messages are not yet acknowledged`);
    }
    if (!bulk && this.#unackedBytes + bytes.length > this.#maxQueuedBytes) {
      throw new SendQueueFullError(`${this.#unackedBytes} bytes are not yet acknowledged`);
    }
    if (this.#sndNxt + Math.ceil(bytes.length / MAX_DATA_PAYLOAD_BYTES) + 1 > MAX_SEQUENCE) {
      throw new ChannelClosedError("sequence space exhausted: open a new channel");
    }
    if (!this.#busy()) this.#lastProgressAt = this.#now();
    const id = this.#nextMessageId++;
    // Bulk data is large and handed over (a file chunk just read): not copied.
    const message = { id, bytes: bulk ? bytes : bytes.slice(), offset: 0, bulk };
    if (bulk) {
      this.#bulkPending.push(message);
      this.#unackedBulkMessages++;
      this.#unackedBulkBytes += bytes.length;
    } else {
      this.#pending.push(message);
      this.#unackedMessages++;
      this.#unackedBytes += bytes.length;
    }
    this.#pump(this.#now());
    return id;
  }

  /**
   * Whether any fragment of message `messageId` (an ID from `sendMessage`) was ever sent: false
   * only while it waits whole in the send queue (then it certainly has not arrived). True for
   * unknown (acknowledged or failed) IDs.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const id = channel.sendMessage(new Uint8Array(1));
   * console.log(channel.wasSent(id));
   * ```
   */
  wasSent(messageId: number): boolean {
    // Only the message being cut (`#current`) can be partly sent; the queued ones never left.
    for (const queue of [this.#pending, this.#bulkPending]) {
      for (let i = 0; i < queue.length; i++) {
        if ((queue.at(i) as PendingMessage).id === messageId) return false;
      }
    }
    return true;
  }

  /**
   * Withdraws message `messageId` if not one byte of it was sent yet (it waits whole in the send
   * queue): it will never be sent, and true is returned. False when it was (partly) sent, or is
   * unknown: then it may still arrive.
   *
   * @example
   * ```ts
   * import type { ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const id = channel.sendMessage(new Uint8Array(1));
   * if (channel.cancel(id)) console.log("withdrawn before it left");
   * ```
   */
  cancel(messageId: number): boolean {
    for (let i = 0; i < this.#pending.length; i++) {
      const pending = this.#pending.at(i) as PendingMessage;
      if (pending.id !== messageId) continue;
      if (pending.offset > 0) return false;
      const rest: PendingMessage[] = [];
      while (this.#pending.length > 0) {
        const item = this.#pending.shift() as PendingMessage;
        if (item !== pending) rest.push(item);
      }
      for (const item of rest) this.#pending.push(item);
      this.#unackedMessages--;
      this.#unackedBytes -= pending.bytes.length;
      return true;
    }
    return false;
  }

  /**
   * False exactly when {@linkcode ReliableChannel.sendMessage} would now throw
   * {@linkcode SendQueueFullError} for a message of `length` bytes: too many messages or bytes
   * are unacknowledged. A caller holding messages back asks this instead of catching the error
   * (an exception per attempt is costly when the queue stays full for long).
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * declare const waiting: Uint8Array[];
   * while (waiting.length > 0 && channel.hasRoomFor(waiting[0].length)) {
   *   channel.sendMessage(waiting.shift()!);
   * }
   * ```
   */
  hasRoomFor(length: number, priority: MessagePriority = "normal"): boolean {
    // Closed or too large: sendMessage throws another error, which the caller reports.
    if (this.#closed || length > this.#maxMessageBytes) return true;
    if (priority === "bulk") {
      return this.#unackedBulkBytes === 0 || this.#unackedBulkBytes + length <= this.#maxBulkBytes;
    }
    return this.#unackedMessages < this.#maxQueuedMessages &&
      this.#unackedBytes + length <= this.#maxQueuedBytes;
  }

  /**
   * Takes a DATA or ACK frame from the peer, encoded (decoded here, throwing `FrameError` when
   * malformed) or already decoded. Other frame types are ignored. May deliver messages and
   * send frames before it returns.
   *
   * @example
   * ```ts
   * import { decodeFrame, FrameType } from "../../shared/peer/frames.ts";
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * declare const plaintext: Uint8Array;
   * const frame = decodeFrame(plaintext);
   * if (frame.type === FrameType.Data || frame.type === FrameType.Ack) channel.receive(frame);
   * ```
   */
  receive(frame: Uint8Array | DataFrame | AckFrame): void {
    if (this.#closed) return;
    const decoded = frame instanceof Uint8Array ? decodeFrame(frame) : frame;
    try {
      if (decoded.type === FrameType.Data) this.#onData(decoded);
      else if (decoded.type === FrameType.Ack) this.#onAck(decoded);
    } catch (error) {
      if (!(error instanceof ChannelProtocolError)) throw error;
      this.#fail(error);
    }
  }

  /**
   * Runs due timers: delayed ACKs, retransmission timeouts, the failure timeout. Call it at (or
   * after) {@linkcode ReliableChannel.nextDeadline}; extra calls are harmless.
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../../shared/runtime/mod.ts";
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const deadline = channel.nextDeadline();
   * if (deadline !== undefined) systemRuntime.setTimer(() => channel.tick(), deadline - systemRuntime.now());
   * ```
   */
  tick(): void {
    if (this.#closed) return;
    const now = this.#now();
    if (this.#ackDeadline !== undefined && now >= this.#ackDeadline) this.#sendAck();
    if (this.#busy() && now - this.#lastProgressAt >= this.#failureTimeout) {
      this.#fail(
        new PeerUnreachableError(
          `no acknowledgement for ${Math.round((now - this.#lastProgressAt) / 1000)} s`,
        ),
      );
      return;
    }
    if (this.#rtoDeadline !== undefined && now >= this.#rtoDeadline) {
      this.#onRetransmissionTimeout(now);
    } else if (this.#ptoDeadline !== undefined && now >= this.#ptoDeadline) {
      this.#onProbeTimeout(now);
    }
    this.#pump(now);
  }

  /**
   * When {@linkcode ReliableChannel.tick} must next run (the channel's clock, ms), or
   * `undefined` when no timer is armed.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const deadline = channel.nextDeadline();
   * ```
   */
  nextDeadline(): number | undefined {
    if (this.#closed) return undefined;
    let deadline = this.#ackDeadline;
    if (
      this.#rtoDeadline !== undefined && (deadline === undefined || this.#rtoDeadline < deadline)
    ) {
      deadline = this.#rtoDeadline;
    }
    if (
      this.#ptoDeadline !== undefined && (deadline === undefined || this.#ptoDeadline < deadline)
    ) {
      deadline = this.#ptoDeadline;
    }
    if (this.#busy()) {
      const failAt = this.#lastProgressAt + this.#failureTimeout;
      if (deadline === undefined || failAt < deadline) deadline = failAt;
    }
    return deadline;
  }

  /**
   * Tells the channel that later frames go over another path (for instance relay instead of
   * direct): the RTT estimate and congestion window start afresh, and every unacknowledged
   * fragment is sent again now rather than after a timeout. Optional: without it the channel
   * still recovers, only more slowly.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * declare let currentPath: string;
   * declare const relayPath: string;
   * currentPath = relayPath;
   * channel.pathChanged();
   * ```
   */
  pathChanged(): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#rtt.reset();
    this.#cwnd = Math.min(this.#initialCwnd, this.#window);
    this.#ssthresh = Infinity;
    this.#recoveryEnd = this.#sndNxt;
    this.#roundEnd = this.#sndNxt;
    this.#roundMinRtt = Infinity;
    this.#lastRoundMinRtt = Infinity;
    this.#roundSamples = 0;
    this.#markAllLost();
    this.#rtoDeadline = undefined;
    this.#ptoDeadline = undefined;
    this.#probeAllowed = true;
    if (this.#receiver.streamId !== undefined) this.#sendAck();
    this.#pump(now);
  }

  /**
   * Closes the channel. Messages not yet acknowledged are reported through `onFailure` with
   * `reason` (when there are any) and returned.
   *
   * @example
   * ```ts
   * import { type ReliableChannel } from "./reliable_channel.ts";
   * declare const channel: ReliableChannel;
   * const undelivered = channel.close();
   * ```
   */
  close(reason: Error = new ChannelClosedError()): number[] {
    if (this.#closed) return [];
    return this.#fail(reason, false);
  }

  #addFlight(fragment: Fragment): void {
    this.#inFlightBytes += fragmentCost(fragment);
    if (++this.#inFlight > this.#flightPeak) this.#flightPeak = this.#inFlight;
  }

  #removeFlight(fragment: Fragment): void {
    this.#inFlightBytes -= fragmentCost(fragment);
    this.#inFlight--;
  }

  #busy(): boolean {
    return this.#flight.length > 0 || this.#hasUnsent();
  }

  #hasUnsent(): boolean {
    return this.#current !== undefined || this.#pending.length > 0 || this.#bulkPending.length > 0;
  }

  #emit(frame: Uint8Array, payload?: Uint8Array): void {
    this.#framesSent++;
    try {
      if (payload !== undefined && this.#sendParts !== undefined) this.#sendParts(frame, payload);
      else this.#send(frame);
    } catch {
      // A frame the hook could not send is a lost frame: retransmission repairs it, and the
      // state above stays consistent (the caller's sendMessage still gets its message ID).
      this.#sendErrors++;
    }
  }

  // ---- sending ----

  #pump(now: number): void {
    const srtt = this.#rtt.srtt;
    const bufferBound = srtt === undefined || srtt < this.#smallRttMs;
    while (!this.#closed) {
      if (this.#inFlight >= Math.floor(this.#cwnd)) break;
      if (
        bufferBound && this.#inFlight > 0 &&
        this.#inFlightBytes + this.#fragmentPayload + DATAGRAM_OVERHEAD > this.#receiveBufferBytes
      ) break;
      const lost = this.#lostQueue.shift();
      if (lost !== undefined) {
        if (!lost.lost || lost.sacked || lost.seq < this.#sndUna) continue;
        lost.lost = false;
        this.#transmit(lost, now);
        this.#retransmissions++;
        continue;
      }
      if (this.#sndNxt - this.#sndUna >= Math.min(this.#peerWindow, this.#window)) break;
      const fragment = this.#nextFragment(now);
      if (fragment === undefined) break;
      this.#flight.push(fragment);
      this.#transmit(fragment, now);
    }
  }

  #nextFragment(now: number): Fragment | undefined {
    const message = this.#current ?? this.#pending.shift() ?? this.#bulkPending.shift();
    if (message === undefined) return undefined;
    this.#current = message;
    const first = message.offset === 0;
    const end = Math.min(message.bytes.length, message.offset + this.#fragmentPayload);
    const last = end === message.bytes.length;
    const encode = this.#sendParts === undefined ? encodeFrame : encodeDataHead;
    const payload = message.bytes.subarray(message.offset, end);
    const frame = encode(
      first
        ? {
          type: FrameType.Data,
          streamId: this.streamId,
          seq: this.#sndNxt,
          first,
          last,
          messageLength: message.bytes.length,
          payload,
        }
        : {
          type: FrameType.Data,
          streamId: this.streamId,
          seq: this.#sndNxt,
          first,
          last,
          payload,
        },
    );
    message.offset = end;
    if (last) this.#current = undefined;
    return {
      seq: this.#sndNxt++,
      frame,
      payload: this.#sendParts === undefined ? undefined : payload,
      messageId: message.id,
      lastOfMessage: last ? message.bytes.length : -1,
      bulk: message.bulk,
      sentAt: now,
      sendOrder: 0,
      transmissions: 0,
      ambiguous: false,
      sacked: false,
      lost: false,
    };
  }

  #transmit(fragment: Fragment, now: number): void {
    fragment.sentAt = now;
    fragment.sendOrder = this.#sendOrder++;
    fragment.transmissions++;
    if (fragment.transmissions > 1) fragment.ambiguous = true;
    this.#addFlight(fragment);
    this.#rtoDeadline ??= now + this.#rtt.rto;
    if (fragment.transmissions === 1) this.#armProbe(now);
    this.#emit(fragment.frame, fragment.payload);
  }

  /**
   * Arms the tail-loss probe (RFC 8985): after 2·SRTT plus the ACK delay without an
   * acknowledgement, one fragment is resent before the (longer) RTO would fire, so a lost last
   * fragment, which no later acknowledgement can reveal, is repaired in about one RTT.
   */
  #armProbe(now: number): void {
    const srtt = this.#rtt.srtt;
    if (!this.#probeAllowed || srtt === undefined || this.#flight.length === 0) {
      this.#ptoDeadline = undefined;
      return;
    }
    const at = now + 2 * srtt + this.#ackDelay + 1;
    this.#ptoDeadline = this.#rtoDeadline !== undefined && at >= this.#rtoDeadline ? undefined : at;
  }

  #onProbeTimeout(now: number): void {
    this.#ptoDeadline = undefined;
    this.#probeAllowed = false;
    let fragment: Fragment | undefined;
    for (let i = 0; i < this.#flight.length; i++) {
      const candidate = this.#flight.at(i) as Fragment;
      if (!candidate.sacked) {
        fragment = candidate;
        break;
      }
    }
    if (fragment === undefined) return;
    if (fragment.lost) fragment.lost = false; // leaves the loss queue: it is in flight again
    else this.#removeFlight(fragment); // counted again by #transmit
    this.#transmit(fragment, now);
    this.#retransmissions++;
    this.#probes++;
    this.#rtoDeadline = now + this.#rtt.rto;
  }

  #onAck(ack: AckFrame): void {
    if (ack.streamId !== this.streamId) return; // for an older channel of ours
    // Validated whole before any state changes, so a bad ACK changes nothing but the verdict.
    let highest = ack.cumulative;
    for (const range of ack.ranges) {
      if (!(range.start < range.end)) throw new ChannelProtocolError("empty ACK range");
      if (range.end > highest) highest = range.end;
    }
    if (highest > this.#sndNxt) {
      throw new ChannelProtocolError(`ACK of fragment ${highest - 1}, never sent`);
    }
    const now = this.#now();
    this.#peerWindow = Math.max(1, ack.window);
    let newlyAcked = 0;
    // The RTT sample comes from the most recently sent fragment this ACK newly covers, and only
    // from one sent once and never timed out (Karn's rule): older ones may have had their ACK lost.
    let rttSample: number | undefined;
    let sampleOrder = -1;
    const acknowledged: number[] = [];
    while (this.#sndUna < ack.cumulative) {
      const fragment = this.#flight.shift() as Fragment;
      this.#sndUna++;
      newlyAcked++;
      if (!fragment.sacked) {
        if (!fragment.lost) this.#removeFlight(fragment);
        if (!fragment.ambiguous && fragment.sendOrder > sampleOrder) {
          sampleOrder = fragment.sendOrder;
          rttSample = now - fragment.sentAt;
        }
        if (fragment.sendOrder > this.#newestAckedOrder) {
          this.#newestAckedOrder = fragment.sendOrder;
        }
      }
      fragment.lost = false;
      fragment.sacked = true;
      if (fragment.lastOfMessage >= 0) {
        acknowledged.push(fragment.messageId);
        if (fragment.bulk) {
          this.#unackedBulkMessages--;
          this.#unackedBulkBytes -= fragment.lastOfMessage;
        } else {
          this.#unackedMessages--;
          this.#unackedBytes -= fragment.lastOfMessage;
        }
      }
    }
    for (const range of ack.ranges) {
      for (let seq = Math.max(range.start, this.#sndUna); seq < range.end; seq++) {
        const fragment = this.#flight.at(seq - this.#sndUna) as Fragment;
        if (fragment.sacked) continue;
        fragment.sacked = true;
        newlyAcked++;
        if (fragment.lost) fragment.lost = false;
        else this.#removeFlight(fragment);
        if (!fragment.ambiguous && fragment.sendOrder > sampleOrder) {
          sampleOrder = fragment.sendOrder;
          rttSample = now - fragment.sentAt;
        }
        if (fragment.sendOrder > this.#newestAckedOrder) {
          this.#newestAckedOrder = fragment.sendOrder;
        }
        if (seq > this.#highestSacked) this.#highestSacked = seq;
      }
    }
    if (newlyAcked > 0) {
      this.#lastProgressAt = now;
      // Only a valid sample ends a backoff (RFC 6298, 5.7 and Karn): clearing it on any progress
      // would, after a switch to a slower path, let a too-short RTO fire forever, every fragment
      // ambiguous and no sample ever taken.
      if (rttSample !== undefined) this.#rtt.sample(rttSample);
      // Without one, progress still undoes one doubling: under heavy random loss nearly every
      // acknowledged fragment was retransmitted, and a backoff held until a valid sample keeps
      // the RTO at its maximum (one fragment every 5 s: a stall of one direction for 30 s).
      else this.#rtt.relax();
      this.#noteRound(rttSample);
      if (this.#detectLosses()) {
        if (this.#sndUna >= this.#recoveryEnd) {
          this.#ssthresh = Math.max(2, Math.floor(this.#cwnd / 2));
          this.#cwnd = this.#ssthresh;
          this.#recoveryEnd = this.#sndNxt;
        }
      } else if (
        (this.#cwnd < this.#ssthresh || this.#sndUna >= this.#recoveryEnd) &&
        2 * Math.max(this.#flightPeak, this.#lastRoundFlightPeak) >= this.#cwnd
      ) {
        // Slow start (also after a timeout) or congestion avoidance; no growth in fast recovery,
        // nor while the window is not used (RFC 9002, 7.8: at least half of it, as Linux counts
        // slow start): a window grown by a trickle of messages would let a later burst overrun
        // the receiver's socket buffer at once.
        this.#cwnd += this.#cwnd < this.#ssthresh ? newlyAcked : newlyAcked / this.#cwnd;
        if (this.#cwnd > this.#window) this.#cwnd = this.#window;
        this.#leaveSlowStartOnDelay();
      }
      this.#rtoDeadline = this.#flight.length > 0 ? now + this.#rtt.rto : undefined;
      this.#probeAllowed = true;
      this.#armProbe(now);
    }
    this.#pump(now);
    for (const id of acknowledged) {
      this.#acknowledged++;
      this.#onAcknowledged?.(id);
    }
  }

  /** Starts a new round trip when its end is acknowledged; takes the RTT sample into its minimum. */
  #noteRound(rttSample: number | undefined): void {
    if (this.#sndUna >= this.#roundEnd) {
      this.#lastRoundMinRtt = this.#roundSamples >= HYSTART_SAMPLES
        ? this.#roundMinRtt
        : Math.min(this.#lastRoundMinRtt, this.#roundMinRtt);
      this.#roundMinRtt = Infinity;
      this.#roundSamples = 0;
      this.#lastRoundFlightPeak = this.#flightPeak;
      this.#flightPeak = this.#inFlight;
      this.#roundEnd = this.#sndNxt;
    }
    if (rttSample !== undefined) {
      if (rttSample < this.#roundMinRtt) this.#roundMinRtt = rttSample;
      this.#roundSamples++;
    }
  }

  /**
   * HyStart++'s delay test (RFC 9406, 4.2; without its conservative phase): once a round has
   * enough RTT samples and its smallest is above the previous round's by an eighth (4 to 16 ms),
   * a queue is building up (on loopback, in the receiver's socket buffer): slow start ends
   * before that queue overflows rather than after.
   */
  #leaveSlowStartOnDelay(): void {
    if (this.#cwnd >= this.#ssthresh || this.#roundSamples < HYSTART_SAMPLES) return;
    if (this.#lastRoundMinRtt === Infinity) return;
    const threshold = Math.min(
      HYSTART_MAX_THRESHOLD_MS,
      Math.max(HYSTART_MIN_THRESHOLD_MS, this.#lastRoundMinRtt / 8),
    );
    if (this.#roundMinRtt >= this.#lastRoundMinRtt + threshold) this.#ssthresh = this.#cwnd;
  }

  /** Marks as lost what was sent before an acknowledged fragment and is 3+ fragments behind. */
  #detectLosses(): boolean {
    // Early retransmit (RFC 5827): with fewer than four fragments outstanding and nothing new to
    // send, three later acknowledgements can never arrive, so fewer suffice.
    const outstanding = this.#flight.length;
    const threshold = outstanding < REORDERING_THRESHOLD + 1 && !this.#hasUnsent()
      ? Math.max(1, outstanding - 1)
      : REORDERING_THRESHOLD;
    const limit = this.#highestSacked - threshold;
    let found = false;
    for (let seq = this.#sndUna; seq <= limit; seq++) {
      const fragment = this.#flight.at(seq - this.#sndUna) as Fragment;
      if (fragment.sacked || fragment.lost || fragment.sendOrder > this.#newestAckedOrder) continue;
      fragment.lost = true;
      fragment.ambiguous = true;
      this.#removeFlight(fragment);
      this.#lostQueue.push(fragment);
      found = true;
    }
    return found;
  }

  #markAllLost(): void {
    this.#lostQueue.clear();
    for (let i = 0; i < this.#flight.length; i++) {
      const fragment = this.#flight.at(i) as Fragment;
      if (fragment.sacked) continue;
      if (!fragment.lost) this.#removeFlight(fragment);
      fragment.lost = true;
      fragment.ambiguous = true;
      this.#lostQueue.push(fragment);
    }
  }

  #onRetransmissionTimeout(now: number): void {
    this.#rtoDeadline = undefined;
    this.#ptoDeadline = undefined;
    if (this.#flight.length === 0) return;
    this.#timeouts++;
    this.#rtt.backoff();
    this.#ssthresh = Math.max(2, Math.floor(this.#cwnd / 2));
    this.#cwnd = 1;
    this.#recoveryEnd = this.#sndNxt;
    this.#markAllLost();
    this.#pump(now);
    // On a datagram path, a second copy of the oldest fragment (RFC 9002, 6.2.4: up to two
    // probes when the timer fires): under heavy random loss a lone retransmission and its ACK
    // both get through only (1 - p)² of the time (31 % at 44 % loss each way), and with the window
    // at one fragment the whole direction waits a backed-off RTO for each miss (one direction
    // stalled for 30 s). Not over a stream (the relay): there a timeout means delay, not loss,
    // and a copy only adds to its queue.
    const head = this.#flight.length > 0 ? this.#flight.at(0) as Fragment : undefined;
    if (this.#datagramPath && head !== undefined && !head.sacked && !head.lost) {
      this.#emit(head.frame, head.payload);
      this.#retransmissions++;
    }
    this.#rtoDeadline ??= now + this.#rtt.rto;
  }

  // ---- receiving ----

  #onData(frame: DataFrame): void {
    const completed: Uint8Array[] = [];
    const outcome = this.#receiver.accept(frame, completed);
    switch (outcome) {
      case "stale-stream":
        return;
      case "in-order":
        if (++this.#unackedInOrder >= 2) this.#sendAck();
        else if (completed.length > 0) {
          // A completed message is acknowledged at the next tick, not after the ACK delay: the
          // sender waits for it to report the message delivered. The caller runs a due tick
          // once the packets already received are processed, so a burst still gets one ACK per
          // two fragments, and the message that ends it its ACK at once.
          this.#ackDeadline = this.#now();
        } else this.#ackDeadline ??= this.#now() + this.#ackDelay;
        break;
      case "duplicate":
        this.#duplicates++;
        this.#sendAck();
        break;
      default:
        this.#sendAck();
    }
    // Every completed message is handed over even if a deliver hook throws: the first error is
    // rethrown afterwards (the peer was told they arrived, so none may be dropped).
    let hookError: unknown;
    for (const message of completed) {
      this.#delivered++;
      try {
        this.#deliver(message);
      } catch (error) {
        hookError ??= error;
      }
    }
    if (hookError !== undefined) throw hookError;
  }

  #sendAck(): void {
    this.#ackDeadline = undefined;
    this.#unackedInOrder = 0;
    const ack = this.#receiver.ackFrame();
    if (ack !== undefined) this.#emit(encodeFrame(ack));
  }

  // ---- failure ----

  #fail(error: Error, reportAlways = true): number[] {
    this.#closed = true;
    const ids: number[] = [];
    for (let i = 0; i < this.#flight.length; i++) {
      const id = (this.#flight.at(i) as Fragment).messageId;
      if (ids[ids.length - 1] !== id) ids.push(id);
    }
    const neverSent: number[] = [];
    // Queued messages were never cut into fragments; the one being cut (`#current`) was.
    const unsent = this.#current === undefined ? [] : [this.#current];
    for (let i = 0; i < this.#pending.length; i++) {
      unsent.push(this.#pending.at(i) as PendingMessage);
    }
    for (let i = 0; i < this.#bulkPending.length; i++) {
      unsent.push(this.#bulkPending.at(i) as PendingMessage);
    }
    for (const { id, offset } of unsent) {
      if (ids.includes(id)) continue;
      ids.push(id);
      if (offset === 0) neverSent.push(id);
    }
    this.#flight.clear();
    this.#pending.clear();
    this.#bulkPending.clear();
    this.#current = undefined;
    this.#lostQueue.clear();
    this.#inFlight = 0;
    this.#inFlightBytes = 0;
    this.#unackedMessages = 0;
    this.#unackedBytes = 0;
    this.#unackedBulkMessages = 0;
    this.#unackedBulkBytes = 0;
    this.#rtoDeadline = undefined;
    this.#ptoDeadline = undefined;
    this.#ackDeadline = undefined;
    if (ids.length > 0 || reportAlways) this.#onFailure?.(error, ids, neverSent);
    return ids;
  }
}

/** Linux's default UDP receive buffer (`net.core.rmem_default`) as the kernel reports it. */
const LINUX_DEFAULT_RECEIVE_BUFFER = 212_992;
/** Kept free of a receive buffer's reported size (other traffic: probes, STUN, the peer's ACKs). */
const RECEIVE_BUFFER_MARGIN = 16_384;
/** Largest peer receive buffer believed (a PARAMETERS frame is the peer's word, and a u32). */
const MAX_PEER_RECEIVE_BUFFER = 64 << 20;

/** What a datagram costs in the receiver's socket buffer beyond its payload (sk_buff, headers). */
const DATAGRAM_OVERHEAD = 1024;

function fragmentCost(fragment: Fragment): number {
  return fragment.frame.length + (fragment.payload?.length ?? 0) + DATAGRAM_OVERHEAD;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result <= 0) throw new RangeError(`${name} must be positive`);
  return result;
}
