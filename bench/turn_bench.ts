/**
 * Section `turn`: TURN ChannelData forwarding (RFC 8656 section 12). Our server and coturn
 * (`turnserver -m 1`, one relay thread) each relay for the same native generator
 * (`native/turn_load.c`): it allocates with long-term credentials, binds a channel to its own
 * peer socket, and keeps 128 ChannelData messages of 100 bytes in flight client → server → peer
 * → server → client. Each round trip is two forwarded packets; the server's CPU time
 * (`/proc/<pid>/stat`) per forwarded packet is the cost figure.
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
import { parseStunLoadResult, type StunLoadResult } from "./stun_bench.ts";
import { waitForStun } from "./stun_probe.ts";
import { startOurServer } from "./our_server.ts";

/** ChannelData messages the generator keeps in flight. */
export const TURN_IN_FLIGHT = 128;

const USER = "bench";
const PASSWORD = "bench-password";

/** One run against one server. */
export interface TurnRun extends StunLoadResult {
  /** Server CPU (user + system) per forwarded packet, µs. */
  cpuUsPerPacket: number;
}

interface TurnTarget {
  name: string;
  start(): Promise<{ server: ChildProcess; port: number }>;
}

async function measure(
  context: BenchContext,
  server: ChildProcess,
  port: number,
  warmupMs: number,
  durationMs: number,
): Promise<TurnRun> {
  const load = ChildProcess.start({
    command: context.bins.turn_load,
    args: [
      "127.0.0.1",
      String(port),
      USER,
      PASSWORD,
      String(TURN_IN_FLIGHT),
      String(warmupMs),
      String(durationMs),
    ],
    cpu: context.loadCpu,
    label: "turn_load",
  });
  try {
    await load.waitForLine((l) => l === "start", warmupMs + 10_000);
    const cpuBefore = await readCpuSeconds(server.pid);
    const line = await load.waitForLine((l) => l.startsWith("{"), durationMs + 10_000);
    const cpuAfter = await readCpuSeconds(server.pid);
    const result = parseStunLoadResult(line);
    const cpuUsPerPacket = result.answered > 0
      ? (cpuAfter - cpuBefore) * 1e6 / (2 * result.answered)
      : Number.NaN;
    return { ...result, cpuUsPerPacket };
  } finally {
    await load.exited(5000);
  }
}

/** The TURN section. */
export const turnSection: BenchSection = {
  name: "turn",
  async run(context: BenchContext): Promise<SectionResult> {
    const warmupMs = context.quick ? 300 : 1000;
    const durationMs = context.quick ? 1000 : 3000;
    const targets: TurnTarget[] = [
      {
        name: "ours",
        start: async () => {
          const server = startOurServer({
            repoRoot: context.repoRoot,
            stunPort: 0,
            tcpPort: 0,
            cpu: context.serverCpu,
            extraArgs: [
              "--host",
              "127.0.0.1",
              "--log-level",
              "error",
              "--turn-user",
              `${USER}:${PASSWORD}`,
              "--turn-realm",
              "bench",
              "--allow-loopback-peers",
            ],
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
      },
      {
        name: "batched",
        start: async () => {
          const server = startOurServer({
            repoRoot: context.repoRoot,
            stunPort: 0,
            tcpPort: 0,
            cpu: context.serverCpu,
            extraArgs: [
              "--host",
              "127.0.0.1",
              "--log-level",
              "error",
              "--turn-user",
              `${USER}:${PASSWORD}`,
              "--turn-realm",
              "bench",
              "--allow-loopback-peers",
              "--batched-udp",
            ],
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
      },
      {
        name: "coturn",
        start: () => {
          const port = freePort();
          const server = ChildProcess.start({
            command: "turnserver",
            args: [
              "-n",
              "-m",
              "1",
              "-L",
              "127.0.0.1",
              "-p",
              String(port),
              "--lt-cred-mech",
              "--user",
              `${USER}:${PASSWORD}`,
              "--realm",
              "bench",
              "--allow-loopback-peers",
              "--no-cli",
              "--no-tls",
              "--no-dtls",
              "--no-stdout-log",
              "--log-file",
              "/dev/null",
              "--simple-log",
              "--pidfile",
              `${context.tmpDir}/turnserver-turn-${port}.pid`,
            ],
            cpu: context.serverCpu,
            label: "coturn",
          });
          return Promise.resolve({ server, port });
        },
      },
    ];
    const running: { target: TurnTarget; server: ChildProcess; port: number }[] = [];
    const runs: Record<string, TurnRun[]> = {};
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
        if (await waitForStun(started.port, 20_000)) {
          running.push({ target, ...started });
          runs[target.name] = [];
        } else {
          failures[target.name] =
            `did not answer STUN within 20 s: ${started.server.stderrTail.trim()}`;
          await started.server.stop();
        }
      }
      for (let i = 0; i < context.runs; i++) {
        for (const { target, server, port } of running) {
          context.log(`turn: run ${i + 1}/${context.runs} ${target.name}`);
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
    return { rows: turnRows(runs, failures), details: { warmupMs, durationMs, runs, failures } };
  },
};

function pick(runs: TurnRun[] | undefined, f: (r: TurnRun) => number) {
  return runs === undefined || runs.length === 0 ? null : summarize(runs.map(f));
}

/**
 * Table rows from per-target runs.
 *
 * @example
 * ```ts
 * console.log(turnRows({}, { ours: "not available" }).length > 0); // true
 * ```
 */
export function turnRows(
  runs: Record<string, TurnRun[]>,
  failures: Record<string, string>,
): BenchRow[] {
  const ours = runs.ours, coturn = runs.coturn;
  const note = [failures.ours, failures.coturn ? `coturn: ${failures.coturn}` : undefined]
    .filter((s) => s !== undefined).join("; ");
  const label = "coturn -m 1";
  const rate = (r: TurnRun) => r.rate;
  const cpu = (r: TurnRun) => r.cpuUsPerPacket;
  const cpuRatio = ratioOf(pick(ours, cpu), pick(coturn, cpu));
  const bad = pick(ours, (r) => r.lost + r.invalid);
  const batched = runs.batched;
  const batchedCpu = ratioOf(pick(batched, cpu), pick(coturn, cpu));
  const batchedRows = [
    makeRow({
      section: "turn",
      figure: "ChannelData round trips/s, ours with --batched-udp (FFI recvmmsg/sendmmsg)",
      unit: "rt/s",
      ours: pick(batched, rate),
      referenceName: label,
      reference: pick(coturn, rate),
      ratio: ratioOf(pick(batched, rate), pick(coturn, rate)),
      note: failures.batched ? `batched: ${failures.batched}` : "",
    }),
    makeRow({
      section: "turn",
      figure: "server CPU per forwarded packet, ours with --batched-udp",
      unit: "µs",
      ours: pick(batched, cpu),
      referenceName: label,
      reference: pick(coturn, cpu),
      ratio: batchedCpu,
      target: "≤ coturn",
      verdict: batchedCpu === null ? "n/a" : batchedCpu <= 1 ? "met" : "short",
    }),
  ];
  return [
    makeRow({
      section: "turn",
      figure: "ChannelData round trips/s, 128 in flight (2 forwards each)",
      unit: "rt/s",
      ours: pick(ours, rate),
      referenceName: label,
      reference: pick(coturn, rate),
      ratio: ratioOf(pick(ours, rate), pick(coturn, rate)),
      note,
    }),
    makeRow({
      section: "turn",
      figure: "server CPU per forwarded ChannelData packet",
      unit: "µs",
      ours: pick(ours, cpu),
      referenceName: label,
      reference: pick(coturn, cpu),
      ratio: cpuRatio,
      target: "≤ coturn",
      verdict: cpuRatio === null ? "n/a" : cpuRatio <= 1 ? "met" : "short",
    }),
    makeRow({
      section: "turn",
      figure: "round trip p50",
      unit: "µs",
      ours: pick(ours, (r) => r.p50Us),
      referenceName: label,
      reference: pick(coturn, (r) => r.p50Us),
      ratio: ratioOf(pick(ours, (r) => r.p50Us), pick(coturn, (r) => r.p50Us)),
    }),
    makeRow({
      section: "turn",
      figure: "lost + invalid per run",
      unit: "count",
      ours: bad,
      referenceName: label,
      reference: pick(coturn, (r) => r.lost + r.invalid),
      target: "0",
      verdict: bad === null ? "n/a" : bad.max === 0 ? "met" : "short",
    }),
    ...batchedRows,
  ];
}
