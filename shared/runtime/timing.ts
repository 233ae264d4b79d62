/**
 * Small time helpers on a {@linkcode Runtime}: a sleep and a timeout race that clean up their
 * timers, so virtual time and real time behave the same.
 *
 * @module
 */
import type { Runtime } from "./runtime.ts";

/**
 * Resolves after `ms` on the runtime's clock.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "./system.ts";
 * await sleep(systemRuntime, 1);
 * ```
 */
export function sleep(runtime: Runtime, ms: number): Promise<void> {
  return new Promise((resolve) => runtime.setTimer(resolve, ms));
}

/** Raised by {@linkcode withTimeout} when the time runs out first. */
export class TimeoutError extends Error {
  /** @param message What did not happen in time. */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Resolves as `promise` does, or rejects with {@linkcode TimeoutError} after `ms`.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "./system.ts";
 * const value = await withTimeout(systemRuntime, Promise.resolve(7), 100, "answer");
 * console.log(value); // 7
 * ```
 */
export function withTimeout<T>(
  runtime: Runtime,
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = runtime.setTimer(() => reject(new TimeoutError(`no ${what} in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => runtime.clearTimer(timer));
}
