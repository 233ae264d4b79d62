/**
 * One timer per owner, armed by deadline: a state machine says when it next has work
 * (`nextDeadline`), and this runs it then, not on a fixed-rate poll. Arming an earlier deadline
 * replaces a later one; a deadline already due runs from the runtime's `defer` (after the
 * datagrams already received are processed, so a burst is handled once at its end).
 *
 * @module
 */
import type { Runtime, TimerId } from "../shared/runtime/mod.ts";

/**
 * A re-armable deadline timer on a {@linkcode Runtime}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * const timer = new DeadlineTimer(systemRuntime, () => console.log("due"));
 * timer.arm(systemRuntime.now() + 10);
 * timer.cancel();
 * ```
 */
export class DeadlineTimer {
  readonly #runtime: Runtime;
  readonly #callback: () => void;
  #at = Infinity;
  #timer: TimerId | undefined;
  #generation = 0;

  /**
   * Creates an idle timer.
   *
   * @param runtime Clock and timers.
   * @param callback Runs when the armed deadline comes (then the timer is idle).
   */
  constructor(runtime: Runtime, callback: () => void) {
    this.#runtime = runtime;
    this.#callback = callback;
  }

  /** The armed deadline, or `Infinity`. */
  get at(): number {
    return this.#at;
  }

  /**
   * Runs the callback at `at` (runtime ms) unless an earlier or equal deadline is armed already.
   * `Infinity` or `NaN` does nothing.
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../shared/runtime/mod.ts";
   * const timer = new DeadlineTimer(systemRuntime, () => {});
   * timer.arm(Infinity); // nothing armed
   * ```
   */
  arm(at: number): void {
    if (!Number.isFinite(at) || at >= this.#at) return;
    this.cancel();
    this.#at = at;
    const generation = ++this.#generation;
    const run = () => {
      if (generation !== this.#generation) return;
      this.#timer = undefined;
      this.#at = Infinity;
      this.#callback();
    };
    const delay = at - this.#runtime.now();
    if (delay <= 0) {
      this.#runtime.defer(run);
    } else {
      this.#timer = this.#runtime.setTimer(run, delay);
    }
  }

  /**
   * Disarms the timer.
   *
   * @example
   * ```ts
   * import { systemRuntime } from "../shared/runtime/mod.ts";
   * new DeadlineTimer(systemRuntime, () => {}).cancel();
   * ```
   */
  cancel(): void {
    this.#generation++;
    this.#runtime.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
