/**
 * When two introduced clients punch: one common instant, far enough ahead that both `introduce`
 * messages arrive first, and for each side the delay from receiving its `introduce` to that
 * instant, which accounts for that side's own latency to the server.
 *
 * Why per side: with 10 ms RTT on one side and 150 ms on the other, the near side receives its
 * `introduce` about 70 ms before the far side. A common delay from receipt would make the near
 * side punch 70 ms early, into a NAT that has not opened yet (issue 9: port-restricted pairs under
 * asymmetric delay ended relayed). Each side instead waits `lead - its one-way delay`, so both
 * punch at the same moment on the server's clock.
 *
 * @module
 */

/** Shortest lead time between introduction and punching, in milliseconds. */
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
  return Math.min(
    MAX_PUNCH_LEAD_MS,
    Math.max(MIN_PUNCH_LEAD_MS, 2 * Math.max(ms(rttA), ms(rttB)) + 100),
  );
}

/** A punch schedule for one introduced pair. */
export interface PunchPlan {
  /** Lead from now (server clock) to the common punch instant. */
  leadMs: number;
  /** For side A: delay from receiving `introduce` to punching (`lead - rttA / 2`). */
  punchInMsA: number;
  /** For side B: the same with B's RTT. */
  punchInMsB: number;
}

/**
 * The schedule of one pair: the common lead, and each side's delay after receipt (its RTT
 * halved is taken as its one-way delay from the server).
 *
 * @example
 * ```ts
 * const plan = punchPlan(10, 150);
 * console.log(plan.leadMs, plan.punchInMsA, plan.punchInMsB); // 400 395 325
 * ```
 */
export function punchPlan(rttA: number | undefined, rttB: number | undefined): PunchPlan {
  const leadMs = punchLeadMs(rttA, rttB);
  return {
    leadMs,
    punchInMsA: Math.max(0, Math.round(leadMs - ms(rttA) / 2)),
    punchInMsB: Math.max(0, Math.round(leadMs - ms(rttB) / 2)),
  };
}

function ms(rtt: number | undefined): number {
  return rtt !== undefined && rtt > 0 ? rtt : 0;
}
