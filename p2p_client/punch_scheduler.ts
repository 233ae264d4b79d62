/**
 * When to send hole-punching / path probes: a fast burst from the agreed punch time, then a slow,
 * bounded rate while the client keeps trying to upgrade to (or keep) a direct path.
 *
 * @module
 */

/** Timing of a {@linkcode PunchScheduler}. */
export interface PunchTiming {
  /** Interval of the burst, ms (default 80). */
  burstIntervalMs?: number;
  /** Length of the burst from the punch time, ms (default 5000). */
  burstMs?: number;
  /** Interval after the burst, ms (default 2000). */
  slowIntervalMs?: number;
}

/**
 * Decides when the next round of probes is due. Pure: the caller passes the clock.
 *
 * @example
 * ```ts
 * const scheduler = new PunchScheduler(1000);
 * scheduler.due(999); // false: before the punch time
 * scheduler.due(1000); // true: first burst round
 * scheduler.due(1010); // false: too soon
 * ```
 */
export class PunchScheduler {
  #startAt: number;
  #lastAt = -Infinity;
  readonly #burstIntervalMs: number;
  readonly #burstMs: number;
  readonly #slowIntervalMs: number;

  /**
   * Creates a scheduler whose burst starts at `startAt` (local ms).
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../shared/runtime/mod.ts";
   * import { PunchScheduler } from "./punch_scheduler.ts";
   * const scheduler = new PunchScheduler(systemRuntime.now(), { burstMs: 3000 });
   * ```
   */
  constructor(startAt: number, timing: PunchTiming = {}) {
    this.#startAt = startAt;
    this.#burstIntervalMs = timing.burstIntervalMs ?? 80;
    this.#burstMs = timing.burstMs ?? 5000;
    this.#slowIntervalMs = timing.slowIntervalMs ?? 2000;
  }

  /**
   * Starts a new burst at `startAt` (a new introduction, or a path that died).
   *
   * @example
   * ```ts
   * const scheduler = new PunchScheduler(0);
   * scheduler.restart(5000);
   * ```
   */
  restart(startAt: number): void {
    this.#startAt = startAt;
    this.#lastAt = -Infinity;
  }

  /** The interval that applies at `now`. */
  intervalAt(now: number): number {
    return now < this.#startAt + this.#burstMs ? this.#burstIntervalMs : this.#slowIntervalMs;
  }

  /**
   * The local time at which the next round is due.
   *
   * @example
   * ```ts
   * new PunchScheduler(100).nextAt(0); // 100
   * ```
   */
  nextAt(now: number): number {
    if (now < this.#startAt) return this.#startAt;
    return Math.max(this.#startAt, this.#lastAt + this.intervalAt(now));
  }

  /**
   * True when a round is due at `now`; the round then counts as sent.
   *
   * @example
   * ```ts
   * const scheduler = new PunchScheduler(0);
   * scheduler.due(0); // true
   * ```
   */
  due(now: number): boolean {
    if (now < this.nextAt(now)) return false;
    this.#lastAt = now;
    return true;
  }
}
