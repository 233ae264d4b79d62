/**
 * When two brokered clients punch: one common instant on the server's clock, far enough ahead
 * that both `introduce` messages arrive first.
 *
 * @module
 */

/** Shortest lead time between brokering and punching, in milliseconds. */
export const MIN_PUNCH_LEAD_MS = 200;

/** Longest lead time (a wild RTT measurement never delays a connection by more). */
export const MAX_PUNCH_LEAD_MS = 3000;

/**
 * Lead time before the common punch instant: `max(200 ms, 2 × the larger RTT + 100 ms)`,
 * capped at {@linkcode MAX_PUNCH_LEAD_MS}. An unknown RTT (undefined or negative) counts as 0.
 *
 * @example
 * ```ts
 * console.log(punchLeadMs(10, 40)); // 200
 * console.log(punchLeadMs(300, undefined)); // 700
 * ```
 */
export function punchLeadMs(rttA: number | undefined, rttB: number | undefined): number {
  const a = rttA !== undefined && rttA > 0 ? rttA : 0;
  const b = rttB !== undefined && rttB > 0 ? rttB : 0;
  return Math.min(MAX_PUNCH_LEAD_MS, Math.max(MIN_PUNCH_LEAD_MS, 2 * Math.max(a, b) + 100));
}
