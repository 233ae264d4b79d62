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
  const failed = results.filter((result) => !result.ok);
  out.push("", `${results.length - failed.length}/${results.length} runs ok`);
  for (const result of failed) {
    out.push(`FAIL ${result.pair} at ${result.lossPercent}% loss:`);
    for (const problem of result.problems) out.push(`  - ${problem}`);
  }
  return out.join("\n");
}
