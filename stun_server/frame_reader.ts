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
}

/** Buffer sizes and limits of {@linkcode readFrames}. */
export interface FrameReaderOptions {
  /** Read buffer of a quiet connection (default 1 KiB). */
  smallBytes?: number;
  /** Read buffer while data flows in bulk (default 128 KiB; at least a maximal frame). */
  largeBytes?: number;
  /** Largest accepted frame length field (default `MAX_FRAME_LENGTH`). */
  maxFrameLength?: number;
}

/** Why {@linkcode readFrames} returned. */
export type FrameReaderEnd = "eof" | "too-large" | "stopped";

/** Anything with a `Deno.Conn`-style `read`. */
export interface ByteReader {
  /** Reads into `buffer`, resolving with the count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Reads frames from `reader` until end of stream, an oversized frame, or `stopped()` turns true
 * (checked after every frame). Read errors propagate to the caller.
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
 * }, () => false);
 * console.log(end);
 * ```
 */
export async function readFrames(
  reader: ByteReader,
  sink: FrameSink,
  stopped: () => boolean,
  options: FrameReaderOptions = {},
): Promise<FrameReaderEnd> {
  const small = options.smallBytes ?? 1024;
  const maxFrame = options.maxFrameLength ?? MAX_FRAME_LENGTH;
  const large = Math.max(options.largeBytes ?? 128 * 1024, maxFrame + 4);
  let buffer = new Uint8Array(small);
  let have = 0;
  for (;;) {
    const n = await reader.read(have === 0 ? buffer : buffer.subarray(have));
    if (n === null) return "eof";
    if (stopped()) return "stopped";
    sink.onData();
    const total = have + n;
    let offset = 0;
    while (total - offset >= 4) {
      const length = readFrameLength(buffer, offset);
      if (length === 0) {
        sink.onEmptyFrame();
        offset += 4;
        if (stopped()) return "stopped";
        continue;
      }
      if (length > maxFrame) {
        sink.onFrameTooLarge(length);
        return "too-large";
      }
      if (total - offset < 4 + length) break;
      const handled = sink.onFrame(
        buffer[offset + 4],
        buffer.subarray(offset + FRAME_HEADER_BYTES, offset + 4 + length),
      );
      if (handled !== undefined) await handled;
      offset += 4 + length;
      if (stopped()) return "stopped";
    }
    have = total - offset;
    if (have > 0 && offset > 0) buffer.copyWithin(0, offset, total);
    const needed = have >= 4 ? 4 + readFrameLength(buffer, 0) : have + 1;
    if (buffer.length === small) {
      // Grow when reads fill the small buffer (data is flowing) or a frame needs more room.
      if (total === small || needed > small) {
        buffer = resize(buffer, large, have);
      }
    } else if (n <= small && needed <= small) {
      // Reads have turned small: give the large buffer back before waiting again.
      buffer = resize(buffer, small, have);
    }
  }
}

function resize(buffer: Uint8Array, size: number, keep: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(size);
  if (keep > 0) next.set(buffer.subarray(0, keep));
  return next;
}
