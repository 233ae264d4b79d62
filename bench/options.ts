/**
 * Command-line options of `deno task bench`.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Every section name, in run order. */
export const SECTION_NAMES = [
  "stun",
  "turn",
  "relay",
  "direct",
  "capacity",
  "setup",
  "cluster",
  "attack",
  "bulk",
] as const;

/** A section name. */
export type SectionName = typeof SECTION_NAMES[number];

/** Parsed options. */
export interface BenchOptions {
  /** Short runs (about a third of the time). */
  quick: boolean;
  /** Sections to run. */
  only: SectionName[];
  /** Runs per figure. */
  runs: number;
  /** Whether to pin server and load generator to different CPUs. */
  pin: boolean;
  /** Directory for the JSON report. */
  outDir: string;
  /** Whether to record a CPU profile of our server in each section (one extra run). */
  profile: boolean;
  /** Whether help was asked for. */
  help: boolean;
}

/** Usage text. */
export const USAGE = `Usage: deno task bench [options]

  --quick            short runs (about 1 s each instead of 3 s)
  --only LIST        comma-separated sections: ${SECTION_NAMES.join(",")} (default: all)
  --runs N           runs per figure, medians with min–max (default 3, at least 1)
  --no-pin           do not pin server and load generator to different CPUs
  --profile          after the measured runs, one extra run per section with our server under
                     deno --cpu-prof; prints where its time goes (self time per function)
  --out DIR          where the JSON report goes (default bench/out)
  -h, --help         this text`;

/**
 * Parses the command line; throws a TypeError with a clear message for bad input.
 *
 * @example
 * ```ts
 * const options = parseBenchOptions(["--quick", "--only", "stun"]);
 * console.log(options.only); // ["stun"]
 * ```
 */
export function parseBenchOptions(args: string[]): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        runs: { type: "string", default: "3" },
        "no-pin": { type: "boolean", default: false },
        profile: { type: "boolean", default: false },
        out: { type: "string", default: "bench/out" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new TypeError((error as Error).message);
  }
  const v = parsed.values;
  const runs = Number(v.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
    throw new TypeError(`--runs must be an integer from 1 to 50, got ${v.runs}`);
  }
  let only: SectionName[] = [...SECTION_NAMES];
  if (v.only !== undefined) {
    const names = v.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
    for (const name of names) {
      if (!(SECTION_NAMES as readonly string[]).includes(name)) {
        throw new TypeError(`unknown section "${name}"; known: ${SECTION_NAMES.join(", ")}`);
      }
    }
    if (names.length === 0) throw new TypeError("--only needs at least one section");
    only = SECTION_NAMES.filter((s) => names.includes(s));
  }
  return {
    quick: v.quick,
    only,
    runs,
    pin: !v["no-pin"],
    outDir: v.out,
    profile: v.profile,
    help: v.help,
  };
}
