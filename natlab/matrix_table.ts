/**
 * The matrix as a text table.
 *
 * @module
 */

import type { PairResult } from "./matrix.ts";

const COLUMNS = [
  "pair",
  "loss",
  "expected",
  "path",
  "connect ms",
  "direct ms",
  "1st msg ms",
  "peer UDP in",
  "how (A/B)",
  "bday pkts",
  "delivered",
  "result",
] as const;

function cells(result: PairResult): string[] {
  const ms = (value: number | null) => value === null ? "-" : String(value);
  return [
    result.pair,
    `${result.lossPercent}%`,
    result.expected,
    result.path,
    ms(result.connectMs),
    ms(result.directMs),
    ms(result.firstMessageMs),
    `${ms(result.peerUdpAtA)}/${ms(result.peerUdpAtB)}`,
    result.path === "direct"
      ? `${result.howA ?? "-"}/${result.howB ?? "-"}`
      : result.whyA || result.whyB
      ? `relayed: ${result.whyA ?? "-"}/${result.whyB ?? "-"}`
      : "-",
    `${ms(result.birthdayPacketsA)}/${ms(result.birthdayPacketsB)}`,
    `${result.delivered}/${result.sent}`,
    result.ok ? "ok" : "FAIL",
  ];
}

/**
 * Formats results as an aligned table, followed by the problems of failed runs.
 *
 * @example
 * ```ts
 * console.log(formatMatrixTable([]));
 * ```
 */
export function formatMatrixTable(results: readonly PairResult[]): string {
  const rows = [COLUMNS.slice(), ...results.map(cells)];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd();
  const out = [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const row of rows.slice(1)) out.push(line(row));
  for (const result of results.filter((r) => r.cutDirect)) {
    const ms = (value: number | null) => value === null ? "never" : `${value} ms`;
    out.push(
      "",
      `${result.pair} at ${result.lossPercent}% loss: relay ${
        ms(result.fallbackMs)
      } after the cut, direct again ${ms(result.reupgradeMs)} after the restore`,
    );
  }
  out.push(...repeatedSummary(results));
  const failed = results.filter((result) => !result.ok);
  out.push("", `${results.length - failed.length}/${results.length} runs ok`);
  for (const result of failed) {
    out.push(`FAIL ${result.pair} at ${result.lossPercent}% loss:`);
    for (const problem of result.problems) out.push(`  - ${problem}`);
  }
  return out.join("\n");
}

/**
 * For pairs run more than once (`--runs N`): how many ended direct, the median time to direct,
 * and the median birthday probes per side.
 *
 * @example
 * ```ts
 * console.log(repeatedSummary([])); // []
 * ```
 */
export function repeatedSummary(results: readonly PairResult[]): string[] {
  const groups = new Map<string, PairResult[]>();
  for (const result of results) {
    const key = `${result.pair} at ${result.lossPercent}% loss`;
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  const median = (values: number[]) => {
    if (values.length === 0) return "-";
    const sorted = values.slice().sort((a, b) => a - b);
    return String(sorted[Math.floor(sorted.length / 2)]);
  };
  const out: string[] = [];
  for (const [key, runs] of groups) {
    if (runs.length < 2) continue;
    const direct = runs.filter((run) => run.path === "direct");
    const packets = runs.map((run) =>
      Math.max(run.birthdayPacketsA ?? 0, run.birthdayPacketsB ?? 0)
    );
    if (out.length === 0) out.push("");
    out.push(
      `${key}: ${direct.length}/${runs.length} direct (${
        Math.round((100 * direct.length) / runs.length)
      }%), median time to direct ${
        median(direct.map((run) => run.directMs ?? 0))
      } ms, median birthday probes (busier side) ${median(packets)}, most ${
        packets.length ? Math.max(...packets) : "-"
      }`,
    );
  }
  return out;
}
