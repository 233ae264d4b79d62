/**
 * RFC 8489 §6.2.1 retransmission over UDP: the first wait is RTO (500 ms by default), each next
 * one doubles, and after the last of Rc sends (7) the client waits Rm × RTO (16 × 500 ms) before
 * giving up: 39.5 s in all. One schedule for every STUN and TURN client of the project.
 *
 * @module
 */

/** RFC 8489 default initial RTO, ms. */
export const STUN_RTO_MS = 500;
/** RFC 8489 default Rc: most sends per transaction. */
export const STUN_MAX_SENDS = 7;
/** RFC 8489 default Rm: the last send waits this many initial RTOs. */
export const STUN_LAST_WAIT_RTOS = 16;

/**
 * How long to wait for an answer after the `sends`-th send (1 for the first) of a transaction.
 *
 * @example
 * ```ts
 * import { stunRetransmitWaitMs } from "./retransmit.ts";
 * stunRetransmitWaitMs(1); // 500
 * stunRetransmitWaitMs(3); // 2000
 * stunRetransmitWaitMs(7); // 8000: the last send waits 16 × 500 ms
 * ```
 */
export function stunRetransmitWaitMs(
  sends: number,
  rtoMs: number = STUN_RTO_MS,
  maxSends: number = STUN_MAX_SENDS,
): number {
  if (sends >= maxSends) return rtoMs * STUN_LAST_WAIT_RTOS;
  return rtoMs * 2 ** (Math.max(1, sends) - 1);
}
