/**
 * The shape of benchmark results: one row per figure and reference, as printed and as written
 * to the JSON report.
 *
 * @module
 */
import type { RunSummary } from "./stats.ts";

/** Whether a target was reached. */
export type Verdict = "met" | "short" | "n/a";

/** One measured figure compared with one reference. */
export interface BenchRow {
  /** The section the figure belongs to (`stun`, `relay`, `direct`, `capacity`, `setup`). */
  section: string;
  /** What is measured, e.g. `Binding req/s, 128 in flight`. */
  figure: string;
  /** Unit of the values, e.g. `req/s`, `µs`, `MB/s`. */
  unit: string;
  /** Our figure over the runs, or null when it could not be measured. */
  ours: RunSummary | null;
  /** Name of the reference, e.g. `coturn -m 1`; empty when the figure has none. */
  referenceName: string;
  /** The reference's figure, or null. */
  reference: RunSummary | null;
  /** `ours / reference` of the medians, or null. */
  ratio: number | null;
  /** The figure to reach, in words (e.g. `≤ 1.4× coturn`), or empty. */
  target: string;
  /** Whether {@linkcode BenchRow.target} was reached. */
  verdict: Verdict;
  /** Why a value is missing, or anything else worth saying about the row. */
  note: string;
}

/** Everything one `deno task bench` run wrote. */
export interface BenchReport {
  /** ISO time the run started. */
  startedAt: string;
  /** The machine: CPU model, core count, kernel, Deno version. */
  machine: Record<string, string | number>;
  /** How processes were pinned, in words. */
  pinning: string;
  /** Runs per figure and section durations. */
  settings: Record<string, string | number | boolean>;
  /** Every row, in print order. */
  rows: BenchRow[];
  /** Extra measured details per section (raw per-run data, profiles written, ...). */
  details: Record<string, unknown>;
}

/**
 * Makes a row with defaults for the optional parts.
 *
 * @example
 * ```ts
 * const row = makeRow({ section: "stun", figure: "req/s", unit: "req/s" });
 * console.log(row.verdict); // "n/a"
 * ```
 */
export function makeRow(
  fields: Pick<BenchRow, "section" | "figure" | "unit"> & Partial<BenchRow>,
): BenchRow {
  return {
    ours: null,
    referenceName: "",
    reference: null,
    ratio: null,
    target: "",
    verdict: "n/a",
    note: "",
    ...fields,
  };
}
