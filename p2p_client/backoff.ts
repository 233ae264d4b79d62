/**
 * Jittered, capped exponential backoff for reconnect attempts.
 *
 * @module
 */

/** Options of a {@linkcode Backoff}. */
export interface BackoffOptions {
  /** First delay in milliseconds (default 250). */
  initialMs?: number;
  /** Largest delay in milliseconds (default 10,000). */
  maxMs?: number;
  /** Random source in [0, 1) (the runtime's `random`). */
  random: () => number;
}

/**
 * Delays that double from `initialMs` up to `maxMs`, each drawn uniformly from [d/2, d] ("equal
 * jitter") so that many clients losing one server do not come back in lockstep.
 *
 * @example
 * ```ts
 * const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999 });
 * backoff.next(); // ~100
 * backoff.next(); // ~200
 * backoff.reset();
 * ```
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * Creates a backoff.
   *
   * @example
   * ```ts
   * const backoff = new Backoff({ random: () => 0.5 });
   * ```
   */
  constructor(options: BackoffOptions) {
    this.#initialMs = options.initialMs ?? 250;
    this.#maxMs = options.maxMs ?? 10_000;
    this.#random = options.random;
  }

  /**
   * The next delay in milliseconds.
   *
   * @example
   * ```ts
   * const delay = new Backoff({ random: () => 0.5 }).next();
   * ```
   */
  next(): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return ceiling / 2 + (ceiling / 2) * this.#random();
  }

  /**
   * Starts over from the initial delay (after a success).
   *
   * @example
   * ```ts
   * const backoff = new Backoff({ random: () => 0.5 });
   * backoff.next();
   * backoff.reset();
   * ```
   */
  reset(): void {
    this.#attempt = 0;
  }
}
