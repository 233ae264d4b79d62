/**
 * Section "cluster": the server as a cluster over a real `nats-server` on loopback.
 *
 * - Relayed messages/s (16 pairs of 100-byte ping-pong, the relay section's load) and
 *   registrations/s (a burst of Ed25519 registrations) through `--workers 1` and `--workers 2`
 *   on the shared TCP port; the ratio 2 workers / 1 worker is the figure (how throughput grows
 *   with cores on this machine; with 2 workers a pair's two clients land on different workers
 *   about half the time, so their frames cross from one worker to the other: over the workers'
 *   loopback link, `stun_server/cluster/sibling_links.ts`, no longer through NATS), and the CPU
 *   the workers and nats-server spend per relayed message (what the ratio is made of).
 * - Capacity: 50,000 registered idle clients spread over three nodes (separate processes, one
 *   cluster), server memory per client = the nodes' summed RSS growth / clients (each node also
 *   holds the cluster-wide presence of all 50,000). The nodes are filled one after the other (a
 *   burst of 16,667 Ed25519 registrations takes one node several seconds of CPU; three at once on
 *   two cores would run past the 10 s registration timeout), with the timeout raised anyway,
 *   500 registering at once (see {@linkcode REGISTERING_AT_ONCE}). The figure is per client the
 *   nodes still hold when measured (their `p2p_registered_clients`), and the target counts as
 *   met only when none was lost.
 *
 * Nothing is pinned: the workers need both cores, and the generator shares them.
 *
 * @module
 */
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { startOurServer, waitForListening } from "./our_server.ts";
import { ChildProcess } from "./process.ts";
import { readCpuSeconds, readRssKiB, readTreeCpuSeconds } from "./proc.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { runRelayLoad } from "./sig_load.ts";
import { ratioOf, type RunSummary, summarize } from "./stats.ts";
import { parseCapacityResult } from "./capacity_bench.ts";
import { NatsServer, natsServerAvailable } from "../testing/nats_server.ts";
import { InspectorSession } from "./inspector.ts";
import { freePort } from "./ports.ts";

/** Idle clients registered across the cluster for the capacity figure. */
export const CLUSTER_CAPACITY_CLIENTS = 50_000;
/** Nodes the capacity clients are spread over. */
const CAPACITY_NODES = 3;

function serverFlags(natsUrl: string, maxClients: number): string[] {
  return [
    "--host",
    "127.0.0.1",
    "--log-level",
    "error",
    "--relay-rate",
    String(2 ** 50),
    "--relay-queue",
    String(8 * 1024 * 1024),
    "--max-conns-per-ip",
    String(maxClients + 1000),
    "--max-clients",
    String(maxClients),
    // A burst from one address is what the generator makes; issue 11's admission defences would
    // refuse most of it (at most 1,024 unregistered connections, a puzzle the generator does not
    // solve under load), which is their job, not what this section measures.
    "--max-pending",
    String(maxClients),
    "--puzzle-bits",
    "0",
    "--cluster",
    natsUrl,
  ];
}

/** Waits (bounded) for `ms` of real time: lets a new cluster's nodes hear each other's leases. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Connections the generator keeps opened and not yet registered at once. All 16,667 at once
 * overflowed the listen backlog (Deno's is 511) and the SYN queue: the kernel answered with SYN
 * cookies and reset what the busy server had not accepted in time (`TcpExtSyncookiesFailed`),
 * which were the capacity run's "Connection reset by peer" failures.
 */
const REGISTERING_AT_ONCE = 500;

/**
 * Registers `count` clients against `port`, at most {@linkcode REGISTERING_AT_ONCE} registering
 * at once; returns the generator and its result.
 */
async function registerBurst(
  context: BenchContext,
  port: number,
  count: number,
): Promise<{ load: ChildProcess; result: ReturnType<typeof parseCapacityResult> }> {
  const load = ChildProcess.start({
    command: context.bins.sig_load,
    args: [
      "ours",
      "127.0.0.1",
      String(port),
      "capacity",
      String(count),
      String(REGISTERING_AT_ONCE),
    ],
    stdin: true,
    label: "sig_load capacity (cluster)",
  });
  try {
    await load.waitForLine((l) => l.includes('"ready"'), 60_000);
    await load.writeLine("go");
    const line = await load.waitForLine((l) => l.includes('"result"'), 180_000);
    return { load, result: parseCapacityResult(line) };
  } catch (error) {
    await load.stop("SIGTERM", 5000);
    throw error;
  }
}

interface WorkerRun {
  messagesPerSecond: number;
  /** CPU of the workers (and their supervisor) and of nats-server per relayed message, µs. */
  serverCpuUsPerMessage: number;
  /** Of which nats-server's, µs. */
  natsCpuUsPerMessage: number;
  /** CPU of the workers and nats-server per registration, µs. */
  cpuUsPerRegistration: number;
  registrationsPerSecond: number;
  relayErrors: number;
  failedRegistrations: number;
}

async function workersRun(
  context: BenchContext,
  nats: NatsServer,
  workers: number,
): Promise<WorkerRun> {
  const natsUrl = nats.url;
  const registrations = context.quick ? 2000 : 5000;
  const server = startOurServer({
    repoRoot: context.repoRoot,
    stunPort: 0,
    tcpPort: 0,
    extraArgs: [...serverFlags(natsUrl, registrations * 2), "--workers", String(workers)],
  });
  try {
    const port = await waitForListening(server, 60_000);
    await pause(1500);
    const natsCpu = () => nats.pid === null ? Promise.resolve(0) : readCpuSeconds(nats.pid);
    const natsBefore = await natsCpu();
    const relay = await runRelayLoad(context, "ours", port, [
      "pingpong",
      context.quick ? "300" : "1000",
      context.quick ? "1000" : "3000",
      "16",
      "100",
    ], async () => await readTreeCpuSeconds(server.pid) + await natsCpu());
    // nats-server's share over about the same window (the generator's warm-up included: it only
    // makes it larger, and the point is how small it is once relay frames skip it).
    const natsSeconds = await natsCpu() - natsBefore;
    const messages = Math.max(1, relay.messages ?? 0);
    const cpuBefore = await readTreeCpuSeconds(server.pid) + await natsCpu();
    const { load, result } = await registerBurst(context, port, registrations);
    const registrationCpu = await readTreeCpuSeconds(server.pid) + await natsCpu() - cpuBefore;
    await load.stop("SIGTERM", 5000);
    return {
      messagesPerSecond: relay.messagesPerSecond ?? 0,
      serverCpuUsPerMessage: (relay.serverCpuSeconds ?? 0) * 1e6 / messages,
      natsCpuUsPerMessage: natsSeconds * 1e6 / messages,
      cpuUsPerRegistration: registrationCpu * 1e6 / Math.max(1, result.registered),
      registrationsPerSecond: result.registered / Math.max(1e-3, result.seconds),
      relayErrors: relay.relayErrors + relay.otherErrors,
      failedRegistrations: result.failed + result.pending,
    };
  } finally {
    await server.stop("SIGTERM", 20_000);
  }
}

interface CapacityRun {
  registered: number;
  /** Clients the nodes still held when the memory was measured (their metrics). */
  held: number;
  /** Clients the nodes dropped for heartbeat silence meanwhile. */
  heartbeatTimeouts: number;
  failed: number;
  firstError: string;
  kibPerClient: number;
  kibPerClientAfterGc: number;
  natsKib: number;
}

async function capacityRun(context: BenchContext, nats: NatsServer): Promise<CapacityRun> {
  const total = context.quick ? 6000 : CLUSTER_CAPACITY_CLIENTS;
  const perNode = Math.ceil(total / CAPACITY_NODES);
  const nodes: ChildProcess[] = [];
  const loads: ChildProcess[] = [];
  const inspectors: InspectorSession[] = [];
  const metricsPorts: number[] = [];
  const rssSum = async () => {
    let sum = 0;
    for (const node of nodes) sum += await readRssKiB(node.pid);
    return sum;
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < CAPACITY_NODES; i++) {
      const inspectPort = freePort();
      const metricsPort = freePort();
      metricsPorts.push(metricsPort);
      const node = startOurServer({
        repoRoot: context.repoRoot,
        stunPort: 0,
        tcpPort: 0,
        denoArgs: [`--inspect=127.0.0.1:${inspectPort}`],
        extraArgs: [
          ...serverFlags(nats.url, perNode * 2),
          "--node-name",
          `cap${i}`,
          "--registration-timeout-ms",
          "120000",
          "--metrics",
          `127.0.0.1:${metricsPort}`,
        ],
      });
      nodes.push(node);
      ports.push(await waitForListening(node, 60_000));
      inspectors.push(await InspectorSession.connect(inspectPort, 20_000));
    }
    await pause(1500);
    // Baseline after a full GC on every node: their live memory at rest.
    for (const inspector of inspectors) await inspector.collectAndMeasure();
    const before = await rssSum();
    const bursts: Awaited<ReturnType<typeof registerBurst>>[] = [];
    for (const [i, port] of ports.entries()) {
      const burst = await registerBurst(context, port, Math.min(perNode, total - i * perNode));
      loads.push(burst.load);
      bursts.push(burst);
    }
    // Let presence reach every node and the heaps settle; take the lowest sum over 3 s.
    await pause(2000);
    let after = Infinity;
    for (let i = 0; i < 12; i++) {
      after = Math.min(after, await rssSum());
      await pause(250);
    }
    for (const inspector of inspectors) await inspector.collectAndMeasure();
    await pause(500);
    const afterGc = await rssSum();
    const registered = bursts.reduce((n, b) => n + b.result.registered, 0);
    const failed = bursts.reduce((n, b) => n + b.result.failed + b.result.pending, 0);
    // Memory per client held, not per registration: a client dropped meanwhile (a node too busy
    // to read its pongs in time) frees its memory and must not count.
    let held = 0;
    let heartbeatTimeouts = 0;
    for (const port of metricsPorts) {
      const metrics = await readMetrics(port);
      held += metrics.get("p2p_registered_clients") ?? 0;
      heartbeatTimeouts += metrics.get("p2p_heartbeat_timeouts_total") ?? 0;
    }
    return {
      registered,
      held,
      heartbeatTimeouts,
      failed,
      firstError: bursts.map((b) => b.result.firstError).find((e) => e !== "") ?? "",
      kibPerClient: (after - before) / Math.max(1, held),
      kibPerClientAfterGc: (afterGc - before) / Math.max(1, held),
      natsKib: nats.pid === null ? 0 : await readRssKiB(nats.pid),
    };
  } finally {
    for (const inspector of inspectors) await inspector.close();
    for (const load of loads) await load.stop("SIGTERM", 5000);
    for (const node of nodes) await node.stop("SIGTERM", 20_000);
  }
}

/** Reads a node's Prometheus metrics (name → value, unlabelled series only), bounded to 5 s. */
async function readMetrics(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  const values = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    const match = /^([A-Za-z0-9_:]+) ([0-9.e+-]+)$/.exec(line);
    if (match !== null) values.set(match[1], Number(match[2]));
  }
  return values;
}

/** The cluster section. */
export const clusterSection: BenchSection = {
  name: "cluster",
  async run(context: BenchContext): Promise<SectionResult> {
    if (!await natsServerAvailable()) {
      return {
        rows: [makeRow({
          section: "cluster",
          figure: "cluster over NATS",
          unit: "",
          note: "nats-server is not installed (apt-get install nats-server)",
        })],
        details: {},
      };
    }
    const nats = await NatsServer.start();
    const byWorkers: Record<number, WorkerRun[]> = { 1: [], 2: [] };
    const capacity: CapacityRun[] = [];
    const failures: string[] = [];
    try {
      for (let run = 0; run < context.runs; run++) {
        for (const workers of [1, 2]) {
          context.log(`cluster: --workers ${workers}, run ${run + 1}/${context.runs}`);
          try {
            byWorkers[workers].push(await workersRun(context, nats, workers));
          } catch (error) {
            failures.push(`workers ${workers}: ${(error as Error).message}`.slice(0, 300));
          }
        }
      }
      context.log("cluster: capacity over three nodes");
      try {
        capacity.push(await capacityRun(context, nats));
      } catch (error) {
        failures.push(`capacity: ${(error as Error).message}`.slice(0, 300));
      }
    } finally {
      await nats.stop();
    }
    const pick = (workers: number, f: (r: WorkerRun) => number): RunSummary | null =>
      byWorkers[workers].length === 0 ? null : summarize(byWorkers[workers].map(f));
    const rows: BenchRow[] = [];
    for (
      const [figure, unit, f] of [
        ["relayed 100-byte messages/s, 16 pairs", "msg/s", (r: WorkerRun) => r.messagesPerSecond],
        ["registrations/s (Ed25519), burst", "reg/s", (r: WorkerRun) => r.registrationsPerSecond],
      ] as const
    ) {
      const one = pick(1, f);
      const two = pick(2, f);
      rows.push(makeRow({
        section: "cluster",
        figure: `${figure}: 2 workers vs 1`,
        unit,
        ours: two,
        referenceName: "--workers 1",
        reference: one,
        ratio: ratioOf(two, one),
        note: `2 cores shared by workers, NATS and the generator`,
      }));
    }
    for (const workers of [1, 2]) {
      const runs = byWorkers[workers];
      rows.push(makeRow({
        section: "cluster",
        figure: `CPU per relayed message, --workers ${workers} (workers + nats-server)`,
        unit: "µs",
        ours: runs.length === 0 ? null : summarize(runs.map((r) => r.serverCpuUsPerMessage)),
        note: runs.length === 0
          ? ""
          : `of which nats-server ${
            summarize(runs.map((r) => r.natsCpuUsPerMessage)).median.toFixed(1)
          } µs`,
      }));
    }
    for (const workers of [1, 2]) {
      const runs = byWorkers[workers];
      rows.push(makeRow({
        section: "cluster",
        figure: `CPU per registration, --workers ${workers} (workers + nats-server)`,
        unit: "µs",
        ours: runs.length === 0 ? null : summarize(runs.map((r) => r.cpuUsPerRegistration)),
      }));
    }
    const errors = [1, 2].flatMap((w) =>
      byWorkers[w].map((r) => r.relayErrors + r.failedRegistrations)
    );
    rows.push(makeRow({
      section: "cluster",
      figure: "relay errors + failed registrations (all worker runs)",
      unit: "count",
      ours: errors.length === 0 ? null : summarize(errors),
      target: "0",
      verdict: errors.length === 0 ? "n/a" : Math.max(...errors) === 0 ? "met" : "short",
    }));
    const cap = capacity[0];
    const perClient = cap === undefined ? null : summarize([cap.kibPerClient]);
    rows.push(makeRow({
      section: "cluster",
      figure: `server RSS per idle client, ${
        cap?.held ?? CLUSTER_CAPACITY_CLIENTS
      } clients on ${CAPACITY_NODES} nodes`,
      unit: "KiB",
      ours: perClient,
      target: "≤ 8 KiB",
      // Met only with every client of the burst still held: all 50,000 at ≤ 8 KiB each.
      verdict: perClient === null || cap === undefined
        ? "n/a"
        : perClient.median <= 8 && cap.held >= cap.registered + cap.failed
        ? "met"
        : "short",
      note: cap === undefined
        ? failures.join("; ")
        : `${cap.registered} registered, ${cap.failed} failed${
          cap.firstError === "" ? "" : ` (first: ${cap.firstError.slice(0, 80)})`
        }, ${cap.heartbeatTimeouts} dropped for heartbeat silence; nats-server RSS ${
          Math.round(cap.natsKib / 1024)
        } MiB`,
    }));
    rows.push(makeRow({
      section: "cluster",
      figure: "… the same after a forced full GC on every node (live memory)",
      unit: "KiB",
      ours: cap === undefined ? null : summarize([cap.kibPerClientAfterGc]),
    }));
    return {
      rows,
      details: { byWorkers, capacity, failures },
      text: failures.length === 0 ? undefined : failures.map((f) => `cluster: ${f}`),
    };
  },
};
