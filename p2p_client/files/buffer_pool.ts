/**
 * A bounded pool of equal-sized byte buffers, so a bulk transfer reuses the same few buffers
 * instead of allocating one per packet.
 *
 * Why: V8 frees an `ArrayBuffer`'s memory only after a garbage collection, and it starts one for
 * array buffers only once about 64 MiB of them have been allocated since the last (measured:
 * allocating 64 KiB buffers that live a few ms each peaks at 68 MiB of external memory whatever
 * the V8 flags). A file moved in 64 KiB chunks allocated that way kept each side's RSS 30–45 MiB
 * above its idle size; with chunks from a pool (and packets sealed and opened in place,
 * `SecureSession.sealPartsInto` / `openInPlaceSync`) it stays within a few MiB of it
 * (`deno task bench --only bulk`).
 *
 * @module
 */

/**
 * Buffers of `size` bytes: {@linkcode BufferPool.take} one (a new one when none is free) and
 * {@linkcode BufferPool.release} it when nothing refers to it any more; at most `keep` free
 * buffers are kept (the rest are left to the garbage collector).
 *
 * @example
 * ```ts
 * import { BufferPool } from "./buffer_pool.ts";
 * const pool = new BufferPool(65_536, 64);
 * const buffer = pool.take();
 * // ... fill it, send it, and once the peer acknowledged it:
 * pool.release(buffer);
 * console.log(pool.free); // 1
 * ```
 */
export class BufferPool {
  /** Size of every buffer. */
  readonly size: number;
  readonly #keep: number;
  readonly #free: Uint8Array[] = [];
  #allocated = 0;

  /**
   * @param size Bytes per buffer.
   * @param keep Most free buffers kept.
   */
  constructor(size: number, keep: number) {
    if (!(Number.isInteger(size) && size > 0)) throw new RangeError("size must be positive");
    if (!(Number.isInteger(keep) && keep >= 0)) throw new RangeError("keep must be at least 0");
    this.size = size;
    this.#keep = keep;
  }

  /**
   * Free buffers held.
   *
   * @example
   * ```ts
   * import { BufferPool } from "./buffer_pool.ts";
   * console.log(new BufferPool(16, 4).free); // 0
   * ```
   */
  get free(): number {
    return this.#free.length;
  }

  /**
   * Buffers allocated so far (a figure for tests: it stops growing once the pool is warm).
   *
   * @example
   * ```ts
   * import { BufferPool } from "./buffer_pool.ts";
   * const pool = new BufferPool(16, 4);
   * pool.release(pool.take());
   * pool.take();
   * console.log(pool.allocated); // 1
   * ```
   */
  get allocated(): number {
    return this.#allocated;
  }

  /**
   * A buffer of {@linkcode BufferPool.size} bytes (its contents are whatever was left in it).
   *
   * @example
   * ```ts
   * import { BufferPool } from "./buffer_pool.ts";
   * console.log(new BufferPool(16, 4).take().length); // 16
   * ```
   */
  take(): Uint8Array {
    const buffer = this.#free.pop();
    if (buffer !== undefined) return buffer;
    this.#allocated++;
    return new Uint8Array(this.size);
  }

  /**
   * Gives a buffer back (or any view of one taken from this pool: the whole buffer returns).
   * Views of other memory are ignored.
   *
   * @example
   * ```ts
   * import { BufferPool } from "./buffer_pool.ts";
   * const pool = new BufferPool(16, 4);
   * pool.release(pool.take().subarray(2, 5));
   * console.log(pool.free); // 1
   * ```
   */
  release(buffer: Uint8Array): void {
    if (buffer.buffer.byteLength !== this.size || buffer.buffer instanceof SharedArrayBuffer) {
      return;
    }
    if (this.#free.length >= this.#keep) return;
    const whole = buffer.buffer as ArrayBuffer;
    // Released twice would hand one buffer to two users.
    for (const free of this.#free) if (free.buffer === whole) return;
    this.#free.push(new Uint8Array(whole));
  }
}
