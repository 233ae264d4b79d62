/**
 * What every benchmark section receives: built helpers, run counts, durations and CPU pinning.
 *
 * @module
 */
import type { ProfileEntry } from "./profile.ts";
import type { BenchRow } from "./report.ts";

/** Settings and tools shared by the sections. */
export interface BenchContext {
  /** Absolute path of the repository root. */
  repoRoot: string;
  /** Paths of the native helpers, by name. */
  bins: Record<string, string>;
  /** A temporary directory the run may write to. */
  tmpDir: string;
  /** Runs per figure (at least 3 for published figures). */
  runs: number;
  /** Whether the short settings were asked for (`--quick`). */
  quick: boolean;
  /** CPU the server under test is pinned to, or undefined when not pinning. */
  serverCpu?: number;
  /** CPU the load generator is pinned to, or undefined when not pinning. */
  loadCpu?: number;
  /** Whether to record a CPU profile of our server per section (`--profile`). */
  profile: boolean;
  /** Progress messages (stderr). */
  log: (message: string) => void;
}

/** What a section returns. */
export interface SectionResult {
  /** Table rows. */
  rows: BenchRow[];
  /** Raw per-run details for the JSON report. */
  details: Record<string, unknown>;
  /** CPU profiles of our server taken in this section (with `--profile`). */
  profiles?: { title: string; entries: ProfileEntry[] }[];
  /** Further lines to print under the table (e.g. a memory breakdown). */
  text?: string[];
}

/** A benchmark section. */
export interface BenchSection {
  /** Its name, as used by `--only`. */
  name: string;
  /** Measures the section. Must not throw for a missing component: return rows with notes. */
  run(context: BenchContext): Promise<SectionResult>;
}
