/**
 * Summary statistics of repeated benchmark runs: the median with the min–max range.
 *
 * @module
 */

/** The summary of one figure over several runs. */
export interface RunSummary {
  /** Median of the runs (the mean of the two middle values for an even count). */
  median: number;
  /** Smallest run. */
  min: number;
  /** Largest run. */
  max: number;
  /** Every run, in the order measured. */
  runs: number[];
}

/**
 * Summarizes runs as median, min and max. Non-finite values are refused.
 *
 * @example
 * ```ts
 * const s = summarize([3, 1, 2]);
 * console.log(s.median, s.min, s.max); // 2 1 3
 * ```
 */
export function summarize(runs: readonly number[]): RunSummary {
  if (runs.length === 0) throw new RangeError("cannot summarize zero runs");
  for (const v of runs) {
    if (!Number.isFinite(v)) throw new RangeError(`run value is not finite: ${v}`);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: [...runs] };
}

/**
 * The ratio of two medians (`ours / reference`), or null when either is missing or the
 * reference is zero.
 *
 * @example
 * ```ts
 * console.log(ratioOf(summarize([2]), summarize([4]))); // 0.5
 * ```
 */
export function ratioOf(ours: RunSummary | null, reference: RunSummary | null): number | null {
  if (ours === null || reference === null || reference.median === 0) return null;
  return ours.median / reference.median;
}
