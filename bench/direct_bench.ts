/**
 * Section 3: the direct path. Two real client programs (`p2p_client/main.ts --json`) on
 * loopback reach a direct UDP path (encrypted, reliable); then the message latency (one message
 * at a time, from `send` to the peer printing it, and to the sender's `delivered`), and the
 * message rate (a batch of messages written at once,
 * until the receiver has printed every one, checked in order). Reference: the same two clients
 * with `--relay-only`, over the server's relay.
 *
 * @module
 */
import { withClientPair } from "./client_program.ts";
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { serverHelp, startOurServer, supportedFlags, waitForListening } from "./our_server.ts";
import type { ChildProcess } from "./process.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { ratioOf, type RunSummary, summarize } from "./stats.ts";

/** One run over one kind of path. */
export interface DirectRun {
  /** Per-message latencies, `send` written to the peer printing the message, ms. */
  latenciesMs: number[];
  /** Median of {@linkcode DirectRun.latenciesMs}. */
  p50Ms: number;
  /** 99th percentile. */
  p99Ms: number;
  /** Median time from `send` to the sender's `delivered` event (the peer's acknowledgement), ms. */
  deliveredP50Ms: number;
  /** Messages in the rate batch. */
  batch: number;
  /** Messages per second over the batch. */
  messagesPerSecond: number;
  /** Messages the receiver printed out of order, twice, or not at all. */
  problems: number;
}

/**
 * The `q`-quantile (0..1) of values, nearest rank.
 *
 * @example
 * ```ts
 * console.log(quantile([5, 1, 3, 2, 4], 0.5)); // 3
 * ```
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError("quantile of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** Flags for the server the clients use: loopback, quiet, relay limits lifted. */
export const CLIENT_SERVER_FLAGS: [string, string][] = [
  ["--host", "127.0.0.1"],
  ["--log-level", "error"],
  ["--relay-rate", String(2 ** 50)],
  ["--relay-queue", String(8 * 1024 * 1024)],
];

/**
 * Starts our server for client runs and returns it with its TCP port; throws with the reason
 * when the server or the client program is not available.
 *
 * @example
 * ```ts
 * // const { server, port } = await startServerForClients(context);
 * ```
 */
export async function startServerForClients(
  context: BenchContext,
): Promise<{ server: ChildProcess; port: number }> {
  try {
    await Deno.stat(`${context.repoRoot}/p2p_client/main.ts`);
  } catch {
    throw new Error("p2p_client/main.ts does not exist yet");
  }
  const help = await serverHelp(context.repoRoot);
  const server = startOurServer({
    repoRoot: context.repoRoot,
    stunPort: 0,
    tcpPort: 0,
    cpu: context.serverCpu,
    extraArgs: supportedFlags(help, CLIENT_SERVER_FLAGS),
  });
  try {
    return { server, port: await waitForListening(server, 20_000) };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function directRun(
  context: BenchContext,
  port: number,
  relayOnly: boolean,
): Promise<DirectRun> {
  const wanted = relayOnly ? "relayed" : "direct";
  return await withClientPair(context, port, { relayOnly }, async (a, b) => {
    const bId = b.id;
    await a.command(`connect ${bId}`);
    await a.waitFor((e) => e.type === "peer" && e.peer === bId && e.state === wanted, 20_000);
    // Latency: one message at a time, from writing `send` to B printing it, and to A's
    // `delivered` event (B's acknowledgement).
    const latencies: number[] = [];
    const delivered: number[] = [];
    const count = context.quick ? 50 : 200;
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await a.command(`send ${bId} ping-${i}`);
      await b.waitFor((e) => e.type === "message" && e.text === `ping-${i}`, 10_000);
      latencies.push(performance.now() - t0);
      await a.waitFor((e) => e.type === "delivered" && e.peer === bId, 10_000);
      delivered.push(performance.now() - t0);
    }
    // Rate: a batch written at once; B must print every message once and in order.
    const batch = context.quick ? 500 : 2000;
    const lines = Array.from({ length: batch }, (_, i) => `send ${bId} m${i}`).join("\n");
    let next = 0;
    let problems = 0;
    const t0 = performance.now();
    await a.command(lines);
    await b.waitFor((e) => {
      if (e.type !== "message") return false;
      if (e.text !== `m${next}`) problems++;
      next++;
      return next === batch;
    }, 120_000).catch((error) => {
      problems += batch - next;
      throw error;
    });
    const seconds = (performance.now() - t0) / 1000;
    return {
      latenciesMs: latencies,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      deliveredP50Ms: quantile(delivered, 0.5),
      batch,
      messagesPerSecond: batch / seconds,
      problems,
    };
  });
}

/** The direct-path section. */
export const directSection: BenchSection = {
  name: "direct",
  async run(context: BenchContext): Promise<SectionResult> {
    let started;
    try {
      started = await startServerForClients(context);
    } catch (error) {
      return {
        rows: directRows({}, { direct: `not available: ${(error as Error).message}` }),
        details: {},
      };
    }
    const runs: Record<string, DirectRun[]> = { direct: [], relayed: [] };
    const failures: Record<string, string> = {};
    try {
      for (let i = 0; i < context.runs; i++) {
        for (const kind of ["direct", "relayed"] as const) {
          if (failures[kind]) continue;
          context.log(`direct: run ${i + 1}/${context.runs} ${kind}`);
          try {
            runs[kind].push(await directRun(context, started.port, kind === "relayed"));
          } catch (error) {
            failures[kind] = `not available: ${(error as Error).message}`;
          }
        }
      }
    } finally {
      await started.server.stop();
    }
    const details = Object.fromEntries(
      Object.entries(runs).map(([k, v]) => [k, v.map(({ latenciesMs: _, ...rest }) => rest)]),
    );
    return {
      rows: directRows(runs, failures),
      details: {
        pinning: "client A on the server CPU, client B on the load CPU",
        runs: details,
        failures,
      },
    };
  },
};

/**
 * Turns direct-path runs into table rows.
 *
 * @example
 * ```ts
 * console.log(directRows({}, { direct: "not available" }).length);
 * ```
 */
export function directRows(
  runs: Record<string, DirectRun[]>,
  failures: Record<string, string>,
): BenchRow[] {
  const pick = (kind: string, f: (r: DirectRun) => number): RunSummary | null =>
    (runs[kind]?.length ?? 0) === 0 ? null : summarize(runs[kind].map(f));
  const note = [failures.direct ?? "", failures.relayed ? `relayed: ${failures.relayed}` : ""]
    .filter((s) => s !== "").join("; ");
  const row = (figure: string, unit: string, f: (r: DirectRun) => number): BenchRow => {
    const ours = pick("direct", f);
    const reference = pick("relayed", f);
    return makeRow({
      section: "direct",
      figure,
      unit,
      ours,
      referenceName: "same clients, --relay-only",
      reference,
      ratio: ratioOf(ours, reference),
    });
  };
  const problems = pick("direct", (r) => r.problems);
  return [
    { ...row("message rate, 1 pair, batch", "msg/s", (r) => r.messagesPerSecond), note },
    row("message latency p50 (send → peer prints it)", "ms", (r) => r.p50Ms),
    row("message latency p99 (send → peer prints it)", "ms", (r) => r.p99Ms),
    row("send → delivered (peer's ack) p50", "ms", (r) => r.deliveredP50Ms),
    makeRow({
      section: "direct",
      figure: "messages lost, repeated or out of order",
      unit: "count",
      ours: problems,
      target: "0",
      verdict: problems === null ? "n/a" : problems.max === 0 ? "met" : "short",
    }),
  ];
}
