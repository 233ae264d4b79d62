/**
 * The outstanding probes of a path (PATH_PROBE nonces awaiting their PATH_RESPONSE) are kept in
 * a bounded map: a peer that never answers, or a flood of probe rounds, cannot grow it.
 *
 * @module
 */

/**
 * Makes room in `probes` (insertion order = oldest first) before one more is added: when it
 * holds `max`, the oldest entries go, expired ones (older than `lifetimeMs`) and then any, until
 * fewer than half of `max` remain.
 *
 * @example
 * ```ts
 * import { makeRoomForProbe } from "./probe_table.ts";
 * const probes = new Map([["a", { sentAt: 0 }], ["b", { sentAt: 5 }]]);
 * makeRoomForProbe(probes, 10, 2, 1_000);
 * console.log(probes.size); // 0: both went to make room
 * ```
 */
export function makeRoomForProbe(
  probes: Map<string, { sentAt: number }>,
  now: number,
  max: number,
  lifetimeMs: number,
): void {
  if (probes.size < max) return;
  for (const [key, probe] of probes) {
    if (now - probe.sentAt > lifetimeMs || probes.size >= max) probes.delete(key);
    if (probes.size < max / 2) break;
  }
}
