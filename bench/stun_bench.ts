/**
 * Section 1: the STUN Binding service. Our server, coturn (`turnserver --stun-only -m 1`) and a
 * native recvmmsg/sendmmsg responder, each driven by the same native generator keeping 128
 * requests in flight, with every response checked. The server's own CPU time per answered
 * request comes from `/proc/<pid>/stat`.
 *
 * @module
 */
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { freePort } from "./ports.ts";
import { ChildProcess } from "./process.ts";
import { readCpuSeconds } from "./proc.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { ratioOf, summarize } from "./stats.ts";
import { waitForStun } from "./stun_probe.ts";
import { serverHelp, startOurServer, stopAndSummarize, supportedFlags } from "./our_server.ts";

/** Requests the generator keeps in flight. */
export const STUN_IN_FLIGHT = 128;

/** What the native generator prints at the end of a run. */
export interface StunLoadResult {
  /** Requests sent in the measured window. */
  sent: number;
  /** Valid responses. */
  answered: number;
  /** Requests without a response within 1 s. */
  lost: number;
  /** Responses that failed a check. */
  invalid: number;
  /** Valid responses that came after their request was counted lost. */
  late?: number;
  /** Length of the measured window. */
  seconds: number;
  /** Answered per second. */
  rate: number;
  /** Median latency in µs. */
  p50Us: number;
  /** 99th percentile latency in µs. */
  p99Us: number;
  /** Largest latency in µs. */
  maxUs: number;
}

/** One run against one server. */
export interface StunRun extends StunLoadResult {
  /** Server CPU (user + system) per answered request, µs. */
  cpuUsPerRequest: number;
}

/**
 * Parses and validates the generator's result line.
 *
 * @example
 * ```ts
 * const r = parseStunLoadResult(
 *   '{"sent":10,"answered":10,"lost":0,"invalid":0,"seconds":1,"rate":10,"p50Us":5,"p99Us":9,"maxUs":9}',
 * );
 * console.log(r.rate); // 10
 * ```
 */
export function parseStunLoadResult(line: string): StunLoadResult {
  const value = JSON.parse(line);
  const keys = [
    "sent",
    "answered",
    "lost",
    "invalid",
    "seconds",
    "rate",
    "p50Us",
    "p99Us",
    "maxUs",
  ];
  for (const key of keys) {
    if (typeof value?.[key] !== "number") throw new SyntaxError(`generator result lacks ${key}`);
  }
  return value as StunLoadResult;
}

interface StunTarget {
  name: string;
  /** Starts the server on a free loopback port and returns it with that port. */
  start(profileDir?: string): Promise<{ server: ChildProcess; port: number }>;
}

/** Starts a helper that prints `ready PORT` once bound to port 0. */
async function startReadyHelper(
  command: string,
  args: string[],
  cpu: number | undefined,
  label: string,
): Promise<{ server: ChildProcess; port: number }> {
  const server = ChildProcess.start({ command, args, cpu, label });
  try {
    const line = await server.waitForLine((l) => l.startsWith("ready "), 20_000);
    return { server, port: Number(line.split(" ")[1]) };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function measure(
  context: BenchContext,
  server: ChildProcess,
  port: number,
  warmupMs: number,
  durationMs: number,
): Promise<StunRun> {
  const load = ChildProcess.start({
    command: context.bins.stun_load,
    args: ["127.0.0.1", String(port), String(STUN_IN_FLIGHT), String(warmupMs), String(durationMs)],
    cpu: context.loadCpu,
    label: "stun_load",
  });
  try {
    await load.waitForLine((l) => l === "start", warmupMs + 10_000);
    const cpuBefore = await readCpuSeconds(server.pid);
    const line = await load.waitForLine((l) => l.startsWith("{"), durationMs + 10_000);
    const cpuAfter = await readCpuSeconds(server.pid);
    const result = parseStunLoadResult(line);
    const cpuUsPerRequest = result.answered > 0
      ? (cpuAfter - cpuBefore) * 1e6 / result.answered
      : Number.NaN;
    return { ...result, cpuUsPerRequest };
  } finally {
    await load.exited(5000);
  }
}

/** The STUN section. */
export const stunSection: BenchSection = {
  name: "stun",
  async run(context: BenchContext): Promise<SectionResult> {
    const warmupMs = context.quick ? 300 : 1000;
    const durationMs = context.quick ? 1000 : 3000;
    const targets: StunTarget[] = [];
    let oursMissing = "";
    try {
      const help = await serverHelp(context.repoRoot);
      const extra = supportedFlags(help, [["--host", "127.0.0.1"], ["--log-level", "error"]]);
      targets.push({
        name: "ours",
        start: async (profileDir) => {
          const server = startOurServer({
            repoRoot: context.repoRoot,
            stunPort: 0,
            tcpPort: 0,
            cpu: context.serverCpu,
            extraArgs: extra,
            profileDir,
          });
          try {
            const line = await server.waitForLine((l) => l.includes('"listening"'), 20_000);
            const port = JSON.parse(line)?.stun?.[0]?.port;
            if (typeof port !== "number") throw new Error(`no STUN port in ${line}`);
            return { server, port };
          } catch (error) {
            await server.stop();
            throw error;
          }
        },
      });
    } catch (error) {
      oursMissing = `not available: ${(error as Error).message}`;
    }
    if (oursMissing === "") {
      targets.push({
        name: "batched",
        start: async () => {
          const help = await serverHelp(context.repoRoot);
          if (!help.includes("--batched-udp")) throw new Error("no --batched-udp flag");
          const server = startOurServer({
            repoRoot: context.repoRoot,
            stunPort: 0,
            tcpPort: 0,
            cpu: context.serverCpu,
            extraArgs: ["--host", "127.0.0.1", "--log-level", "error", "--batched-udp"],
            denoArgs: ["--allow-ffi"],
          });
          try {
            const line = await server.waitForLine((l) => l.includes('"listening"'), 20_000);
            const port = JSON.parse(line)?.stun?.[0]?.port;
            if (typeof port !== "number") throw new Error(`no STUN port in ${line}`);
            return { server, port };
          } catch (error) {
            await server.stop();
            throw error;
          }
        },
      });
    }
    targets.push({
      name: "coturn",
      start: () => {
        // coturn cannot bind port 0 and report it: take a free port.
        const port = freePort();
        const server = ChildProcess.start({
          command: "turnserver",
          args: [
            "-n",
            "--stun-only",
            "-m",
            "1",
            "-L",
            "127.0.0.1",
            "-p",
            String(port),
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-stdout-log",
            "--log-file",
            "/dev/null",
            "--simple-log",
            "--pidfile",
            `${context.tmpDir}/turnserver-${port}.pid`,
          ],
          cpu: context.serverCpu,
          label: "coturn",
        });
        return Promise.resolve({ server, port });
      },
    });
    targets.push({
      name: "deno",
      start: () =>
        startReadyHelper(
          "deno",
          [
            "run",
            "--no-prompt",
            "--allow-net",
            new URL("./deno_stun_responder.ts", import.meta.url).pathname,
            "0",
          ],
          context.serverCpu,
          "deno_stun_responder",
        ),
    });
    targets.push({
      name: "native",
      start: () =>
        startReadyHelper(
          context.bins.stun_responder,
          ["127.0.0.1", "0"],
          context.serverCpu,
          "stun_responder",
        ),
    });

    const running: { target: StunTarget; server: ChildProcess; port: number }[] = [];
    const runs: Record<string, StunRun[]> = {};
    const failures: Record<string, string> = {};
    try {
      for (const target of targets) {
        let started;
        try {
          started = await target.start();
        } catch (error) {
          failures[target.name] = (error as Error).message;
          continue;
        }
        const { server, port } = started;
        if (await waitForStun(port, 20_000)) {
          running.push({ target, server, port });
          runs[target.name] = [];
        } else {
          failures[target.name] = `did not answer STUN within 20 s: ${server.stderrTail.trim()}`;
          await server.stop();
        }
      }
      // Interleave the targets run by run so machine noise spreads over all of them.
      for (let i = 0; i < context.runs; i++) {
        for (const { target, server, port } of running) {
          context.log(`stun: run ${i + 1}/${context.runs} ${target.name}`);
          try {
            runs[target.name].push(await measure(context, server, port, warmupMs, durationMs));
          } catch (error) {
            failures[target.name] = (error as Error).message;
          }
        }
      }
    } finally {
      for (const { server } of running) await server.stop();
    }
    if (oursMissing !== "") failures.ours = oursMissing;
    const profiles = [];
    const ours = targets.find((t) => t.name === "ours");
    if (context.profile && ours !== undefined && failures.ours === undefined) {
      context.log("stun: profiled run of our server");
      const dir = await Deno.makeTempDir({ dir: context.tmpDir, prefix: "prof-stun-" });
      try {
        const { server, port } = await ours.start(dir);
        try {
          if (await waitForStun(port, 20_000)) {
            await measure(context, server, port, warmupMs, durationMs);
          }
        } finally {
          const entries = await stopAndSummarize(server, dir, context.repoRoot);
          if (entries !== null) profiles.push({ title: "STUN Binding load", entries });
        }
      } catch (error) {
        context.log(`stun: profiled run failed: ${(error as Error).message}`);
      }
    }
    return {
      rows: stunRows(runs, failures),
      details: { warmupMs, durationMs, runs, failures },
      profiles,
    };
  },
};

function pick(runs: StunRun[] | undefined, f: (r: StunRun) => number) {
  return runs === undefined || runs.length === 0 ? null : summarize(runs.map(f));
}

/**
 * Turns per-target runs into table rows with targets and verdicts.
 *
 * @example
 * ```ts
 * const rows = stunRows({}, { ours: "not available" });
 * console.log(rows.length > 0);
 * ```
 */
export function stunRows(
  runs: Record<string, StunRun[]>,
  failures: Record<string, string>,
): BenchRow[] {
  const ours = runs.ours;
  const note = failures.ours ?? "";
  const rows: BenchRow[] = [];
  const rate = (r: StunRun) => r.rate;
  const cpu = (r: StunRun) => r.cpuUsPerRequest;
  const references = [
    ["coturn", "coturn -m 1"],
    ["deno", "plain Deno responder"],
    ["native", "C recvmmsg"],
  ] as const;
  for (const [ref, label] of references) {
    const refNote = failures[ref] ? `${label}: ${failures[ref]}` : "";
    const rateRatio = ratioOf(pick(ours, rate), pick(runs[ref], rate));
    const cpuRatio = ratioOf(pick(ours, cpu), pick(runs[ref], cpu));
    rows.push(makeRow({
      section: "stun",
      figure: "Binding answered/s, 128 in flight",
      unit: "req/s",
      ours: pick(ours, rate),
      referenceName: label,
      reference: pick(runs[ref], rate),
      ratio: rateRatio,
      note: [note, refNote].filter((s) => s !== "").join("; "),
    }));
    rows.push(makeRow({
      section: "stun",
      figure: "server CPU per answered request",
      unit: "µs",
      ours: pick(ours, cpu),
      referenceName: label,
      reference: pick(runs[ref], cpu),
      ratio: cpuRatio,
      target: ref === "coturn" ? "≤ 1.4× coturn" : "",
      verdict: ref !== "coturn" || cpuRatio === null ? "n/a" : cpuRatio <= 1.4 ? "met" : "short",
    }));
  }
  const batched = runs.batched;
  if (batched !== undefined || failures.batched !== undefined) {
    const batchedNote = failures.batched ? `batched: ${failures.batched}` : "";
    rows.push(makeRow({
      section: "stun",
      figure: "Binding answered/s, ours with --batched-udp (FFI recvmmsg/sendmmsg)",
      unit: "req/s",
      ours: pick(batched, rate),
      referenceName: "coturn -m 1",
      reference: pick(runs.coturn, rate),
      ratio: ratioOf(pick(batched, rate), pick(runs.coturn, rate)),
      note: batchedNote,
    }));
    const batchedCpu = ratioOf(pick(batched, cpu), pick(runs.coturn, cpu));
    rows.push(makeRow({
      section: "stun",
      figure: "server CPU per answered request, ours with --batched-udp",
      unit: "µs",
      ours: pick(batched, cpu),
      referenceName: "coturn -m 1",
      reference: pick(runs.coturn, cpu),
      ratio: batchedCpu,
      target: "≤ coturn",
      verdict: batchedCpu === null ? "n/a" : batchedCpu <= 1 ? "met" : "short",
    }));
  }
  const p99 = pick(ours, (r) => r.p99Us);
  rows.push(makeRow({
    section: "stun",
    figure: "latency p50",
    unit: "µs",
    ours: pick(ours, (r) => r.p50Us),
    referenceName: "coturn -m 1",
    reference: pick(runs.coturn, (r) => r.p50Us),
    ratio: ratioOf(pick(ours, (r) => r.p50Us), pick(runs.coturn, (r) => r.p50Us)),
  }));
  rows.push(makeRow({
    section: "stun",
    figure: "latency p99",
    unit: "µs",
    ours: p99,
    referenceName: "coturn -m 1",
    reference: pick(runs.coturn, (r) => r.p99Us),
    ratio: ratioOf(p99, pick(runs.coturn, (r) => r.p99Us)),
    target: "< 2000 µs",
    verdict: p99 === null ? "n/a" : p99.median < 2000 ? "met" : "short",
  }));
  const bad = pick(ours, (r) => r.lost + r.invalid);
  rows.push(makeRow({
    section: "stun",
    figure: "lost + invalid responses per run",
    unit: "count",
    ours: bad,
    referenceName: "coturn -m 1",
    reference: pick(runs.coturn, (r) => r.lost + r.invalid),
    target: "0",
    verdict: bad === null ? "n/a" : bad.max === 0 ? "met" : "short",
  }));
  return rows;
}
