/**
 * A batching outbound byte queue: callers append frames synchronously (never awaiting), and one
 * writer loop drains everything appended so far in as few `write` calls as it can. Small frames
 * are copied into shared chunks, so a burst of frames becomes one write.
 *
 * @module
 */
import { type Runtime, systemRuntime } from "../runtime/mod.ts";

/** Where a {@linkcode WriteQueue} writes: anything with a `Deno.Conn`-style `write`. */
export interface ByteWriter {
  /** Writes some of `bytes`, resolving with how many were written. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Options of a {@linkcode WriteQueue}. */
export interface WriteQueueOptions {
  /** Called once when a write fails; the queue is closed and drops what it held. */
  onError?: (error: unknown) => void;
  /** Largest batch chunk the queue allocates (larger single frames get their own chunk). */
  maxChunkBytes?: number;
  /** Timers for {@linkcode WriteQueue.waitBelow} deadlines (default `systemRuntime`). */
  runtime?: Pick<Runtime, "setTimer" | "clearTimer">;
}

/** A buffer pushed with {@linkcode WriteQueue.pushOwned} whose owner wants it back once written. */
interface OwnedChunk {
  bytes: Uint8Array;
  written: (bytes: Uint8Array) => void;
}

interface DrainWaiter {
  limit: number;
  resolve: (reached: boolean) => void;
}

const MIN_CHUNK_BYTES = 512;
const DEFAULT_MAX_CHUNK_BYTES = 256 * 1024;

/**
 * Per-connection outgoing queue of byte chunks drained by one writer loop.
 *
 * @example
 * ```ts
 * const sink: Uint8Array[] = [];
 * const queue = new WriteQueue({
 *   write: (bytes) => {
 *     sink.push(bytes.slice());
 *     return Promise.resolve(bytes.length);
 *   },
 * });
 * queue.push(new Uint8Array([1, 2]));
 * queue.push(new Uint8Array([3]));
 * await queue.flush();
 * console.log(sink); // [Uint8Array [1, 2, 3]]
 * ```
 */
export class WriteQueue {
  readonly #writer: ByteWriter;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #maxChunk: number;
  readonly #timers: Pick<Runtime, "setTimer" | "clearTimer">;
  #ready: (Uint8Array | OwnedChunk)[] | null = null;
  #fill: Uint8Array | null = null;
  #spare: Uint8Array | null = null;
  #fillLength = 0;
  #queued = 0;
  #scheduled = false;
  #writing = false;
  #closed = false;
  #written = 0;
  #waiters: DrainWaiter[] | null = null;

  /**
   * Creates a queue writing to `writer`.
   *
   * @example
   * ```ts
   * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 3478 });
   * const queue = new WriteQueue(conn, { onError: () => conn.close() });
   * ```
   */
  constructor(writer: ByteWriter, options: WriteQueueOptions = {}) {
    this.#writer = writer;
    this.#onError = options.onError;
    this.#maxChunk = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    this.#timers = options.runtime ?? systemRuntime;
  }

  /** Bytes appended and not yet written (including a write in progress). */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** True once {@linkcode WriteQueue.close} was called or a write failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Appends a copy of `bytes`. Ignored once the queue is closed.
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * queue.push(new Uint8Array(10));
   * console.log(queue.queuedBytes); // 10
   * ```
   */
  push(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.reserve(bytes.length).set(bytes);
  }

  /**
   * Appends `bytes` without copying: the queue keeps and writes that very buffer, so the caller
   * must never change it afterwards. One read-only frame (a heartbeat, say) can be pushed to many
   * queues this way at no cost per queue. Ignored once the queue is closed. `written`, if given,
   * is called with `bytes` once they are all written (then the caller may reuse the buffer; it is
   * not called for bytes dropped by a close).
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * const frame = new Uint8Array([0, 0, 0, 1, 1]);
   * queue.pushOwned(frame);
   * await queue.flush();
   * ```
   */
  pushOwned(bytes: Uint8Array, written?: (bytes: Uint8Array) => void): void {
    if (this.#closed || bytes.length === 0) return;
    if (this.#fill !== null && this.#fillLength > 0) {
      (this.#ready ??= []).push(this.#fill.subarray(0, this.#fillLength));
    }
    this.#fill = null;
    this.#spare = null;
    this.#fillLength = 0;
    (this.#ready ??= []).push(written === undefined ? bytes : { bytes, written });
    this.#queued += bytes.length;
    this.#schedule();
  }

  /**
   * Reserves `size` bytes at the end of the queue and returns them for the caller to fill
   * before it next yields to the event loop (lets a relay build a frame in place, one copy).
   * Once closed, returns a scratch buffer that is never written.
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * const space = queue.reserve(3);
   * space.set([1, 2, 3]);
   * ```
   */
  reserve(size: number): Uint8Array {
    if (this.#closed) return new Uint8Array(size);
    if (this.#fill === null || this.#fill.length - this.#fillLength < size) {
      if (this.#fill !== null && this.#fillLength > 0) {
        (this.#ready ??= []).push(this.#fill.subarray(0, this.#fillLength));
      }
      const capacity = Math.max(
        size,
        Math.min(this.#maxChunk, Math.max(MIN_CHUNK_BYTES, this.#queued)),
      );
      const spare = this.#spare;
      this.#spare = null;
      this.#fill = spare !== null && spare.length >= capacity ? spare : new Uint8Array(capacity);
      this.#fillLength = 0;
    }
    const start = this.#fillLength;
    this.#fillLength += size;
    this.#queued += size;
    this.#schedule();
    return this.#fill.subarray(start, start + size);
  }

  /**
   * Takes back the last `size` bytes reserved with {@linkcode WriteQueue.reserve}, before the
   * caller yields to the event loop (a frame that could not be built after all: nothing of it is
   * written). False when they cannot be taken back (not the last reservation, or already being
   * written); then the caller must fill them with something harmless.
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * queue.reserve(3);
   * console.log(queue.unreserve(3), queue.queuedBytes); // true 0
   * ```
   */
  unreserve(size: number): boolean {
    if (this.#closed) return true;
    if (this.#fill === null || this.#fillLength < size) return false;
    this.#fillLength -= size;
    this.#queued -= size;
    return true;
  }

  /**
   * Resolves when everything appended so far is written (or the queue closed).
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * queue.push(new Uint8Array(1));
   * await queue.flush();
   * console.log(queue.queuedBytes); // 0
   * ```
   */
  flush(): Promise<void> {
    return this.waitBelow(0).then(() => {});
  }

  /** Total bytes written to the writer so far (progress, for stall detection). */
  get writtenBytes(): number {
    return this.#written;
  }

  /**
   * Resolves true once at most `limit` bytes are queued, or false when `timeoutMs` passes first
   * or the queue closes. Lets a producer apply backpressure: pause until the queue drains.
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * queue.push(new Uint8Array(100_000));
   * console.log(await queue.waitBelow(10_000, 1000)); // true
   * ```
   */
  waitBelow(limit: number, timeoutMs?: number): Promise<boolean> {
    if (this.#queued <= limit) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: number | undefined;
      const waiter = {
        limit,
        resolve: (reached: boolean) => {
          this.#timers.clearTimer(timer);
          resolve(reached);
        },
      };
      (this.#waiters ??= []).push(waiter);
      if (timeoutMs !== undefined) {
        timer = this.#timers.setTimer(() => {
          const i = this.#waiters?.indexOf(waiter) ?? -1;
          if (i >= 0) this.#waiters!.splice(i, 1);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  /**
   * Closes the queue: drops everything not yet written and ignores later appends.
   *
   * @example
   * ```ts
   * const queue = new WriteQueue({ write: (b) => Promise.resolve(b.length) });
   * queue.close();
   * console.log(queue.closed); // true
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = null;
    this.#fill = null;
    this.#spare = null;
    this.#fillLength = 0;
    this.#queued = 0;
    this.#releaseWaiters();
  }

  #schedule(): void {
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
  }

  #releaseWaiters(): void {
    const waiters = this.#waiters;
    if (waiters === null) return;
    const reached = !this.#closed;
    const keep: DrainWaiter[] = [];
    for (const waiter of waiters) {
      if (!reached) waiter.resolve(false);
      else if (this.#queued <= waiter.limit) waiter.resolve(true);
      else keep.push(waiter);
    }
    this.#waiters = keep.length > 0 ? keep : null;
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      let own: Uint8Array | null = null;
      while (!this.#closed) {
        let chunk: Uint8Array;
        let owned: OwnedChunk | null = null;
        if (this.#ready !== null && this.#ready.length > 0) {
          const next = this.#ready.shift()!;
          if (next instanceof Uint8Array) chunk = next;
          else {
            owned = next;
            chunk = next.bytes;
          }
          if (this.#ready.length === 0) this.#ready = null;
        } else if (this.#fill !== null && this.#fillLength > 0) {
          own = this.#fill;
          chunk = own.subarray(0, this.#fillLength);
          this.#fill = null;
          this.#fillLength = 0;
        } else {
          break;
        }
        let offset = 0;
        while (offset < chunk.length) {
          offset += await this.#writer.write(offset === 0 ? chunk : chunk.subarray(offset));
          if (this.#closed) return;
        }
        // The chunk is written: reuse it for what comes next instead of allocating (and zeroing)
        // a fresh one per frame or per batch: it becomes the fill chunk when nothing was appended
        // meanwhile, else the spare. Both are released by the next `pushOwned` (a heartbeat, at
        // the latest), so an idle connection pins no chunk.
        if (own !== null) {
          if (this.#fill === null) this.#fill = own;
          else if (this.#spare === null) this.#spare = own;
          own = null;
        }
        owned?.written(owned.bytes);
        this.#queued -= chunk.length;
        this.#written += chunk.length;
        this.#releaseWaiters();
      }
    } catch (error) {
      this.close();
      this.onWriteError(error);
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Called once when a write fails (after the queue closed): calls the `onError` option. A
   * subclass may override it instead of passing a closure (a server holding many idle queues
   * saves the closure and its context per queue).
   *
   * @example
   * ```ts
   * class LoggingQueue extends WriteQueue {
   *   protected override onWriteError(error: unknown): void {
   *     console.error("write failed:", error);
   *   }
   * }
   * const queue = new LoggingQueue({ write: () => Promise.reject(new Error("reset")) });
   * queue.push(new Uint8Array(1));
   * ```
   */
  protected onWriteError(error: unknown): void {
    this.#onError?.(error);
  }
}
