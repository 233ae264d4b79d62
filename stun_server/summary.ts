/**
 * The periodic INFO summary of what the server did (every 10 minutes, when anything happened):
 * clients, registrations, relay and STUN rates, refusals. Lets an operator reading only the log
 * see the STUN and relay figures without SIGHUP or the status page.
 *
 * @module
 */
import type { MetricsSnapshot } from "./metrics.ts";

/** A log line: message template and properties. */
export interface SummaryLine {
  /** Template with `{property}` placeholders. */
  message: string;
  /** The properties. */
  properties: Record<string, number>;
}

function sum(counts: Record<string, number>): number {
  let total = 0;
  for (const value of Object.values(counts)) total += value;
  return total;
}

function refusals(s: MetricsSnapshot): number {
  return sum(s.relayRefused) + sum(s.registrations) - (s.registrations.accepted ?? 0) +
    sum(s.connections) - (s.connections.accepted ?? 0);
}

/**
 * The summary of what happened between two snapshots, or null when nothing did.
 *
 * @example
 * ```ts
 * import { ServerMetrics } from "./metrics.ts";
 * let now = 0;
 * const metrics = new ServerMetrics("0.1.0", () => now);
 * const before = metrics.snapshot();
 * now = 600_000;
 * metrics.relayBytes = 6_000_000;
 * console.log(summarize(before, metrics.snapshot())?.properties.relayRate); // 10000
 * console.log(summarize(before, before)); // null
 * ```
 */
export function summarize(previous: MetricsSnapshot, now: MetricsSnapshot): SummaryLine | null {
  const seconds = Math.max(1, now.uptimeSeconds - previous.uptimeSeconds);
  const stun = sum(now.stunAnswered) - sum(previous.stunAnswered);
  const relayBytes = now.relayBytes - previous.relayBytes;
  const registrations = (now.registrations.accepted ?? 0) -
    (previous.registrations.accepted ?? 0);
  const refused = refusals(now) - refusals(previous);
  if (stun === 0 && relayBytes === 0 && registrations === 0 && refused === 0) return null;
  return {
    message:
      "last {minutes} min: {registered} clients registered now, {registrations} registrations, relay {relayRate} B/s, STUN {stunRate} requests/s, {refused} refusals",
    properties: {
      minutes: Math.round(seconds / 60),
      registered: now.registered,
      registrations,
      relayRate: Math.round(relayBytes / seconds),
      stunRate: Math.round((stun / seconds) * 10) / 10,
      refused,
    },
  };
}
