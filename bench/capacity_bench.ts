/**
 * Section 4: capacity. Our server's resident memory per registered idle client at 10,000
 * clients (VmRSS delta / clients), and the time to accept a burst of 10,000 registrations, with
 * refused or failed connections counted. The clients are the native generator (one process on
 * the load CPU, Ed25519 keys made before the burst, each signature made when its challenge
 * arrives), so the server and the load never share a process or its open-file cap. The server
 * runs with `--inspect` on loopback so the bench can force a full GC through the inspector: the
 * baseline is taken after one, and the live memory per client after another.
 *
 * @module
 */
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import {
  serverHelp,
  startOurServer,
  stopAndSummarize,
  supportedFlags,
  waitForListening,
} from "./our_server.ts";
import { InspectorSession } from "./inspector.ts";
import { freePort } from "./ports.ts";
import type { ProfileEntry } from "./profile.ts";
import { ChildProcess } from "./process.ts";
import { readRssKiB } from "./proc.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { summarize } from "./stats.ts";

/** What a profiled capacity run records. */
interface CapacityProfile {
  /** Where the CPU profile goes. */
  dir: string;
  /** The CPU profile's summary. */
  entries: ProfileEntry[] | null;
  /** Lines describing where the memory goes. */
  memory: string[];
}

/** Clients registered at once. */
export const CAPACITY_CLIENTS = 10_000;

/** One capacity run. */
export interface CapacityRun {
  /** Connections opened. */
  count: number;
  /** Registrations completed. */
  registered: number;
  /** Connections refused, reset, closed or answered with an error. */
  failed: number;
  /** Neither registered nor failed when the generator gave up (120 s). */
  pending: number;
  /** Registered, then closed by the server before the measurement ended. */
  dropped: number;
  /** From the first connect to the last `registered`. */
  seconds: number;
  /** The first failure's reason, if any. */
  firstError: string;
  /** Server RSS before the burst (after a forced full GC), KiB. */
  rssBeforeKiB: number;
  /** Server RSS with every client registered and idle, KiB (lowest sample after settling). */
  rssAfterKiB: number;
  /** `(after - before) / registered`, KiB. */
  kibPerClient: number;
  /** Server RSS after a forced full GC (through the inspector), KiB. */
  rssAfterGcKiB: number;
  /** `(rssAfterGc - before) / registered`, KiB: live memory per client. */
  kibPerClientAfterGc: number;
  /** JS heap used per client after a full GC, KiB. */
  heapKibPerClient: number;
}

/**
 * Parses the generator's capacity result line.
 *
 * @example
 * ```ts
 * const r = parseCapacityResult(
 *   '{"event":"result","count":2,"registered":2,"failed":0,"pending":0,"dropped":0,"seconds":0.1,"firstError":""}',
 * );
 * console.log(r.registered); // 2
 * ```
 */
export function parseCapacityResult(
  line: string,
): Pick<
  CapacityRun,
  "count" | "registered" | "failed" | "pending" | "dropped" | "seconds" | "firstError"
> {
  const value = JSON.parse(line);
  if (value?.event !== "result") throw new SyntaxError("not a result line");
  for (const key of ["count", "registered", "failed", "pending", "dropped", "seconds"]) {
    if (typeof value[key] !== "number") throw new SyntaxError(`result lacks ${key}`);
  }
  return {
    count: value.count,
    registered: value.registered,
    failed: value.failed,
    pending: value.pending,
    dropped: value.dropped,
    seconds: value.seconds,
    firstError: String(value.firstError ?? ""),
  };
}

async function lowestRss(pid: number, durationMs: number): Promise<number> {
  let lowest = Infinity;
  const end = Date.now() + durationMs;
  for (let i = 0; i < 100 && Date.now() < end; i++) {
    lowest = Math.min(lowest, await readRssKiB(pid));
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return lowest;
}

async function capacityRun(
  context: BenchContext,
  flags: string[],
  clients: number,
  profile?: CapacityProfile,
): Promise<CapacityRun> {
  const inspectPort = freePort();
  const server = startOurServer({
    repoRoot: context.repoRoot,
    stunPort: 0,
    tcpPort: 0,
    cpu: context.serverCpu,
    extraArgs: flags,
    profileDir: profile?.dir,
    denoArgs: [`--inspect=127.0.0.1:${inspectPort}`],
  });
  let inspector: InspectorSession | null = null;
  let load: ChildProcess | null = null;
  try {
    const port = await waitForListening(server, 20_000);
    load = ChildProcess.start({
      command: context.bins.sig_load,
      args: ["ours", "127.0.0.1", String(port), "capacity", String(clients)],
      cpu: context.loadCpu,
      stdin: true,
      label: "sig_load capacity",
    });
    await load.waitForLine((l) => l.includes('"ready"'), 60_000);
    // Baseline: a full GC first, so the baseline is the server's live memory at rest.
    inspector = await InspectorSession.connect(inspectPort, 20_000);
    const heapBefore = await inspector.collectAndMeasure();
    const rssBeforeKiB = await lowestRss(server.pid, 1000);
    await load.writeLine("go");
    const result = parseCapacityResult(
      await load.waitForLine((l) => l.includes('"result"'), 180_000),
    );
    const rssAfterKiB = await lowestRss(server.pid, context.quick ? 1500 : 3000);
    // Then the live memory: RSS and JS heap after a forced full GC.
    const heapAfter = await inspector.collectAndMeasure();
    const rssAfterGcKiB = await lowestRss(server.pid, 1000);
    if (profile !== undefined) {
      const groups = await inspector.heapByConstructor(12);
      const n = Math.max(1, result.registered);
      profile.memory = [
        `Memory of our server per idle registered client (${n} clients; profiled run):`,
        `  RSS delta ${((rssAfterKiB - rssBeforeKiB) / n).toFixed(2)} KiB; after a forced full GC ${
          ((rssAfterGcKiB - rssBeforeKiB) / n).toFixed(2)
        } KiB, of which JS heap (used) ${((heapAfter - heapBefore) / 1024 / n).toFixed(2)} KiB;`,
        "  the rest is native (Deno/tokio resources, buffers, allocator).",
        "  Largest JS heap groups after GC (self size per client):",
        ...groups.map((g) =>
          `    ${(g.bytes / 1024 / n).toFixed(3).padStart(8)} KiB  ${
            (g.count / n).toFixed(1).padStart(6)
          } objects  ${g.name === "" ? "(no constructor name)" : g.name}`
        ),
      ];
    }
    return {
      ...result,
      rssBeforeKiB,
      rssAfterKiB,
      kibPerClient: (rssAfterKiB - rssBeforeKiB) / Math.max(1, result.registered),
      rssAfterGcKiB,
      kibPerClientAfterGc: (rssAfterGcKiB - rssBeforeKiB) / Math.max(1, result.registered),
      heapKibPerClient: (heapAfter - heapBefore) / 1024 / Math.max(1, result.registered),
    };
  } finally {
    await inspector?.close();
    if (load !== null) await load.stop("SIGTERM", 5000);
    if (profile !== undefined) {
      profile.entries = await stopAndSummarize(server, profile.dir, context.repoRoot);
    } else await server.stop("SIGTERM", 10_000);
  }
}

/** The capacity section. */
export const capacitySection: BenchSection = {
  name: "capacity",
  async run(context: BenchContext): Promise<SectionResult> {
    let flags: string[];
    try {
      flags = supportedFlags(await serverHelp(context.repoRoot), [
        ["--host", "127.0.0.1"],
        ["--log-level", "error"],
        ["--max-clients", String(CAPACITY_CLIENTS * 2)],
        ["--max-conns-per-ip", String(CAPACITY_CLIENTS * 2)],
        // The load generator registers 10,000 at once and solves no puzzle (issue 11's defences
        // would refuse most of them, which is their job, not what this section measures).
        ["--max-pending", String(CAPACITY_CLIENTS * 2)],
        ["--puzzle-bits", "0"],
      ]);
    } catch (error) {
      return { rows: capacityRows([], `not available: ${(error as Error).message}`), details: {} };
    }
    const runs: CapacityRun[] = [];
    let failure = "";
    for (let i = 0; i < context.runs; i++) {
      context.log(`capacity: run ${i + 1}/${context.runs}, ${CAPACITY_CLIENTS} clients`);
      try {
        runs.push(await capacityRun(context, flags, CAPACITY_CLIENTS));
      } catch (error) {
        failure = (error as Error).message;
        break;
      }
    }
    const profiles = [];
    const memoryLines: string[] = [];
    if (context.profile && runs.length > 0) {
      context.log("capacity: profiled run of our server");
      const profile: CapacityProfile = {
        dir: await Deno.makeTempDir({ dir: context.tmpDir, prefix: "prof-capacity-" }),
        entries: null,
        memory: [],
      };
      try {
        await capacityRun(context, flags, CAPACITY_CLIENTS, profile);
      } catch (error) {
        context.log(`capacity: profiled run failed: ${(error as Error).message}`);
      }
      memoryLines.push(...profile.memory);
      if (profile.entries !== null) {
        profiles.push({
          title: `burst of ${CAPACITY_CLIENTS} registrations`,
          entries: profile.entries,
        });
      }
    }
    return {
      rows: capacityRows(runs, failure),
      details: { clients: CAPACITY_CLIENTS, runs, memoryProfile: memoryLines },
      profiles,
      text: memoryLines,
    };
  },
};

/**
 * Turns capacity runs into table rows.
 *
 * @example
 * ```ts
 * console.log(capacityRows([], "not available").length);
 * ```
 */
export function capacityRows(runs: CapacityRun[], failure: string): BenchRow[] {
  const pick = (f: (r: CapacityRun) => number) => runs.length === 0 ? null : summarize(runs.map(f));
  const perClient = pick((r) => r.kibPerClient);
  const refused = pick((r) => r.failed + r.pending + r.dropped);
  const firstError = runs.find((r) => r.firstError !== "")?.firstError ?? "";
  return [
    makeRow({
      section: "capacity",
      figure: `server RSS per idle registered client, ${CAPACITY_CLIENTS} clients`,
      unit: "KiB",
      ours: perClient,
      target: "≤ 8 KiB",
      verdict: perClient === null ? "n/a" : perClient.median <= 8 ? "met" : "short",
      note: failure,
    }),
    makeRow({
      section: "capacity",
      figure: "… the same after a forced full GC (live memory)",
      unit: "KiB",
      ours: pick((r) => r.kibPerClientAfterGc),
      note: runs.length === 0
        ? ""
        : `of which JS heap ${
          summarize(runs.map((r) => r.heapKibPerClient)).median.toFixed(2)
        } KiB; the row above is RSS as it is 1.5–3 s after the burst, garbage included`,
    }),
    makeRow({
      section: "capacity",
      figure: `time to register a burst of ${CAPACITY_CLIENTS}`,
      unit: "s",
      ours: pick((r) => r.seconds),
    }),
    makeRow({
      section: "capacity",
      figure: "refused / failed / unfinished / dropped registrations",
      unit: "count",
      ours: refused,
      target: "0",
      verdict: refused === null ? "n/a" : refused.max === 0 ? "met" : "short",
      note: firstError === "" ? "" : `first failure: ${firstError}`,
    }),
  ];
}
