/**
 * Section 4: capacity. Our server's resident memory per registered idle client at 10,000
 * clients (VmRSS delta / clients), and the time to accept a burst of 10,000 registrations, with
 * refused or failed connections counted. The clients are the native generator (one process on
 * the load CPU, Ed25519 keys made before the burst, each signature made when its challenge
 * arrives), so the server and the load never share a process or its open-file cap.
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
import type { ProfileEntry } from "./profile.ts";
import { ChildProcess } from "./process.ts";
import { readRssKiB } from "./proc.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { summarize } from "./stats.ts";

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
  /** Server RSS before the burst, KiB. */
  rssBeforeKiB: number;
  /** Server RSS with every client registered and idle, KiB (lowest sample after settling). */
  rssAfterKiB: number;
  /** `(after - before) / registered`, KiB. */
  kibPerClient: number;
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
  profile?: { dir: string; entries: ProfileEntry[] | null },
): Promise<CapacityRun> {
  const server = startOurServer({
    repoRoot: context.repoRoot,
    stunPort: 0,
    tcpPort: 0,
    cpu: context.serverCpu,
    extraArgs: flags,
    profileDir: profile?.dir,
  });
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
    const rssBeforeKiB = await lowestRss(server.pid, 1000);
    await load.writeLine("go");
    const result = parseCapacityResult(
      await load.waitForLine((l) => l.includes('"result"'), 180_000),
    );
    const rssAfterKiB = await lowestRss(server.pid, context.quick ? 1500 : 3000);
    return {
      ...result,
      rssBeforeKiB,
      rssAfterKiB,
      kibPerClient: (rssAfterKiB - rssBeforeKiB) / Math.max(1, result.registered),
    };
  } finally {
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
    if (context.profile && runs.length > 0) {
      context.log("capacity: profiled run of our server");
      const profile = {
        dir: await Deno.makeTempDir({ dir: context.tmpDir, prefix: "prof-capacity-" }),
        entries: null as ProfileEntry[] | null,
      };
      try {
        await capacityRun(context, flags, CAPACITY_CLIENTS, profile);
      } catch (error) {
        context.log(`capacity: profiled run failed: ${(error as Error).message}`);
      }
      if (profile.entries !== null) {
        profiles.push({
          title: `burst of ${CAPACITY_CLIENTS} registrations`,
          entries: profile.entries,
        });
      }
    }
    return {
      rows: capacityRows(runs, failure),
      details: { clients: CAPACITY_CLIENTS, runs },
      profiles,
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
