/**
 * File transfer messages: what two clients exchange, as reliable-channel messages, to offer,
 * accept, stream, confirm, resume and cancel a file. The behaviour is in `p2p_client/files/`.
 *
 * Every file message starts with the byte `0xFF`, which never occurs in UTF-8, so file messages
 * and chat lines (UTF-8 text) share one channel: a client reads a message starting with `0xFF` as
 * a file message and anything else as text. (A client that predates file transfer shows such a
 * message as text with replacement characters; it never sends file messages.)
 *
 * | kind | message | body (after `0xFF kind`) |
 * |------|---------|---------------------------|
 * | 0x01 | OFFER   | id (16), size u64, mtime ms u64, name length u16, name (UTF-8, 1–255 bytes) |
 * | 0x02 | ACCEPT  | id (16), resume offset u64, credit u64 (the sender may send bytes below it) |
 * | 0x03 | REJECT  | id (16), reason (UTF-8, ≤ 256 bytes) |
 * | 0x04 | CHUNK   | id (16), offset u64, bytes (1 to 1 MiB − 26) |
 * | 0x05 | CREDIT  | id (16), credit u64 (grows only) |
 * | 0x06 | END     | id (16), size u64, SHA-256 of the whole file (32) |
 * | 0x07 | DONE    | id (16), SHA-256 the receiver computed (32): it matched and the file is saved |
 * | 0x08 | CANCEL  | id (16), reason (UTF-8, ≤ 256 bytes) (either side; also a failed check) |
 *
 * An OFFER with the ID of a transfer the receiver knows (a resume after either side restarted or
 * the channel broke) is answered with ACCEPT at the offset the receiver has safely written.
 * Integers are big-endian; u64 values stay below 2^53.
 *
 * @module
 */

/** First byte of every file message (never in UTF-8 text). */
export const FILE_MESSAGE_MARKER = 0xff;

/** Kinds of file messages. */
export const FileMessageKind = {
  /** The sender offers a file. */
  Offer: 0x01,
  /** The receiver accepts it, from an offset, with an initial credit. */
  Accept: 0x02,
  /** The receiver declines it. */
  Reject: 0x03,
  /** File bytes at an offset. */
  Chunk: 0x04,
  /** The receiver lets the sender send more. */
  Credit: 0x05,
  /** Everything was sent; the file's size and SHA-256. */
  End: 0x06,
  /** The receiver checked the hash and saved the file. */
  Done: 0x07,
  /** Either side stops the transfer. */
  Cancel: 0x08,
} as const;

/** Size of a transfer ID. */
export const TRANSFER_ID_BYTES = 16;

/** Longest file name in an OFFER, in UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 255;

/** Longest REJECT / CANCEL reason, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 256;

/** Header of a CHUNK: marker, kind, ID, offset. */
export const CHUNK_HEADER_BYTES = 2 + TRANSFER_ID_BYTES + 8;

/** Largest CHUNK payload: a CHUNK fits a 1 MiB channel message. */
export const MAX_CHUNK_BYTES = (1 << 20) - CHUNK_HEADER_BYTES;

/** A decoded file message. */
export type FileMessage =
  | { kind: "offer"; id: string; size: number; mtimeMs: number; name: string }
  | { kind: "accept"; id: string; offset: number; credit: number }
  | { kind: "reject"; id: string; reason: string }
  | { kind: "chunk"; id: string; offset: number; bytes: Uint8Array }
  | { kind: "credit"; id: string; credit: number }
  | { kind: "end"; id: string; size: number; sha256: string }
  | { kind: "done"; id: string; sha256: string }
  | { kind: "cancel"; id: string; reason: string };

/** A malformed file message. */
export class FileMessageError extends Error {
  /**
   * @example
   * ```ts
   * throw new FileMessageError("truncated OFFER");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "FileMessageError";
  }
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Whether a channel message is a file message (starts with `0xFF`) rather than a text line.
 *
 * @example
 * ```ts
 * console.log(isFileMessage(new TextEncoder().encode("hi"))); // false
 * ```
 */
export function isFileMessage(message: Uint8Array): boolean {
  return message.length >= 2 && message[0] === FILE_MESSAGE_MARKER;
}

function isId(id: string): boolean {
  return /^[0-9a-f]{32}$/.test(id);
}

function isU53(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function writeU64(out: Uint8Array, at: number, value: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(at, Math.floor(value / 2 ** 32));
  view.setUint32(at + 4, value >>> 0);
}

function readU64(bytes: Uint8Array, at: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(at);
  if (high >= 2 ** 21) throw new FileMessageError("u64 above 2^53");
  return high * 2 ** 32 + view.getUint32(at + 4);
}

function head(kind: number, id: string, bodyBytes: number, buffer?: Uint8Array): Uint8Array {
  if (!isId(id)) throw new FileMessageError(`bad transfer ID ${JSON.stringify(id)}`);
  const total = 2 + TRANSFER_ID_BYTES + bodyBytes;
  if (buffer !== undefined && buffer.length < total) {
    throw new FileMessageError(`a buffer of ${buffer.length} bytes cannot hold ${total}`);
  }
  const out = buffer === undefined ? new Uint8Array(total) : buffer.subarray(0, total);
  out[0] = FILE_MESSAGE_MARKER;
  out[1] = kind;
  out.set(Uint8Array.fromHex(id), 2);
  return out;
}

function checkU53(name: string, value: number): void {
  if (!isU53(value)) throw new FileMessageError(`bad ${name} ${value}`);
}

function reasonBytes(reason: string): Uint8Array {
  const bytes = utf8.encode(reason);
  // Cut at a character boundary rather than refuse: reasons are for people.
  if (bytes.length <= MAX_REASON_BYTES) return bytes;
  let end = MAX_REASON_BYTES;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

const BODY = 2 + TRANSFER_ID_BYTES;

/**
 * Encodes a file message. Throws {@linkcode FileMessageError} for out-of-range fields.
 *
 * @example
 * ```ts
 * const bytes = encodeFileMessage({ kind: "credit", id: "ab".repeat(16), credit: 1 << 24 });
 * console.log(bytes.length); // 26
 * ```
 */
export function encodeFileMessage(message: FileMessage): Uint8Array {
  switch (message.kind) {
    case "offer": {
      checkU53("size", message.size);
      checkU53("mtime", message.mtimeMs);
      const name = utf8.encode(message.name);
      if (name.length < 1 || name.length > MAX_FILE_NAME_BYTES) {
        throw new FileMessageError(`file name of ${name.length} bytes`);
      }
      const out = head(FileMessageKind.Offer, message.id, 8 + 8 + 2 + name.length);
      writeU64(out, BODY, message.size);
      writeU64(out, BODY + 8, message.mtimeMs);
      out[BODY + 16] = name.length >> 8;
      out[BODY + 17] = name.length & 0xff;
      out.set(name, BODY + 18);
      return out;
    }
    case "accept": {
      checkU53("offset", message.offset);
      checkU53("credit", message.credit);
      const out = head(FileMessageKind.Accept, message.id, 16);
      writeU64(out, BODY, message.offset);
      writeU64(out, BODY + 8, message.credit);
      return out;
    }
    case "reject":
    case "cancel": {
      const reason = reasonBytes(message.reason);
      const kind = message.kind === "reject" ? FileMessageKind.Reject : FileMessageKind.Cancel;
      const out = head(kind, message.id, reason.length);
      out.set(reason, BODY);
      return out;
    }
    case "chunk": {
      checkU53("offset", message.offset);
      if (message.bytes.length < 1 || message.bytes.length > MAX_CHUNK_BYTES) {
        throw new FileMessageError(`chunk of ${message.bytes.length} bytes`);
      }
      const out = head(FileMessageKind.Chunk, message.id, 8 + message.bytes.length);
      writeU64(out, BODY, message.offset);
      out.set(message.bytes, BODY + 8);
      return out;
    }
    case "credit": {
      checkU53("credit", message.credit);
      const out = head(FileMessageKind.Credit, message.id, 8);
      writeU64(out, BODY, message.credit);
      return out;
    }
    case "end": {
      checkU53("size", message.size);
      if (!/^[0-9a-f]{64}$/.test(message.sha256)) throw new FileMessageError("bad SHA-256");
      const out = head(FileMessageKind.End, message.id, 8 + 32);
      writeU64(out, BODY, message.size);
      out.set(Uint8Array.fromHex(message.sha256), BODY + 8);
      return out;
    }
    case "done": {
      if (!/^[0-9a-f]{64}$/.test(message.sha256)) throw new FileMessageError("bad SHA-256");
      const out = head(FileMessageKind.Done, message.id, 32);
      out.set(Uint8Array.fromHex(message.sha256), BODY);
      return out;
    }
    default:
      throw new FileMessageError(`unknown kind ${(message as { kind: unknown }).kind}`);
  }
}

/**
 * Decodes a file message. Throws {@linkcode FileMessageError}, and nothing else, for malformed
 * input. A CHUNK's bytes are a view into `bytes` (no copy).
 *
 * @example
 * ```ts
 * const message = decodeFileMessage(encodeFileMessage({ kind: "done", id: "00".repeat(16), sha256: "11".repeat(32) }));
 * console.log(message.kind); // "done"
 * ```
 */
export function decodeFileMessage(bytes: Uint8Array): FileMessage {
  if (bytes.length < BODY || bytes[0] !== FILE_MESSAGE_MARKER) {
    throw new FileMessageError("not a file message");
  }
  const id = bytes.subarray(2, BODY).toHex();
  const body = bytes.length - BODY;
  const need = (n: number, exact = true) => {
    if (exact ? body !== n : body < n) throw new FileMessageError(`bad length of kind ${bytes[1]}`);
  };
  const text = (from: number): string => {
    if (bytes.length - from > MAX_REASON_BYTES) throw new FileMessageError("reason too long");
    try {
      return strictUtf8.decode(bytes.subarray(from));
    } catch {
      throw new FileMessageError("reason is not UTF-8");
    }
  };
  switch (bytes[1]) {
    case FileMessageKind.Offer: {
      need(18, false);
      const nameLength = (bytes[BODY + 16] << 8) | bytes[BODY + 17];
      if (nameLength < 1 || nameLength > MAX_FILE_NAME_BYTES || body !== 18 + nameLength) {
        throw new FileMessageError("bad OFFER name length");
      }
      let name: string;
      try {
        name = strictUtf8.decode(bytes.subarray(BODY + 18));
      } catch {
        throw new FileMessageError("file name is not UTF-8");
      }
      return {
        kind: "offer",
        id,
        size: readU64(bytes, BODY),
        mtimeMs: readU64(bytes, BODY + 8),
        name,
      };
    }
    case FileMessageKind.Accept:
      need(16);
      return {
        kind: "accept",
        id,
        offset: readU64(bytes, BODY),
        credit: readU64(bytes, BODY + 8),
      };
    case FileMessageKind.Reject:
      return { kind: "reject", id, reason: text(BODY) };
    case FileMessageKind.Cancel:
      return { kind: "cancel", id, reason: text(BODY) };
    case FileMessageKind.Chunk:
      need(9, false);
      if (body - 8 > MAX_CHUNK_BYTES) throw new FileMessageError("chunk too large");
      return { kind: "chunk", id, offset: readU64(bytes, BODY), bytes: bytes.subarray(BODY + 8) };
    case FileMessageKind.Credit:
      need(8);
      return { kind: "credit", id, credit: readU64(bytes, BODY) };
    case FileMessageKind.End:
      need(40);
      return {
        kind: "end",
        id,
        size: readU64(bytes, BODY),
        sha256: bytes.subarray(BODY + 8).toHex(),
      };
    case FileMessageKind.Done:
      need(32);
      return { kind: "done", id, sha256: bytes.subarray(BODY).toHex() };
    default:
      throw new FileMessageError(`unknown file message kind ${bytes[1]}`);
  }
}

/**
 * Allocates a CHUNK message for `length` file bytes at `offset` with its header written: the
 * caller reads the file straight into `message.subarray(CHUNK_HEADER_BYTES)` (no copy of the data).
 *
 * @example
 * ```ts
 * const message = allocateChunk("ab".repeat(16), 0, 4);
 * message.subarray(CHUNK_HEADER_BYTES).set([1, 2, 3, 4]);
 * ```
 */
export function allocateChunk(id: string, offset: number, length: number): Uint8Array {
  return chunkInto(undefined, id, offset, length);
}

/**
 * {@linkcode allocateChunk} in a buffer of the caller's (at least `CHUNK_HEADER_BYTES + length`
 * bytes, e.g. from a pool): returns the message, a view of `buffer`.
 *
 * @example
 * ```ts
 * import { CHUNK_HEADER_BYTES, chunkInto } from "./codec.ts";
 * const buffer = new Uint8Array(65_536);
 * const message = chunkInto(buffer, "ab".repeat(8), 0, 4);
 * console.log(message.length === CHUNK_HEADER_BYTES + 4); // true
 * ```
 */
export function chunkInto(
  buffer: Uint8Array | undefined,
  id: string,
  offset: number,
  length: number,
): Uint8Array {
  checkU53("offset", offset);
  if (length < 1 || length > MAX_CHUNK_BYTES) {
    throw new FileMessageError(`chunk of ${length} bytes`);
  }
  const out = head(FileMessageKind.Chunk, id, 8 + length, buffer);
  writeU64(out, BODY, offset);
  return out;
}
