/**
 * The relay budget the signaling relay and the TURN relay share: relayed payload bytes per second
 * over the whole server (`--relay-total-bps`), so an operator caps what the host relays whichever
 * way clients relay. Each relay also keeps its own per-client or per-allocation limits.
 *
 * @module
 */
import { TokenBucket } from "./token_bucket.ts";

/** Relayed bytes that may still go out now. */
export interface RelayBudget {
  /** Takes `bytes` from the budget; false (and nothing taken) when it is spent. */
  take(bytes: number): boolean;
}

/**
 * A budget of `bytesPerSecond` with one second of burst, on the clock `now` (ms).
 *
 * @example
 * ```ts
 * let now = 0;
 * const budget = relayBudget(1000, () => now);
 * console.log(budget.take(1000), budget.take(1)); // true false
 * now = 500;
 * console.log(budget.take(500)); // true
 * ```
 */
export function relayBudget(bytesPerSecond: number, now: () => number): RelayBudget {
  return new TokenBucket(bytesPerSecond, bytesPerSecond, now);
}
