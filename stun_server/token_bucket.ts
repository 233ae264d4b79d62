/**
 * A token bucket for rate limits (control messages per second, relayed bytes per second).
 *
 * @module
 */

/** A clock returning milliseconds (monotonic or wall; only differences matter). */
export type MillisecondClock = () => number;

/**
 * A token bucket refilled continuously at `ratePerSecond` up to `burst` tokens. Starts full.
 * The clock is injected so tests can drive it.
 *
 * @example
 * ```ts
 * let now = 0;
 * const bucket = new TokenBucket(100, 100, () => now);
 * console.log(bucket.take(100)); // true
 * console.log(bucket.take(1)); // false
 * now += 10; // 10 ms later: 1 token refilled
 * console.log(bucket.take(1)); // true
 * ```
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: MillisecondClock;
  #tokens: number;
  #updatedAt: number;

  /**
   * Creates a full bucket.
   *
   * @example
   * ```ts
   * let now = 0;
   * const bucket = new TokenBucket(50, 100, () => now);
   * ```
   */
  constructor(ratePerSecond: number, burst: number, clock: MillisecondClock) {
    if (!(ratePerSecond >= 0) || !(burst >= 0)) {
      throw new RangeError("token bucket rate and burst must be non-negative");
    }
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#updatedAt = clock();
  }

  /** Tokens available now. */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Takes `amount` tokens if that many are available; otherwise takes none and returns false.
   *
   * @example
   * ```ts
   * const bucket = new TokenBucket(10, 10, () => 0);
   * console.log(bucket.take(11)); // false
   * console.log(bucket.take(10)); // true
   * ```
   */
  take(amount: number): boolean {
    this.#refill();
    if (this.#tokens < amount) return false;
    this.#tokens -= amount;
    return true;
  }

  #refill(): void {
    const now = this.#clock();
    const elapsed = now - this.#updatedAt;
    this.#updatedAt = now;
    if (elapsed <= 0) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}
