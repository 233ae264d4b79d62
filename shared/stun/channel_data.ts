/**
 * TURN channels (RFC 8656 sections 12 and 18.1): the CHANNEL-NUMBER attribute and the 4-byte
 * ChannelData framing (channel number, length, data; padded to 4 bytes over TCP).
 *
 * A datagram or stream chunk whose first two bits are `01` is ChannelData; `00` is STUN.
 *
 * @module
 */
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import { TurnAttributeType } from "./turn_constants.ts";
import type { StunMessageWriter } from "./writer.ts";

/** Lowest channel number a client may bind (RFC 8656 section 12). */
export const MIN_CHANNEL_NUMBER = 0x4000;
/**
 * Highest channel number accepted: RFC 8656 narrowed the range to 0x4FFF, but RFC 5766 clients
 * (coturn's own `turnutils_uclient` among them) still bind up to 0x7FFF, which coturn accepts.
 */
export const MAX_CHANNEL_NUMBER = 0x7fff;
/** Length of the ChannelData header. */
export const CHANNEL_DATA_HEADER_LENGTH = 4;

/**
 * Whether `channel` is in the bindable range 0x4000..0x7FFF (see {@linkcode MAX_CHANNEL_NUMBER}).
 *
 * @example
 * ```ts
 * import { isValidChannelNumber } from "./channel_data.ts";
 * console.log(isValidChannelNumber(0x4000), isValidChannelNumber(0x8000)); // true false
 * ```
 */
export function isValidChannelNumber(channel: number): boolean {
  return channel >= MIN_CHANNEL_NUMBER && channel <= MAX_CHANNEL_NUMBER;
}

/**
 * CHANNEL-NUMBER (0x000C), if present.
 *
 * @throws {StunDecodeError} when the value is not 4 bytes.
 *
 * @example
 * ```ts
 * import { addChannelNumber, decodeStunMessage, getChannelNumber, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0009, new Uint8Array(12));
 * addChannelNumber(writer, 0x4001);
 * console.log(getChannelNumber(decodeStunMessage(writer.bytes()))); // 16385
 * ```
 */
export function getChannelNumber(message: StunMessage): number | undefined {
  const attribute = message.get(TurnAttributeType.ChannelNumber);
  if (attribute === undefined) return undefined;
  if (attribute.value.length !== 4) {
    throw new StunDecodeError("bad-attribute", `CHANNEL-NUMBER of ${attribute.value.length} bytes`);
  }
  return (attribute.value[0] << 8) | attribute.value[1];
}

/**
 * Appends CHANNEL-NUMBER (0x000C).
 *
 * @example
 * ```ts
 * import { addChannelNumber, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0009, new Uint8Array(12));
 * addChannelNumber(writer, 0x4000);
 * console.log(writer.bytes().subarray(20).toHex()); // "000c000440000000"
 * ```
 */
export function addChannelNumber(writer: StunMessageWriter, channel: number): void {
  const at = writer.reserveAttribute(TurnAttributeType.ChannelNumber, 4);
  writer.view.setUint32(at, ((channel & 0xffff) << 16) >>> 0);
}

/**
 * Whether `bytes` starts like a ChannelData message (first two bits `01`). Never throws.
 *
 * @example
 * ```ts
 * import { looksLikeChannelData } from "./channel_data.ts";
 * console.log(looksLikeChannelData(Uint8Array.of(0x40, 0, 0, 0))); // true
 * ```
 */
export function looksLikeChannelData(bytes: Uint8Array): boolean {
  return bytes.length >= CHANNEL_DATA_HEADER_LENGTH && (bytes[0] & 0xc0) === 0x40;
}

/** A decoded ChannelData message. */
export interface ChannelData {
  /** The channel number (0x4000..0x7FFF). */
  channel: number;
  /** The application data: a view into the input. */
  data: Uint8Array;
}

/**
 * Decodes one ChannelData message from a datagram. Bytes after the announced length (padding)
 * are ignored, as RFC 8656 section 12.4 allows over UDP.
 *
 * @throws {StunDecodeError} when the header is cut off, the channel is outside
 * 0x4000..0x7FFF, or the length exceeds the input.
 *
 * @example
 * ```ts
 * import { decodeChannelData } from "./channel_data.ts";
 * const frame = decodeChannelData(Uint8Array.of(0x40, 0x01, 0, 2, 7, 8));
 * console.log(frame.channel, frame.data); // 16385 Uint8Array(2) [7, 8]
 * ```
 */
export function decodeChannelData(bytes: Uint8Array): ChannelData {
  if (bytes.length < CHANNEL_DATA_HEADER_LENGTH) {
    throw new StunDecodeError("truncated", `ChannelData of ${bytes.length} bytes`);
  }
  const channel = (bytes[0] << 8) | bytes[1];
  if (!isValidChannelNumber(channel)) {
    throw new StunDecodeError("bad-attribute", `channel 0x${channel.toString(16)} out of range`);
  }
  const length = (bytes[2] << 8) | bytes[3];
  if (CHANNEL_DATA_HEADER_LENGTH + length > bytes.length) {
    throw new StunDecodeError("truncated", `ChannelData claims ${length} bytes`);
  }
  return { channel, data: bytes.subarray(CHANNEL_DATA_HEADER_LENGTH, 4 + length) };
}

/**
 * Writes a ChannelData message into `out` at `offset` (header, data, and with `pad` zero padding
 * to a multiple of 4, as TCP requires); returns the bytes written.
 *
 * @throws {StunEncodeError} on a bad channel number, data over 65535 bytes, or too small `out`.
 *
 * @example
 * ```ts
 * import { encodeChannelData } from "./channel_data.ts";
 * const out = new Uint8Array(16);
 * console.log(encodeChannelData(out, 0, 0x4000, Uint8Array.of(1, 2, 3), true)); // 8
 * ```
 */
export function encodeChannelData(
  out: Uint8Array,
  offset: number,
  channel: number,
  data: Uint8Array,
  pad = false,
): number {
  if (!isValidChannelNumber(channel)) {
    throw new StunEncodeError(`channel 0x${channel.toString(16)} out of range`);
  }
  if (data.length > 0xffff) throw new StunEncodeError(`ChannelData of ${data.length} bytes`);
  const total = CHANNEL_DATA_HEADER_LENGTH + (pad ? (data.length + 3) & ~3 : data.length);
  if (offset + total > out.length) {
    throw new StunEncodeError(`ChannelData of ${total} bytes does not fit`);
  }
  out[offset] = channel >> 8;
  out[offset + 1] = channel & 0xff;
  out[offset + 2] = data.length >> 8;
  out[offset + 3] = data.length & 0xff;
  out.set(data, offset + 4);
  out.fill(0, offset + 4 + data.length, offset + total);
  return total;
}

/**
 * The length of the next framed message at the start of a TCP stream buffer (STUN: header plus
 * length field; ChannelData: header plus length padded to 4), or undefined while fewer than 4
 * bytes are buffered. Returns -1 when the first two bits are neither `00` nor `01`.
 *
 * @example
 * ```ts
 * import { streamFrameLength } from "./channel_data.ts";
 * console.log(streamFrameLength(Uint8Array.of(0x40, 0, 0, 5))); // 12
 * console.log(streamFrameLength(Uint8Array.of(0x00, 1, 0, 8))); // 28
 * ```
 */
export function streamFrameLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < 4) return undefined;
  const top = bytes[0] & 0xc0;
  const length = (bytes[2] << 8) | bytes[3];
  if (top === 0) return 20 + length;
  if (top === 0x40) return 4 + ((length + 3) & ~3);
  return -1;
}
