/**
 * Round-trip time estimation and the retransmission timeout of RFC 6298.
 *
 * @module
 */

/** Limits of an {@linkcode RttEstimator}, in ms. */
export interface RttEstimatorOptions {
  /** RTO before any measurement (RFC 6298 says 1 s). */
  initialRtoMs?: number;
  /** Lower bound of the RTO (RFC 6298 says 1 s; like Linux we allow 200 ms). */
  minRtoMs?: number;
  /** Upper bound of the RTO, also after backoff. */
  maxRtoMs?: number;
  /** Clock granularity G. */
  granularityMs?: number;
}

/**
 * SRTT, RTTVAR and RTO per RFC 6298, with exponential backoff. Callers apply Karn's rule: only
 * frames sent once give samples.
 *
 * @example
 * ```ts
 * import { RttEstimator } from "./rtt_estimator.ts";
 * const rtt = new RttEstimator();
 * rtt.sample(100);
 * console.log(rtt.srtt, rtt.rttvar, rtt.rto); // 100 50 300
 * ```
 */
export class RttEstimator {
  readonly #initialRto: number;
  readonly #minRto: number;
  readonly #maxRto: number;
  readonly #granularity: number;
  #srtt: number | undefined;
  #rttvar: number | undefined;
  #rto: number;
  /** The RTO without backoff. */
  #base: number;

  /**
   * Creates an estimator with no measurement yet.
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * const rtt = new RttEstimator({ minRtoMs: 100, maxRtoMs: 5000 });
   * ```
   */
  constructor(options: RttEstimatorOptions = {}) {
    this.#initialRto = options.initialRtoMs ?? 1000;
    this.#minRto = options.minRtoMs ?? 200;
    this.#maxRto = options.maxRtoMs ?? 5_000;
    this.#granularity = options.granularityMs ?? 1;
    if (!(this.#minRto > 0 && this.#minRto <= this.#maxRto)) {
      throw new RangeError("need 0 < minRtoMs <= maxRtoMs");
    }
    this.#rto = this.#clamp(this.#initialRto);
    this.#base = this.#rto;
  }

  /**
   * Smoothed RTT in ms, `undefined` before the first sample.
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * console.log(new RttEstimator().srtt); // undefined
   * ```
   */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /**
   * RTT variation in ms, `undefined` before the first sample.
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * console.log(new RttEstimator().rttvar); // undefined
   * ```
   */
  get rttvar(): number | undefined {
    return this.#rttvar;
  }

  /**
   * The current retransmission timeout in ms (including backoff).
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * console.log(new RttEstimator().rto); // 1000
   * ```
   */
  get rto(): number {
    return this.#rto;
  }

  /**
   * Adds an RTT measurement (ms) and recomputes the RTO, which also ends any backoff.
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * const rtt = new RttEstimator();
   * rtt.sample(40);
   * ```
   */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (this.#srtt === undefined || this.#rttvar === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#rto = this.#clamp(this.#srtt + Math.max(this.#granularity, 4 * this.#rttvar));
    this.#base = this.#rto;
  }

  /**
   * Undoes one doubling of a backoff (never below the RTO of the measurements): for progress
   * without a valid sample (every fragment acknowledged was retransmitted). Under heavy random
   * loss nearly every fragment is, and a backoff that only a sample ends would keep the RTO at
   * its maximum: one fragment every 5 s, a stall.
   *
   * @example
   * ```ts
   * const rtt = new RttEstimator();
   * rtt.backoff();
   * rtt.relax();
   * console.log(rtt.rto); // 1000
   * ```
   */
  relax(): void {
    this.#rto = Math.max(this.#base, this.#clamp(this.#rto / 2));
  }

  /**
   * Doubles the RTO after a timeout (RFC 6298, 5.5), up to the maximum.
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * const rtt = new RttEstimator();
   * rtt.backoff();
   * console.log(rtt.rto); // 2000
   * ```
   */
  backoff(): void {
    this.#base = Math.min(this.#base, this.#rto);
    this.#rto = this.#clamp(this.#rto * 2);
  }

  /**
   * Forgets all measurements (for instance after a path change).
   *
   * @example
   * ```ts
   * import { RttEstimator } from "./rtt_estimator.ts";
   * const rtt = new RttEstimator();
   * rtt.reset();
   * ```
   */
  reset(): void {
    this.#srtt = undefined;
    this.#rttvar = undefined;
    this.#rto = this.#clamp(this.#initialRto);
    this.#base = this.#rto;
  }

  #clamp(rto: number): number {
    return Math.min(this.#maxRto, Math.max(this.#minRto, rto));
  }
}
