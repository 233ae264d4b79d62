/**
 * The server's per-connection read loop: reads into a reused buffer and hands every complete
 * frame to a sink without copying. The buffer starts small (an idle connection pins only
 * `smallBytes`), grows while data flows in bulk and shrinks back when reads turn small again.
 *
 * @module
 */
import { FRAME_HEADER_BYTES, MAX_FRAME_LENGTH, readFrameLength } from "../shared/signaling/mod.ts";

/** Where {@linkcode readFrames} delivers what it reads. */
export interface FrameSink {
  /** Called after every successful read (liveness). */
  onData(): void;
  /**
   * A complete frame: its kind byte and a view of its body, valid only until this call returns
   * or, when it returns a promise, until that settles (reading waits for it).
   */
  onFrame(kind: number, body: Uint8Array): void | Promise<void>;
  /** A frame with length 0 (it is skipped and reading goes on). */
  onEmptyFrame(): void;
  /** A length field above the limit; reading stops. */
  onFrameTooLarge(length: number): void;
  /**
   * The largest frame length accepted now (default: the reader's `maxFrameLength`). Below
   * `MAX_FRAME_LENGTH` (an unregistered connection) the buffer never grows to bulk size either.
   */
  frameLimit?(): number;
  /** Checked after every read and frame: true ends reading (`"stopped"`). */
  isStopped(): boolean;
  /** Called once when reading ends, with why (and the error, for `"error"`). */
  onEnd(end: FrameReaderEnd, error?: unknown): void;
}

/** Buffer sizes and limits of {@linkcode readFrames}. */
export interface FrameReaderOptions {
  /**
   * Read buffer of a quiet connection (default 128 bytes: heartbeats fit; `hello` and `register`
   * grow it once, for that frame). 128 rather than 256 bytes saves an idle client 128 bytes.
   */
  smallBytes?: number;
  /** Read buffer while data flows in bulk (default 256 KiB; at least a maximal frame). */
  largeBytes?: number;
  /** Largest accepted frame length field (default `MAX_FRAME_LENGTH`). */
  maxFrameLength?: number;
}

/** Buffer size for a single frame that does not fit the small buffer (control frames). */
const MEDIUM_BYTES = 4096;

/** Why {@linkcode readFrames} returned. */
export type FrameReaderEnd = "eof" | "too-large" | "stopped" | "error";

/** Anything with a `Deno.Conn`-style `read`. */
export interface ByteReader {
  /** Reads into `buffer`, resolving with the count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Reads frames from `reader` until end of stream, an oversized frame, a read error, or
 * `sink.isStopped()` turns true (checked after every frame), then calls `sink.onEnd` once.
 * Errors thrown by the sink's handlers end reading the same way (`"error"`).
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 3478 });
 * const end = await readFrames(conn, {
 *   onData() {},
 *   onFrame(kind, body) {
 *     console.log(kind, body.length);
 *   },
 *   onEmptyFrame() {},
 *   onFrameTooLarge() {},
 *   isStopped: () => false,
 *   onEnd(end) {
 *     console.log("ended:", end);
 *   },
 * });
 * console.log(end);
 * ```
 */
export async function readFrames(
  reader: ByteReader,
  sink: FrameSink,
  options: FrameReaderOptions = {},
): Promise<FrameReaderEnd> {
  const small = options.smallBytes ?? 128;
  const maxFrame = options.maxFrameLength ?? MAX_FRAME_LENGTH;
  const large = Math.max(options.largeBytes ?? 256 * 1024, maxFrame + 4);
  let buffer = new Uint8Array(small);
  let have = 0;
  let end: FrameReaderEnd;
  let failure: unknown;
  try {
    reading: for (;;) {
      const n = await reader.read(have === 0 ? buffer : buffer.subarray(have));
      if (n === null) {
        end = "eof";
        break reading;
      }
      if (sink.isStopped()) {
        end = "stopped";
        break reading;
      }
      sink.onData();
      const total = have + n;
      let offset = 0;
      while (total - offset >= 4) {
        const length = readFrameLength(buffer, offset);
        if (length === 0) {
          sink.onEmptyFrame();
          offset += 4;
          if (sink.isStopped()) {
            end = "stopped";
            break reading;
          }
          continue;
        }
        const limit = sink.frameLimit?.() ?? maxFrame;
        if (length > limit || length > maxFrame) {
          sink.onFrameTooLarge(length);
          end = "too-large";
          break reading;
        }
        if (total - offset < 4 + length) break;
        const handled = sink.onFrame(
          buffer[offset + 4],
          buffer.subarray(offset + FRAME_HEADER_BYTES, offset + 4 + length),
        );
        if (handled !== undefined) await handled;
        offset += 4 + length;
        if (sink.isStopped()) {
          end = "stopped";
          break reading;
        }
      }
      have = total - offset;
      if (have > 0 && offset > 0) buffer.copyWithin(0, offset, total);
      const needed = have >= 4 ? 4 + readFrameLength(buffer, 0) : 0;
      let size = buffer.length;
      const bulk = (sink.frameLimit?.() ?? maxFrame) >= MAX_FRAME_LENGTH;
      if (needed > size) {
        // One frame larger than the buffer: make room for it (a medium step for control frames),
        // committing memory as bytes arrive, not as the length field announces (issue 11): a
        // large frame's buffer at most doubles per read, up to the frame's size.
        size = needed <= MEDIUM_BYTES
          ? Math.ceil(needed / 256) * 256
          : Math.min(Math.max(needed, large), Math.max(MEDIUM_BYTES, 2 * have, bulk ? large : 0));
      } else if (bulk && total === size && size < large) {
        // The read filled the buffer: data is flowing, read in bulk.
        size = large;
      } else if (size > small && needed <= small && (size <= MEDIUM_BYTES || n <= small)) {
        // A one-off control frame is done, or bulk reads have turned small: give the bigger
        // buffer back before waiting again, so an idle connection pins only `small` bytes.
        size = small;
      }
      if (size !== buffer.length) buffer = resize(buffer, size, have);
    }
  } catch (error) {
    end = "error";
    failure = error;
  }
  // The sink learns the outcome here; the returned promise never rejects for read errors.
  sink.onEnd(end, failure);
  return end;
}

function resize(buffer: Uint8Array, size: number, keep: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(size);
  if (keep > 0) next.set(buffer.subarray(0, keep));
  return next;
}
