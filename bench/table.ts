/**
 * Plain-text table of benchmark rows: figure, ours, reference, ratio, target.
 *
 * @module
 */
import type { BenchRow } from "./report.ts";
import type { RunSummary } from "./stats.ts";

/**
 * Formats a number for the table: thousands separators above 1000, fewer decimals as it grows.
 *
 * @example
 * ```ts
 * console.log(formatNumber(148123.4)); // "148,123"
 * console.log(formatNumber(6.612)); // "6.61"
 * console.log(formatNumber(0)); // "0"
 * ```
 */
export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  if (Number.isInteger(value) || abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * Formats a summary as `median (min–max)`, or `median` when all runs agree; `—` for null.
 *
 * @example
 * ```ts
 * console.log(formatSummary({ median: 2, min: 1, max: 3, runs: [1, 2, 3] })); // "2.00 (1.00–3.00)"
 * ```
 */
export function formatSummary(summary: RunSummary | null): string {
  if (summary === null) return "—";
  const median = formatNumber(summary.median);
  if (summary.min === summary.max) return median;
  return `${median} (${formatNumber(summary.min)}–${formatNumber(summary.max)})`;
}

/**
 * Lays out rows as an aligned text table with a header. Notes follow a row on their own line.
 *
 * @example
 * ```ts
 * import { makeRow } from "./report.ts";
 * console.log(formatTable([makeRow({ section: "stun", figure: "req/s", unit: "req/s" })]));
 * ```
 */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["section", "figure", "ours", "reference", "ratio", "target"];
  const cells = rows.map((row) => [
    row.section,
    `${row.figure} [${row.unit}]`,
    formatSummary(row.ours),
    row.referenceName === "" ? "" : `${row.referenceName}: ${formatSummary(row.reference)}`,
    row.ratio === null ? "" : `${row.ratio.toFixed(2)}×`,
    row.target === "" ? "" : `${row.target} ${verdictMark(row.verdict)}`.trimEnd(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (values: string[]) =>
    values.map((v, i) => v.padEnd(widths[i])).join(" | ").trimEnd();
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("-+-")];
  rows.forEach((row, i) => {
    out.push(line(cells[i]));
    if (row.note !== "") out.push(`${"".padEnd(widths[0])} |   ↳ ${oneLine(row.note)}`);
  });
  return out.join("\n");
}

/**
 * Makes a note printable on one line: strips terminal colour codes, folds whitespace, and cuts
 * it at 240 characters.
 *
 * @example
 * ```ts
 * console.log(oneLine("error:\n  \u001b[31mboom\u001b[0m")); // "error: boom"
 * ```
 */
export function oneLine(note: string): string {
  // deno-lint-ignore no-control-regex
  const plain = note.replace(/\u001b\[[0-9;]*m/g, "").replace(/\s+/g, " ").trim();
  return plain.length > 240 ? `${plain.slice(0, 237)}...` : plain;
}

function verdictMark(verdict: BenchRow["verdict"]): string {
  if (verdict === "met") return "(met)";
  if (verdict === "short") return "(SHORT)";
  return "";
}
