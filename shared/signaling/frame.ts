/**
 * Signaling framing: `length: u32 BE | kind: u8 | body`, where `length` counts the kind byte and
 * the body. Encoders for control and relay frames, and an incremental {@linkcode FrameDecoder}
 * that copes with frames split across reads and many frames in one read.
 *
 * @module
 */
import {
  CREDIT_BODY_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_KIND_CONTROL,
  FRAME_KIND_CREDIT,
  FRAME_KIND_RELAY,
  MAX_CONTROL_BYTES,
  MAX_FRAME_LENGTH,
  RELAY_PEER_ID_BYTES,
} from "./constants.ts";
import { FrameError } from "./errors.ts";

/** One decoded frame: its kind byte and its body (a copy the caller owns). */
export interface Frame {
  /** The kind byte ({@linkcode FRAME_KIND_CONTROL} or {@linkcode FRAME_KIND_RELAY}; others are invalid). */
  kind: number;
  /** The bytes after the kind byte. */
  body: Uint8Array;
}

/** A decoded relay frame body. */
export interface RelayBody {
  /** The peer ID as 40 lowercase hex digits (destination from a client, source from the server). */
  peer: string;
  /** The opaque payload (a view into the frame body). */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a control message (any JSON-serialisable object with a `type`) as a frame.
 * Throws a `RangeError` when the JSON is larger than {@linkcode MAX_CONTROL_BYTES}.
 *
 * @example
 * ```ts
 * const frame = encodeControlFrame({ type: "ping", t: 1 });
 * console.log(frame[4]); // 1 (FRAME_KIND_CONTROL)
 * ```
 */
export function encodeControlFrame<T extends { type: string }>(message: T): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  if (json.length > MAX_CONTROL_BYTES) {
    throw new RangeError(`control message of ${json.length} bytes is above ${MAX_CONTROL_BYTES}`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + json.length);
  writeFrameHeader(frame, 0, json.length + 1, FRAME_KIND_CONTROL);
  frame.set(json, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Encodes a relay frame for `peer` (a 40-hex-digit peer ID, or its 20 raw bytes) carrying
 * `payload` (1 to `MAX_RELAY_PAYLOAD` bytes; a `RangeError` otherwise).
 *
 * @example
 * ```ts
 * const frame = encodeRelayFrame("00".repeat(20), new Uint8Array([1, 2, 3]));
 * console.log(frame.length); // 5 + 20 + 3
 * ```
 */
export function encodeRelayFrame(peer: string | Uint8Array, payload: Uint8Array): Uint8Array {
  const id = typeof peer === "string" ? peerIdToBytes(peer) : peer;
  if (id.length !== RELAY_PEER_ID_BYTES) {
    throw new RangeError(`relay peer ID must be ${RELAY_PEER_ID_BYTES} bytes`);
  }
  const length = 1 + RELAY_PEER_ID_BYTES + payload.length;
  if (payload.length < 1 || length > MAX_FRAME_LENGTH) {
    throw new RangeError(`relay payload of ${payload.length} bytes is out of range`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + length - 1);
  writeFrameHeader(frame, 0, length, FRAME_KIND_RELAY);
  frame.set(id, FRAME_HEADER_BYTES);
  frame.set(payload, FRAME_HEADER_BYTES + RELAY_PEER_ID_BYTES);
  return frame;
}

/**
 * Encodes a relay-credit frame acknowledging `bytes` (1 to 2^32 - 1) relay frame bytes consumed
 * (a `RangeError` otherwise).
 *
 * @example
 * ```ts
 * const frame = encodeCreditFrame(16_384);
 * console.log(frame); // Uint8Array [0, 0, 0, 5, 3, 0, 0, 64, 0]
 * ```
 */
export function encodeCreditFrame(bytes: number): Uint8Array {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0xffff_ffff) {
    throw new RangeError(`relay credit of ${bytes} bytes is out of range`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + CREDIT_BODY_BYTES);
  writeFrameHeader(frame, 0, 1 + CREDIT_BODY_BYTES, FRAME_KIND_CREDIT);
  new DataView(frame.buffer).setUint32(FRAME_HEADER_BYTES, bytes);
  return frame;
}

/**
 * Decodes a relay-credit frame's body: the acknowledged byte count, or null when the body is not
 * exactly 4 bytes or acknowledges 0 bytes.
 *
 * @example
 * ```ts
 * console.log(decodeCreditBody(new Uint8Array([0, 0, 64, 0]))); // 16384
 * console.log(decodeCreditBody(new Uint8Array([1]))); // null
 * ```
 */
export function decodeCreditBody(body: Uint8Array): number | null {
  if (body.length !== CREDIT_BODY_BYTES) return null;
  const bytes = readFrameLength(body, 0);
  return bytes === 0 ? null : bytes;
}

/**
 * Writes a frame header (`length` = kind byte + body, then `kind`) at `offset`.
 *
 * @example
 * ```ts
 * const header = new Uint8Array(5);
 * writeFrameHeader(header, 0, 3, 2);
 * console.log(header); // Uint8Array [0, 0, 0, 3, 2]
 * ```
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  length: number,
  kind: number,
): void {
  target[offset] = length >>> 24;
  target[offset + 1] = (length >>> 16) & 0xff;
  target[offset + 2] = (length >>> 8) & 0xff;
  target[offset + 3] = length & 0xff;
  target[offset + 4] = kind;
}

/**
 * Reads the u32 big-endian length field at `offset` (the caller checks 4 bytes are there).
 *
 * @example
 * ```ts
 * console.log(readFrameLength(new Uint8Array([0, 0, 1, 0]), 0)); // 256
 * ```
 */
export function readFrameLength(source: Uint8Array, offset: number): number {
  return ((source[offset] << 24) >>> 0) + (source[offset + 1] << 16) +
    (source[offset + 2] << 8) + source[offset + 3];
}

/**
 * Decodes a control frame body: strict UTF-8, then JSON, which must be an object with a string
 * `type`. Throws {@linkcode FrameError} (`bad-frame`) otherwise. The result still needs schema
 * validation (see `parseClientMessage` / `parseServerMessage`).
 *
 * @example
 * ```ts
 * const value = decodeControlBody(new TextEncoder().encode('{"type":"ping","t":1}'));
 * console.log(value); // { type: "ping", t: 1 }
 * ```
 */
export function decodeControlBody(body: Uint8Array): { type: string } & Record<string, unknown> {
  if (body.length > MAX_CONTROL_BYTES) {
    throw new FrameError("bad-frame", `control body of ${body.length} bytes is too large`);
  }
  let text: string;
  try {
    text = strictDecoder.decode(body);
  } catch {
    throw new FrameError("bad-frame", "control body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError("bad-frame", "control body is not valid JSON");
  }
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    typeof (value as { type?: unknown }).type !== "string"
  ) {
    throw new FrameError("bad-frame", "control body is not an object with a string type");
  }
  return value as { type: string } & Record<string, unknown>;
}

/**
 * Splits a relay frame body into its peer ID (hex) and payload. Throws {@linkcode FrameError}
 * (`bad-frame`) when the body has no payload.
 *
 * @example
 * ```ts
 * const body = new Uint8Array(21);
 * body[20] = 7;
 * console.log(decodeRelayBody(body).payload); // Uint8Array [7]
 * ```
 */
export function decodeRelayBody(body: Uint8Array): RelayBody {
  if (body.length <= RELAY_PEER_ID_BYTES) {
    throw new FrameError("bad-frame", "relay frame without peer ID and payload");
  }
  return {
    peer: body.subarray(0, RELAY_PEER_ID_BYTES).toHex(),
    payload: body.subarray(RELAY_PEER_ID_BYTES),
  };
}

/**
 * Converts a 40-hex-digit peer ID to its 20 bytes. Throws a `TypeError` for a malformed ID.
 *
 * @example
 * ```ts
 * console.log(peerIdToBytes("ff".repeat(20))[0]); // 255
 * ```
 */
export function peerIdToBytes(peer: string): Uint8Array {
  if (!/^[0-9a-f]{40}$/.test(peer)) throw new TypeError(`not a peer ID: ${peer.slice(0, 64)}`);
  return Uint8Array.fromHex(peer);
}

/** Options of a {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest accepted length field (default {@linkcode MAX_FRAME_LENGTH}). */
  maxFrameLength?: number;
  /**
   * Largest buffer kept for the next partial frame once every frame held was complete (default
   * 4,096: a server holding thousands of idle connections frees the rest). A client receiving
   * 64 KiB relay frames keeps room for one, instead of allocating it again per frame (issue 14).
   */
  retainBytes?: number;
}

/**
 * Incremental frame decoder: feed it bytes as they arrive, get whole frames back. Frames may be
 * split across reads at any byte and a read may hold many frames. A length of 0 throws
 * {@linkcode FrameError} `bad-frame`; a length above the limit throws `frame-too-large`, as soon as
 * the 4 length bytes are in (the body is never buffered). After a throw the stream is unusable.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder();
 * const bytes = encodeControlFrame({ type: "ping", t: 1 });
 * console.log(decoder.push(bytes.subarray(0, 3)).length); // 0
 * console.log(decoder.push(bytes.subarray(3))[0].kind); // 1
 * ```
 */
export class FrameDecoder {
  readonly #maxFrameLength: number;
  readonly #retainBytes: number;
  #buffer = new Uint8Array(0);
  #length = 0;

  /**
   * Creates a decoder.
   *
   * @example
   * ```ts
   * const decoder = new FrameDecoder({ maxFrameLength: 1024 });
   * const client = new FrameDecoder({ retainBytes: 128 * 1024 });
   * ```
   */
  constructor(options: FrameDecoderOptions = {}) {
    this.#maxFrameLength = options.maxFrameLength ?? MAX_FRAME_LENGTH;
    this.#retainBytes = options.retainBytes ?? 4096;
  }

  /** Bytes held for a frame that is not complete yet. */
  get pendingBytes(): number {
    return this.#length;
  }

  /**
   * Adds `chunk` and returns every frame completed by it, in order.
   *
   * @example
   * ```ts
   * const decoder = new FrameDecoder();
   * const frames = decoder.push(encodeRelayFrame("00".repeat(20), new Uint8Array([1])));
   * console.log(frames[0].kind); // 2
   * ```
   */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let offset = 0;
    if (this.#length > 0) {
      // Complete the frame held from earlier reads with just the bytes it lacks; the rest of the
      // chunk is decoded where it is (a large chunk is not copied into the buffer first).
      if (this.#length < 4) {
        offset = this.#append(chunk, 0, 4 - this.#length);
        if (this.#length < 4) return frames;
      }
      const total = 4 + this.#checkedLength(this.#buffer, 0);
      offset = this.#append(chunk, offset, total - this.#length);
      if (this.#length < total) return frames;
      frames.push({ kind: this.#buffer[4], body: this.#buffer.slice(FRAME_HEADER_BYTES, total) });
      this.#length = 0;
    }
    while (chunk.length - offset >= 4) {
      const length = this.#checkedLength(chunk, offset);
      if (chunk.length - offset < 4 + length) break;
      frames.push({
        kind: chunk[offset + 4],
        body: chunk.slice(offset + FRAME_HEADER_BYTES, offset + 4 + length),
      });
      offset += 4 + length;
    }
    if (offset < chunk.length) {
      this.#append(chunk, offset, chunk.length - offset);
    } else if (this.#buffer.length > this.#retainBytes) {
      this.#buffer = new Uint8Array(0);
    }
    return frames;
  }

  /** The length field at `offset`, checked against 0 and the limit. */
  #checkedLength(source: Uint8Array, offset: number): number {
    const length = readFrameLength(source, offset);
    if (length === 0) throw new FrameError("bad-frame", "frame of length 0");
    if (length > this.#maxFrameLength) {
      throw new FrameError(
        "frame-too-large",
        `frame length ${length} is above ${this.#maxFrameLength}`,
      );
    }
    return length;
  }

  /** Appends up to `count` bytes of `chunk` from `offset` to the buffer; returns the new offset. */
  #append(chunk: Uint8Array, offset: number, count: number): number {
    const end = Math.min(chunk.length, offset + count);
    this.#ensureCapacity(this.#length + end - offset);
    this.#buffer.set(chunk.subarray(offset, end), this.#length);
    this.#length += end - offset;
    return end;
  }

  #ensureCapacity(size: number): void {
    if (this.#buffer.length >= size) return;
    const grown = new Uint8Array(Math.max(size, this.#buffer.length * 2, 256));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
}
