/**
 * STUN message encoding into a reusable buffer.
 *
 * @module
 */
import {
  ATTRIBUTE_HEADER_LENGTH,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  type StunClass,
  TRANSACTION_ID_LENGTH,
} from "./constants.ts";
import { StunEncodeError } from "./errors.ts";
import { encodeMessageType } from "./header.ts";

/** Options of {@linkcode StunMessageWriter.start}. */
export interface StartMessageOptions {
  /**
   * The magic cookie field. Leave it out (0x2112A442) except to answer an RFC 3489 client, whose
   * 128-bit transaction ID occupies this field too.
   */
  magicCookie?: number;
}

/**
 * Writes STUN messages into one buffer that is reused from message to message (no allocation
 * per message). The header's length field is kept up to date after every attribute, so the
 * integrity and fingerprint helpers can hash the bytes written so far.
 *
 * Padding bytes are {@linkcode paddingByte} (zero by default, as RFC 8489 asks); RFC 5769's
 * vectors pad with 0x20, which a writer reproduces with `paddingByte = 0x20`.
 *
 * @example
 * ```ts
 * import { AttributeType, StunClass, StunMessageWriter, StunMethod } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.start(StunMethod.Binding, StunClass.Request, new Uint8Array(12));
 * writer.addAttribute(AttributeType.Software, new TextEncoder().encode("demo"));
 * console.log(writer.bytes().length); // 28
 * ```
 */
export class StunMessageWriter {
  /** The backing buffer; the message is `buffer.subarray(0, length)`. */
  readonly buffer: Uint8Array;
  /** A DataView over {@linkcode buffer}. */
  readonly view: DataView;
  /** Bytes written so far (header included). */
  length = 0;
  /** Value written into padding bytes. */
  paddingByte = 0;

  /**
   * Creates a writer with a buffer of `capacity` bytes (default 1280, more than any UDP STUN
   * message this project sends) or over a given buffer.
   *
   * @example
   * ```ts
   * import { StunMessageWriter } from "./writer.ts";
   * console.log(new StunMessageWriter(548).buffer.length); // 548
   * ```
   */
  constructor(capacityOrBuffer: number | Uint8Array = 1280) {
    this.buffer = typeof capacityOrBuffer === "number"
      ? new Uint8Array(capacityOrBuffer)
      : capacityOrBuffer;
    if (this.buffer.length < HEADER_LENGTH) {
      throw new StunEncodeError("a STUN writer needs at least 20 bytes of buffer");
    }
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  }

  /**
   * Starts a new message (forgetting the previous one): writes the header with length 0.
   *
   * @example
   * ```ts
   * import { StunClass, StunMessageWriter, StunMethod } from "./mod.ts";
   * const writer = new StunMessageWriter();
   * writer.start(StunMethod.Binding, StunClass.SuccessResponse, new Uint8Array(12));
   * console.log(writer.bytes().subarray(0, 2)); // Uint8Array(2) [1, 1]
   * ```
   */
  start(
    method: number,
    stunClass: StunClass,
    transactionId: Uint8Array,
    options?: StartMessageOptions,
  ): void {
    if (transactionId.length !== TRANSACTION_ID_LENGTH) {
      throw new StunEncodeError(`a transaction ID has 12 bytes, got ${transactionId.length}`);
    }
    this.startRaw(encodeMessageType(method, stunClass), transactionId, options?.magicCookie);
  }

  /**
   * Like {@linkcode start} with a precomputed 14-bit message type and no argument checks beyond
   * what the buffer enforces: the hot-path variant.
   *
   * @example
   * ```ts
   * import { StunMessageWriter } from "./writer.ts";
   * const writer = new StunMessageWriter();
   * writer.startRaw(0x0101, new Uint8Array(12));
   * console.log(writer.length); // 20
   * ```
   */
  startRaw(type: number, transactionId: Uint8Array, magicCookie: number = MAGIC_COOKIE): void {
    const view = this.view;
    view.setUint16(0, type);
    view.setUint16(2, 0);
    view.setUint32(4, magicCookie);
    const buffer = this.buffer;
    for (let i = 0; i < TRANSACTION_ID_LENGTH; i++) buffer[8 + i] = transactionId[i];
    this.length = HEADER_LENGTH;
  }

  /**
   * Starts the answer to `request` (its raw bytes): message type `type`, and the request's magic
   * cookie and transaction ID copied (bytes 4..20), which also answers RFC 3489 requests
   * correctly. No allocation.
   *
   * @throws {StunEncodeError} when `request` is shorter than a STUN header.
   *
   * @example
   * ```ts
   * import { StunMessageWriter } from "./writer.ts";
   * const request = Uint8Array.fromHex("000100002112a442b7e7a701bc34d686fa87dfae");
   * const writer = new StunMessageWriter();
   * writer.startAnswer(0x0101, request);
   * console.log(writer.bytes().toHex()); // "010100002112a442b7e7a701bc34d686fa87dfae"
   * ```
   */
  startAnswer(type: number, request: Uint8Array): void {
    if (request.length < HEADER_LENGTH) {
      throw new StunEncodeError("a request to answer has at least a 20-byte header");
    }
    const buffer = this.buffer;
    buffer[0] = (type >> 8) & 0x3f;
    buffer[1] = type & 0xff;
    buffer[2] = 0;
    buffer[3] = 0;
    for (let i = 4; i < HEADER_LENGTH; i++) buffer[i] = request[i];
    this.length = HEADER_LENGTH;
  }

  /**
   * Reserves an attribute of `valueLength` bytes: writes its header and padding, updates the
   * message length, and returns the offset of the value in {@linkcode buffer} for the caller to
   * fill.
   *
   * @example
   * ```ts
   * import { StunMessageWriter } from "./writer.ts";
   * const writer = new StunMessageWriter();
   * writer.startRaw(0x0001, new Uint8Array(12));
   * const at = writer.reserveAttribute(0x0024, 4);
   * writer.view.setUint32(at, 0x6e0001ff);
   * console.log(writer.length); // 28
   * ```
   */
  reserveAttribute(type: number, valueLength: number, paddingByte = this.paddingByte): number {
    if (valueLength > 0xffff || valueLength < 0) {
      throw new StunEncodeError(`attribute 0x${type.toString(16)} value of ${valueLength} bytes`);
    }
    const start = this.length;
    const padded = (valueLength + 3) & ~3;
    const next = start + ATTRIBUTE_HEADER_LENGTH + padded;
    if (next > this.buffer.length) {
      throw new StunEncodeError(
        `message of ${next} bytes does not fit the writer's ${this.buffer.length}-byte buffer`,
      );
    }
    if (next - HEADER_LENGTH > 0xffff) {
      throw new StunEncodeError(`message of ${next} bytes exceeds the STUN length field`);
    }
    const view = this.view;
    view.setUint16(start, type);
    view.setUint16(start + 2, valueLength);
    const valueStart = start + ATTRIBUTE_HEADER_LENGTH;
    for (let i = valueStart + valueLength; i < next; i++) this.buffer[i] = paddingByte;
    this.length = next;
    view.setUint16(2, next - HEADER_LENGTH);
    return valueStart;
  }

  /**
   * Appends an attribute with the given value bytes.
   *
   * @example
   * ```ts
   * import { AttributeType, StunMessageWriter } from "./mod.ts";
   * const writer = new StunMessageWriter();
   * writer.startRaw(0x0001, new Uint8Array(12));
   * writer.addAttribute(AttributeType.Priority, Uint8Array.of(0x6e, 0, 1, 0xff));
   * console.log(writer.length); // 28
   * ```
   */
  addAttribute(type: number, value: Uint8Array, paddingByte = this.paddingByte): void {
    const at = this.reserveAttribute(type, value.length, paddingByte);
    this.buffer.set(value, at);
  }

  /**
   * The message written so far: a view into {@linkcode buffer}, valid until the next
   * {@linkcode start}. Copy it (`slice()`) to keep it.
   *
   * @example
   * ```ts
   * import { StunMessageWriter } from "./writer.ts";
   * const writer = new StunMessageWriter();
   * writer.startRaw(0x0001, new Uint8Array(12));
   * console.log(writer.bytes().length); // 20
   * ```
   */
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
