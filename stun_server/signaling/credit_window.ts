/**
 * The relay window of a `relay-credit` receiver, bounded in time rather than in bytes (issue 14).
 *
 * Relay credit (issue 11) keeps what the server has written to a receiver and not yet had
 * acknowledged below a window, so an honest frame never waits behind more than that window of a
 * flood. A fixed 64 KiB window passes at most 64 KiB per credit round trip (server write, client
 * read and take, credit frame, server read): stop-and-wait as soon as that round trip is longer
 * than the receiver needs for 64 KiB. On loopback with an idle server it rarely is (two client
 * programs, `sendfile` 256 MiB `--relay-only`, load average about 1.5: 166-170 MB/s with 64 KiB,
 * 169-185 MB/s with this window, both bound by CPU); with credit frames 0.5 ms late, a receiver
 * that consumes 200 MiB/s got 153 KB/ms of its 210 (`relay_credit_test.ts`, virtual time), and a
 * server waiting for a core on a busy machine, or a LAN round trip, delays credit the same way.
 *
 * What an honest frame waits behind is the window divided by the rate at which the receiver
 * consumes it. So the window follows the receiver's measured consumption rate (relay frame bytes
 * acknowledged per ms, averaged over samples of at least {@linkcode CREDIT_SAMPLE_MS}, smoothed)
 * times {@linkcode RELAY_CREDIT_TARGET_MS}, clamped between the granted window (64 KiB: a slow
 * receiver keeps today's bound in bytes) and {@linkcode RELAY_CREDIT_MAX_BYTES}. The rate cannot
 * be above what the receiver consumes, so under a flood an honest frame waits about
 * `RELAY_CREDIT_TARGET_MS` (or the minimum window's time, if longer) whatever the receiver's speed.
 * A receiver that slows down or goes quiet pulls its rate, and with it its window, back down.
 *
 * @module
 */

/** Largest relay window the server grows a fast receiver's credit to. */
export const RELAY_CREDIT_MAX_BYTES = 1024 * 1024;
/**
 * The window holds what the receiver consumed in this many ms (its measured rate × this). Attack
 * bench, honest relay p50 under a 16-sender flood, 3 runs each, load average about 2: 3.7-4.8 ms
 * with 1 ms, 3.9-6.3 ms with 2 ms, 4.0-4.8 ms with a fixed 64 KiB.
 */
export const RELAY_CREDIT_TARGET_MS = 1;
/** Shortest span of acknowledgements one rate sample covers (ms). */
export const CREDIT_SAMPLE_MS = 2;

/**
 * Estimates a receiver's consumption rate from its credit frames and derives its relay window.
 *
 * @example
 * ```ts
 * const window = new CreditWindow(65_536);
 * let now = 0;
 * // A receiver acknowledging 16 KiB every 0.05 ms (about 330 MB/s):
 * for (let i = 0; i < 200; i++) window.acknowledged(16_384, now += 0.05);
 * console.log(window.bytes > 65_536); // true
 * ```
 */
export class CreditWindow {
  /** The smallest window (the granted credit, `registered.relay.creditBytes`). */
  readonly minBytes: number;
  /** The largest window. */
  readonly maxBytes: number;
  /** The time the window should take the receiver to consume (ms). */
  readonly targetMs: number;
  #bytes: number;
  #rate = 0;
  #sampleStart = -1;
  #sampleBytes = 0;

  /**
   * Creates the estimator; the window starts at `minBytes`.
   *
   * @example
   * ```ts
   * const window = new CreditWindow(65_536, 1 << 20, 1);
   * console.log(window.bytes); // 65536
   * ```
   */
  constructor(
    minBytes: number,
    maxBytes = RELAY_CREDIT_MAX_BYTES,
    targetMs = RELAY_CREDIT_TARGET_MS,
  ) {
    this.minBytes = minBytes;
    this.maxBytes = Math.max(minBytes, maxBytes);
    this.targetMs = targetMs;
    this.#bytes = minBytes;
  }

  /** The current window: relay frame bytes that may be written and unacknowledged. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The smoothed consumption rate (relay frame bytes acknowledged per ms; 0 before a sample). */
  get rateBytesPerMs(): number {
    return this.#rate;
  }

  /**
   * Records a credit frame acknowledging `bytes` at `now` (ms) and returns the window. The first
   * acknowledgement only starts a sample; a sample ends at the first acknowledgement at least
   * {@linkcode CREDIT_SAMPLE_MS} after it started, and moves the smoothed rate halfway to it.
   *
   * @example
   * ```ts
   * const window = new CreditWindow(65_536);
   * window.acknowledged(16_384, 0);
   * // 600,000 bytes in 2 ms: a sample of 300,000 bytes/ms, the rate moves halfway to it from 0.
   * console.log(window.acknowledged(600_000, 2)); // 150000 (150,000 bytes/ms × 1 ms)
   * ```
   */
  acknowledged(bytes: number, now: number): number {
    if (this.#sampleStart < 0) {
      this.#sampleStart = now;
      this.#sampleBytes = 0;
      return this.#bytes;
    }
    this.#sampleBytes += bytes;
    const elapsed = now - this.#sampleStart;
    if (elapsed < CREDIT_SAMPLE_MS) return this.#bytes;
    const sample = this.#sampleBytes / elapsed;
    this.#rate = (this.#rate + sample) / 2;
    this.#sampleStart = now;
    this.#sampleBytes = 0;
    const wanted = Math.floor(this.#rate * this.targetMs);
    this.#bytes = Math.min(this.maxBytes, Math.max(this.minBytes, wanted));
    return this.#bytes;
  }
}
