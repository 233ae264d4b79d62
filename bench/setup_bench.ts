/**
 * Section 5: connection setup. The time from `connect` to the first delivered message: on
 * loopback with two fresh real client programs per run (`connect` and `send` written at once,
 * timed until the peer prints the message), and on the NAT lab's direct-capable pairs through
 * `deno task natlab --json` (its `firstMessageMs`, from `connect` to B receiving A's first
 * message), where the lab can run.
 *
 * @module
 */
import { withClientPair } from "./client_program.ts";
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { startServerForClients } from "./direct_bench.ts";
import { ChildProcess } from "./process.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { summarize } from "./stats.ts";

/** NAT kinds of the lab that allow UDP. */
export const UDP_NAT_KINDS = [
  "none",
  "full-cone",
  "restricted-cone",
  "port-restricted",
  "symmetric",
] as const;

/**
 * The lab's pairs where hole punching can work in principle: every pair of UDP-capable kinds
 * except symmetric with symmetric and symmetric with port-restricted.
 *
 * @example
 * ```ts
 * console.log(directCapablePairs().length); // 13
 * ```
 */
export function directCapablePairs(): string[] {
  const pairs: string[] = [];
  UDP_NAT_KINDS.forEach((a, i) => {
    for (const b of UDP_NAT_KINDS.slice(i)) {
      const set = new Set([a, b]);
      if (set.has("symmetric") && (set.size === 1 || set.has("port-restricted"))) continue;
      pairs.push(`${a}+${b}`);
    }
  });
  return pairs;
}

/** One NAT-lab pair's outcome, as `deno task natlab --json` reports it. */
export interface NatlabPairResult {
  /** `a+b`. */
  pair: string;
  /** Path reached. */
  path: string;
  /** From `connect` to B receiving A's first message, ms. */
  firstMessageMs: number | null;
  /** From `connect` to the first direct path, ms. */
  directMs: number | null;
  /** Whether the run met its expectations. */
  ok: boolean;
}

/**
 * Picks the fields the bench uses out of natlab's JSON output.
 *
 * @example
 * ```ts
 * const r = parseNatlabJson('[{"pair":"none+none","path":"direct","firstMessageMs":40,"directMs":30,"ok":true}]');
 * console.log(r[0].firstMessageMs); // 40
 * ```
 */
export function parseNatlabJson(text: string): NatlabPairResult[] {
  const value = JSON.parse(text);
  if (!Array.isArray(value)) throw new SyntaxError("natlab --json did not print an array");
  return value.map((r) => ({
    pair: String(r?.pair),
    path: String(r?.path),
    firstMessageMs: typeof r?.firstMessageMs === "number" ? r.firstMessageMs : null,
    directMs: typeof r?.directMs === "number" ? r.directMs : null,
    ok: r?.ok === true,
  }));
}

async function loopbackSetupMs(context: BenchContext, port: number): Promise<number> {
  return await withClientPair(context, port, {}, async (a, b) => {
    const t0 = performance.now();
    await a.command(`connect ${b.id}\nsend ${b.id} first`);
    await b.waitFor((e) => e.type === "message" && e.text === "first", 30_000);
    return performance.now() - t0;
  });
}

async function runNatlab(context: BenchContext): Promise<NatlabPairResult[]> {
  const child = ChildProcess.start({
    command: "deno",
    args: [
      "run",
      "--no-prompt",
      "--allow-all",
      `${context.repoRoot}/natlab/main.ts`,
      "--json",
      "--loss",
      "0",
      "--no-remap",
      "--messages",
      "1",
      "--pairs",
      directCapablePairs().join(","),
    ],
    cwd: context.repoRoot,
    label: "natlab",
  });
  const lines: string[] = [];
  const deadline = Date.now() + 600_000;
  try {
    for (;;) lines.push(await child.nextLine(Math.max(1, deadline - Date.now())));
  } catch {
    // stdout closed (or the deadline passed): whatever came is parsed below
  }
  // SIGTERM lets natlab tear its namespaces down; give it time to.
  const status = Date.now() >= deadline
    ? await child.stop("SIGTERM", 60_000)
    : await child.exited(30_000);
  if (status.code === 2) throw new Error(child.stderrTail.trim().split("\n").pop() ?? "exit 2");
  try {
    return parseNatlabJson(lines.join("\n"));
  } catch {
    throw new Error(`natlab exited ${status.code}: ${child.stderrTail.trim().slice(-200)}`);
  }
}

/** The connection-setup section. */
export const setupSection: BenchSection = {
  name: "setup",
  async run(context: BenchContext): Promise<SectionResult> {
    const loopback: number[] = [];
    let loopbackNote = "";
    try {
      const started = await startServerForClients(context);
      try {
        for (let i = 0; i < context.runs; i++) {
          context.log(`setup: loopback run ${i + 1}/${context.runs}`);
          loopback.push(await loopbackSetupMs(context, started.port));
        }
      } finally {
        await started.server.stop();
      }
    } catch (error) {
      loopbackNote = `not available: ${(error as Error).message}`;
    }
    let natlab: NatlabPairResult[] = [];
    let natlabNote = "";
    try {
      await Deno.stat(`${context.repoRoot}/natlab/main.ts`);
      context.log(`setup: NAT lab, ${directCapablePairs().length} direct-capable pairs`);
      natlab = await runNatlab(context);
    } catch (error) {
      natlabNote = `not available: ${(error as Error).message}`;
    }
    return {
      rows: setupRows(loopback, loopbackNote, natlab, natlabNote),
      details: { loopbackMs: loopback, natlab },
    };
  },
};

/**
 * Turns setup measurements into table rows.
 *
 * @example
 * ```ts
 * console.log(setupRows([], "not available", [], "not available").length); // 3
 * ```
 */
export function setupRows(
  loopbackMs: number[],
  loopbackNote: string,
  natlab: NatlabPairResult[],
  natlabNote: string,
): BenchRow[] {
  const timed = natlab.filter((r) => r.firstMessageMs !== null);
  const direct = natlab.filter((r) => r.path === "direct");
  const failed = natlab.filter((r) => !r.ok).map((r) => r.pair);
  return [
    makeRow({
      section: "setup",
      figure: "loopback: connect → first delivered message",
      unit: "ms",
      ours: loopbackMs.length === 0 ? null : summarize(loopbackMs),
      note: loopbackNote,
    }),
    makeRow({
      section: "setup",
      figure: `NAT lab, direct-capable pairs: connect → first message (over ${timed.length} pairs)`,
      unit: "ms",
      ours: timed.length === 0 ? null : summarize(timed.map((r) => r.firstMessageMs!)),
      note: natlabNote !== ""
        ? natlabNote
        : failed.length > 0
        ? `pairs that missed the lab's expectations: ${failed.join(", ")}`
        : "",
    }),
    makeRow({
      section: "setup",
      figure: "NAT lab, direct-capable pairs: connect → direct path",
      unit: "ms",
      ours: direct.filter((r) => r.directMs !== null).length === 0
        ? null
        : summarize(direct.filter((r) => r.directMs !== null).map((r) => r.directMs!)),
      note: natlab.length === 0 ? "" : `${direct.length} of ${natlab.length} pairs went direct`,
    }),
  ];
}
