/**
 * The receiving half of the reliable channel: puts DATA fragments back in order, suppresses
 * duplicates, reassembles messages and describes what it holds as an ACK.
 *
 * Memory is bounded: at most `windowFragments` out-of-order fragments are held (anything further
 * ahead is dropped and will be retransmitted), plus one message being reassembled of at most
 * `maxMessageBytes`.
 *
 * @module
 */
import {
  type AckFrame,
  type AckRange,
  type DataFrame,
  FrameType,
  MAX_ACK_RANGES,
} from "../../shared/peer/frames.ts";
import { ChannelProtocolError } from "./errors.ts";

/** How many replaced stream IDs are remembered so their late fragments are ignored. */
const RETIRED_STREAMS = 8;

/** What {@linkcode ReceiveBuffer.accept} did with a fragment. */
export type AcceptOutcome =
  /** It was the next expected fragment (maybe releasing buffered ones). */
  | "in-order"
  /** It filled a gap or arrived ahead of a gap: acknowledge at once. */
  | "out-of-order"
  /** Already received: acknowledge at once so the sender stops resending. */
  | "duplicate"
  /** Too far ahead of the window: dropped, acknowledge at once. */
  | "beyond-window"
  /** From a stream this receiver already left behind: ignored. */
  | "stale-stream";

/** Settings of a {@linkcode ReceiveBuffer}. */
export interface ReceiveBufferOptions {
  /** Fragments accepted beyond the cumulative point (the advertised window). */
  windowFragments: number;
  /** Largest message accepted from the peer. */
  maxMessageBytes: number;
  /**
   * Hand a message that fits one fragment over as a view of the fragment's payload instead of a
   * copy (default false): for callers whose consumer copies what it keeps, so a bulk packet
   * opened in place in a reused receive buffer costs no allocation.
   */
  viewSingleFragments?: boolean;
}

interface Assembly {
  buffer: Uint8Array;
  filled: number;
}

/**
 * Reorders, deduplicates and reassembles one peer's DATA fragments.
 *
 * @example
 * ```ts
 * import { type DataFrame, decodeFrame } from "../../shared/peer/frames.ts";
 * import { ReceiveBuffer } from "./receive_buffer.ts";
 * declare const plaintext: Uint8Array;
 * declare function deliver(message: Uint8Array): void;
 * const buffer = new ReceiveBuffer({ windowFragments: 64, maxMessageBytes: 1 << 20 });
 * const messages: Uint8Array[] = [];
 * buffer.accept(decodeFrame(plaintext) as DataFrame, messages);
 * for (const message of messages) deliver(message);
 * const ack = buffer.ackFrame();
 * ```
 */
export class ReceiveBuffer {
  readonly #window: number;
  readonly #maxMessageBytes: number;
  readonly #viewSingle: boolean;
  #streamId: number | undefined;
  readonly #retired: number[] = [];
  #cumulative = 0;
  readonly #outOfOrder = new Map<number, DataFrame>();
  #ranges: AckRange[] = [];
  #assembly: Assembly | undefined;

  /**
   * Creates an empty buffer, waiting for the first fragment of a stream.
   *
   * @example
   * ```ts
   * import { ReceiveBuffer } from "./receive_buffer.ts";
   * const buffer = new ReceiveBuffer({ windowFragments: 512, maxMessageBytes: 1 << 20 });
   * ```
   */
  constructor(options: ReceiveBufferOptions) {
    this.#window = options.windowFragments;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#viewSingle = options.viewSingleFragments ?? false;
  }

  /**
   * Every fragment below this sequence number was received.
   *
   * @example
   * ```ts
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * console.log(buffer.cumulative);
   * ```
   */
  get cumulative(): number {
    return this.#cumulative;
  }

  /**
   * Number of out-of-order fragments held.
   *
   * @example
   * ```ts
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * console.log(buffer.bufferedFragments <= 512); // true
   * ```
   */
  get bufferedFragments(): number {
    return this.#outOfOrder.size;
  }

  /**
   * Bytes of the message being reassembled (0 when none).
   *
   * @example
   * ```ts
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * console.log(buffer.assemblingBytes);
   * ```
   */
  get assemblingBytes(): number {
    return this.#assembly?.buffer.length ?? 0;
  }

  /**
   * The peer's current stream ID, once a fragment was received.
   *
   * @example
   * ```ts
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * console.log(buffer.streamId);
   * ```
   */
  get streamId(): number | undefined {
    return this.#streamId;
  }

  /**
   * Takes one DATA fragment; completed messages are appended to `completed`, in order. A
   * fragment from a new stream ID means the peer's channel restarted: the receive state is reset
   * to the new stream (a partial message of the old one can never complete). Throws
   * {@linkcode ChannelProtocolError} when the fragments do not form valid messages.
   *
   * @example
   * ```ts
   * import type { DataFrame } from "../../shared/peer/frames.ts";
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * declare const frame: DataFrame;
   * const completed: Uint8Array[] = [];
   * const outcome = buffer.accept(frame, completed);
   * ```
   */
  accept(frame: DataFrame, completed: Uint8Array[]): AcceptOutcome {
    if (frame.streamId !== this.#streamId) {
      if (this.#retired.includes(frame.streamId)) return "stale-stream";
      if (this.#streamId !== undefined) {
        this.#retired.push(this.#streamId);
        if (this.#retired.length > RETIRED_STREAMS) this.#retired.shift();
      }
      this.#streamId = frame.streamId;
      this.#cumulative = 0;
      this.#outOfOrder.clear();
      this.#ranges = [];
      this.#assembly = undefined;
    }
    const seq = frame.seq;
    if (seq < this.#cumulative || this.#outOfOrder.has(seq)) return "duplicate";
    if (seq >= this.#cumulative + this.#window) return "beyond-window";
    if (seq !== this.#cumulative) {
      // Copied: the payload may be a view of a receive buffer the caller reuses (in-place open).
      this.#outOfOrder.set(seq, { ...frame, payload: frame.payload.slice() });
      this.#insertRange(seq);
      return "out-of-order";
    }
    this.#consume(frame, completed);
    this.#cumulative++;
    const next = this.#ranges[0];
    if (next === undefined || next.start !== this.#cumulative) return "in-order";
    this.#ranges.shift();
    for (let s = next.start; s < next.end; s++) {
      const buffered = this.#outOfOrder.get(s) as DataFrame;
      this.#outOfOrder.delete(s);
      this.#consume(buffered, completed);
      this.#cumulative++;
    }
    return "out-of-order";
  }

  /**
   * The ACK describing what was received (cumulative point, window, up to 64 ranges above it),
   * or `undefined` before any fragment arrived.
   *
   * @example
   * ```ts
   * import { encodeFrame } from "../../shared/peer/frames.ts";
   * import type { ReceiveBuffer } from "./receive_buffer.ts";
   * declare const buffer: ReceiveBuffer;
   * declare function send(frame: Uint8Array): void;
   * const ack = buffer.ackFrame();
   * if (ack) send(encodeFrame(ack));
   * ```
   */
  ackFrame(): AckFrame | undefined {
    if (this.#streamId === undefined) return undefined;
    const ranges = this.#ranges.length <= MAX_ACK_RANGES
      ? this.#ranges.map(({ start, end }) => ({ start, end }))
      : this.#ranges.slice(0, MAX_ACK_RANGES).map(({ start, end }) => ({ start, end }));
    return {
      type: FrameType.Ack,
      streamId: this.#streamId,
      cumulative: this.#cumulative,
      window: this.#window,
      ranges,
    };
  }

  #insertRange(seq: number): void {
    const ranges = this.#ranges;
    let i = ranges.length - 1;
    while (i >= 0 && ranges[i].start > seq) i--;
    const previous = i >= 0 ? ranges[i] : undefined;
    const next = ranges[i + 1];
    const joinsPrevious = previous !== undefined && previous.end === seq;
    const joinsNext = next !== undefined && next.start === seq + 1;
    if (joinsPrevious && joinsNext) {
      previous.end = next.end;
      ranges.splice(i + 1, 1);
    } else if (joinsPrevious) {
      previous.end = seq + 1;
    } else if (joinsNext) {
      next.start = seq;
    } else {
      ranges.splice(i + 1, 0, { start: seq, end: seq + 1 });
    }
  }

  #consume(frame: DataFrame, completed: Uint8Array[]): void {
    if (frame.first) {
      if (this.#assembly !== undefined) {
        throw new ChannelProtocolError(`fragment ${frame.seq} starts a message inside another`);
      }
      const length = frame.messageLength ?? 0;
      if (length > this.#maxMessageBytes) {
        throw new ChannelProtocolError(
          `message of ${length} bytes exceeds the limit of ${this.#maxMessageBytes}`,
        );
      }
      if (frame.last) {
        completed.push(this.#viewSingle ? frame.payload : frame.payload.slice());
        return;
      }
      const buffer = new Uint8Array(length);
      buffer.set(frame.payload, 0);
      this.#assembly = { buffer, filled: frame.payload.length };
      return;
    }
    const assembly = this.#assembly;
    if (assembly === undefined) {
      throw new ChannelProtocolError(`fragment ${frame.seq} continues no message`);
    }
    const end = assembly.filled + frame.payload.length;
    if (end > assembly.buffer.length || (frame.last && end !== assembly.buffer.length)) {
      throw new ChannelProtocolError(`fragment ${frame.seq} does not fit its message length`);
    }
    assembly.buffer.set(frame.payload, assembly.filled);
    assembly.filled = end;
    if (frame.last) {
      this.#assembly = undefined;
      completed.push(assembly.buffer);
    }
  }
}
