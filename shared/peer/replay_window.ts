/**
 * A sliding replay window over packet counters (RFC 6479 style): counters may arrive out of
 * order within the window, but each is accepted at most once, and counters older than the window
 * are refused.
 *
 * @module
 */

/** Default number of counters the window remembers behind the highest one seen. */
export const DEFAULT_REPLAY_WINDOW_SIZE: number = 2048;

/**
 * Remembers which of the last `size` counters were accepted.
 *
 * @example
 * ```ts
 * const window = new ReplayWindow();
 * window.accept(5); // true
 * window.accept(3); // true: out of order, within the window
 * window.accept(5); // false: a replay
 * ```
 */
export class ReplayWindow {
  /** How many counters behind the highest accepted one are still accepted (a multiple of 32). */
  readonly size: number;
  readonly #bits: Uint32Array;
  #highest = -1;

  /**
   * Creates an empty window.
   *
   * @param size Window size in counters; rounded up to a multiple of 32, at least 32.
   */
  constructor(size: number = DEFAULT_REPLAY_WINDOW_SIZE) {
    if (!Number.isSafeInteger(size) || size < 1 || size > 1 << 20) {
      throw new RangeError(`replay window size out of range: ${size}`);
    }
    this.size = Math.ceil(size / 32) * 32;
    this.#bits = new Uint32Array(this.size / 32);
  }

  /**
   * The highest counter accepted so far, or -1.
   *
   * @example
   * ```ts
   * const window = new ReplayWindow();
   * window.accept(7);
   * console.log(window.highest); // 7
   * ```
   */
  get highest(): number {
    return this.#highest;
  }

  /**
   * Tells whether `counter` would be accepted, without recording it. Cheap: use it before
   * spending work on decryption.
   *
   * @example
   * ```ts
   * const window = new ReplayWindow();
   * console.log(window.check(0)); // true
   * ```
   */
  check(counter: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0) return false;
    if (counter > this.#highest) return true;
    if (this.#highest - counter >= this.size) return false;
    const bit = counter % this.size;
    return (this.#bits[bit >>> 5] & (1 << (bit & 31))) === 0;
  }

  /**
   * Records `counter` if it is acceptable; returns whether it was.
   *
   * @example
   * ```ts
   * const window = new ReplayWindow();
   * console.log(window.accept(1), window.accept(1)); // true false
   * ```
   */
  accept(counter: number): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.#highest) {
      const gap = counter - this.#highest;
      if (gap >= this.size) {
        this.#bits.fill(0);
      } else {
        for (let c = this.#highest + 1; c < counter; c++) {
          const bit = c % this.size;
          this.#bits[bit >>> 5] &= ~(1 << (bit & 31));
        }
      }
      this.#highest = counter;
    }
    const bit = counter % this.size;
    this.#bits[bit >>> 5] |= 1 << (bit & 31);
    return true;
  }
}
