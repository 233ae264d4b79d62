/**
 * Section 2: the relay. Bulk throughput between two clients and the rate of relayed 100-byte
 * ping-pong messages over 16 pairs, through our server, through a minimal native epoll relay,
 * through a plain Deno read/write relay loop (`deno_relay.ts`, the Deno floor), and over direct
 * TCP loopback (the ceiling). The clients are the native generator
 * (`native/sig_load.c`, one thread on the load CPU), which registers with our server exactly as
 * docs/protocol.md says (Ed25519 challenge, `connect`) before relaying.
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
import { ChildProcess } from "./process.ts";
import { makeRow } from "./report.ts";
import type { BenchRow } from "./report.ts";
import { type RelayLoadResult, runRelayLoad, type SigLoadMode } from "./sig_load.ts";
import { ratioOf, summarize } from "./stats.ts";

/** Payload of each bulk relay frame. */
export const BULK_PAYLOAD = 16_384;
/** Ping-pong pairs. */
export const PING_PONG_PAIRS = 16;
/** Ping-pong message size. */
export const PING_PONG_SIZE = 100;

/** Flags that lift our server's relay limits for the bench (filtered by its `--help`). */
export const RELAY_SERVER_FLAGS: [string, string][] = [
  ["--host", "127.0.0.1"],
  ["--log-level", "error"],
  ["--relay-rate", String(2 ** 50)],
  ["--relay-queue", String(8 * 1024 * 1024)],
  ["--max-conns-per-ip", "1000"],
];

interface RelayTarget {
  /** Key in the results. */
  name: "ours" | "crelay" | "denorelay" | "direct";
  /** How the generator talks to it. */
  mode: SigLoadMode;
  port: number;
  server?: ChildProcess;
}

/** The relay section. */
export const relaySection: BenchSection = {
  name: "relay",
  async run(context: BenchContext): Promise<SectionResult> {
    const warmupMs = context.quick ? 300 : 1000;
    const durationMs = context.quick ? 1000 : 3000;
    const failures: Record<string, string> = {};
    const targets: RelayTarget[] = [];
    try {
      try {
        const help = await serverHelp(context.repoRoot);
        const server = startOurServer({
          repoRoot: context.repoRoot,
          stunPort: 0,
          tcpPort: 0,
          cpu: context.serverCpu,
          extraArgs: supportedFlags(help, RELAY_SERVER_FLAGS),
        });
        try {
          const port = await waitForListening(server, 20_000);
          targets.push({ name: "ours", mode: "ours", port, server });
        } catch (error) {
          failures.ours = (error as Error).message;
          await server.stop();
        }
      } catch (error) {
        failures.ours = `not available: ${(error as Error).message}`;
      }
      const references = [
        { name: "crelay", command: context.bins.tcp_relay, args: ["127.0.0.1", "0"] },
        {
          name: "denorelay",
          command: "deno",
          args: [
            "run",
            "--no-prompt",
            "--allow-net",
            new URL("./deno_relay.ts", import.meta.url).pathname,
            "0",
          ],
        },
      ] as const;
      for (const reference of references) {
        const relay = ChildProcess.start({
          command: reference.command,
          args: [...reference.args],
          cpu: context.serverCpu,
          label: reference.name,
        });
        try {
          const ready = await relay.waitForLine((l) => l.startsWith("ready "), 20_000);
          targets.push({
            name: reference.name,
            mode: "crelay",
            port: Number(ready.split(" ")[1]),
            server: relay,
          });
        } catch (error) {
          failures[reference.name] = (error as Error).message;
          await relay.stop();
        }
      }
      targets.push({ name: "direct", mode: "direct", port: 1 });

      const bulk: Record<string, RelayLoadResult[]> = {};
      const pingPong: Record<string, RelayLoadResult[]> = {};
      for (let i = 0; i < context.runs; i++) {
        for (const target of targets) {
          if (failures[target.name]) continue;
          context.log(`relay: run ${i + 1}/${context.runs} ${target.name}`);
          try {
            (bulk[target.name] ??= []).push(
              await runRelayLoad(context, target.mode, target.port, [
                "bulk",
                String(warmupMs),
                String(durationMs),
                String(BULK_PAYLOAD),
              ], target.server?.pid),
            );
            (pingPong[target.name] ??= []).push(
              await runRelayLoad(context, target.mode, target.port, [
                "pingpong",
                String(warmupMs),
                String(durationMs),
                String(PING_PONG_PAIRS),
                String(PING_PONG_SIZE),
              ], target.server?.pid),
            );
          } catch (error) {
            failures[target.name] = (error as Error).message;
          }
        }
      }
      const profiles = [];
      if (context.profile && failures.ours === undefined) {
        context.log("relay: profiled run of our server");
        const dir = await Deno.makeTempDir({ dir: context.tmpDir, prefix: "prof-relay-" });
        const server = startOurServer({
          repoRoot: context.repoRoot,
          stunPort: 0,
          tcpPort: 0,
          cpu: context.serverCpu,
          extraArgs: supportedFlags(await serverHelp(context.repoRoot), RELAY_SERVER_FLAGS),
          profileDir: dir,
        });
        try {
          const port = await waitForListening(server, 20_000);
          await runRelayLoad(context, "ours", port, [
            "bulk",
            String(warmupMs),
            String(durationMs),
            String(BULK_PAYLOAD),
          ]);
          await runRelayLoad(context, "ours", port, [
            "pingpong",
            String(warmupMs),
            String(durationMs),
            String(PING_PONG_PAIRS),
            String(PING_PONG_SIZE),
          ]);
        } catch (error) {
          context.log(`relay: profiled run failed: ${(error as Error).message}`);
        } finally {
          const entries = await stopAndSummarize(server, dir, context.repoRoot);
          if (entries !== null) profiles.push({ title: "relay bulk + ping-pong", entries });
        }
      }
      return {
        profiles,
        rows: relayRows(bulk, pingPong, failures),
        details: {
          warmupMs,
          durationMs,
          bulkPayload: BULK_PAYLOAD,
          pairs: PING_PONG_PAIRS,
          size: PING_PONG_SIZE,
          load: "native C client sig_load (one thread, epoll) on the load CPU",
          bulk,
          pingPong,
          failures,
        },
      };
    } finally {
      for (const target of targets) await target.server?.stop();
    }
  },
};

const summaryOf = (runs: RelayLoadResult[] | undefined, f: (r: RelayLoadResult) => number) =>
  runs === undefined || runs.length === 0 ? null : summarize(runs.map(f));

/**
 * Turns relay runs into table rows.
 *
 * @example
 * ```ts
 * const rows = relayRows({}, {}, { ours: "not available" });
 * console.log(rows[0].note);
 * ```
 */
export function relayRows(
  bulk: Record<string, RelayLoadResult[]>,
  pingPong: Record<string, RelayLoadResult[]>,
  failures: Record<string, string>,
): BenchRow[] {
  const mb = (r: RelayLoadResult) => r.mbPerSecond ?? 0;
  const msgs = (r: RelayLoadResult) => r.messagesPerSecond ?? 0;
  const cpuPerMsg = (r: RelayLoadResult) =>
    (r.serverCpuSeconds ?? 0) * 1e6 / Math.max(1, r.messages ?? 0);
  const note = (ref: string) =>
    [failures.ours ?? "", failures[ref] ? `${ref}: ${failures[ref]}` : ""]
      .filter((s) => s !== "").join("; ");
  const rows: BenchRow[] = [];
  const oursBulk = summaryOf(bulk.ours, mb);
  const cBulk = summaryOf(bulk.crelay, mb);
  const bulkRatio = ratioOf(oursBulk, cBulk);
  rows.push(makeRow({
    section: "relay",
    figure: `bulk, 1 pair, ${BULK_PAYLOAD / 1024} KiB frames`,
    unit: "MB/s",
    ours: oursBulk,
    referenceName: "C epoll relay",
    reference: cBulk,
    ratio: bulkRatio,
    target: "≥ 0.8× C relay",
    verdict: bulkRatio === null ? "n/a" : bulkRatio >= 0.8 ? "met" : "short",
    note: note("crelay"),
  }));
  rows.push(makeRow({
    section: "relay",
    figure: `bulk, 1 pair, ${BULK_PAYLOAD / 1024} KiB frames`,
    unit: "MB/s",
    ours: oursBulk,
    referenceName: "plain Deno relay",
    reference: summaryOf(bulk.denorelay, mb),
    ratio: ratioOf(oursBulk, summaryOf(bulk.denorelay, mb)),
    note: failures.denorelay ? `denorelay: ${failures.denorelay}` : "",
  }));
  rows.push(makeRow({
    section: "relay",
    figure: `bulk, 1 pair, ${BULK_PAYLOAD / 1024} KiB frames`,
    unit: "MB/s",
    ours: oursBulk,
    referenceName: "direct TCP",
    reference: summaryOf(bulk.direct, mb),
    ratio: ratioOf(oursBulk, summaryOf(bulk.direct, mb)),
    note: failures.direct ? `direct: ${failures.direct}` : "",
  }));
  const cpuPerMb = (r: RelayLoadResult) =>
    (r.serverCpuSeconds ?? 0) * 1e6 / Math.max(1, (r.bytes ?? 0) / 1e6);
  for (const [ref, label] of [["crelay", "C epoll relay"], ["denorelay", "plain Deno relay"]]) {
    rows.push(makeRow({
      section: "relay",
      figure: "server CPU per relayed MB (bulk)",
      unit: "µs",
      ours: summaryOf(bulk.ours, cpuPerMb),
      referenceName: label,
      reference: summaryOf(bulk[ref], cpuPerMb),
      ratio: ratioOf(summaryOf(bulk.ours, cpuPerMb), summaryOf(bulk[ref], cpuPerMb)),
    }));
  }
  const oursPp = summaryOf(pingPong.ours, msgs);
  rows.push(makeRow({
    section: "relay",
    figure: `ping-pong ${PING_PONG_SIZE} B, ${PING_PONG_PAIRS} pairs`,
    unit: "msg/s",
    ours: oursPp,
    referenceName: "C epoll relay",
    reference: summaryOf(pingPong.crelay, msgs),
    ratio: ratioOf(oursPp, summaryOf(pingPong.crelay, msgs)),
    target: "≥ 120,000 msg/s",
    verdict: oursPp === null ? "n/a" : oursPp.median >= 120_000 ? "met" : "short",
  }));
  rows.push(makeRow({
    section: "relay",
    figure: `ping-pong ${PING_PONG_SIZE} B, ${PING_PONG_PAIRS} pairs`,
    unit: "msg/s",
    ours: oursPp,
    referenceName: "plain Deno relay",
    reference: summaryOf(pingPong.denorelay, msgs),
    ratio: ratioOf(oursPp, summaryOf(pingPong.denorelay, msgs)),
  }));
  rows.push(makeRow({
    section: "relay",
    figure: `ping-pong ${PING_PONG_SIZE} B, ${PING_PONG_PAIRS} pairs`,
    unit: "msg/s",
    ours: oursPp,
    referenceName: "direct TCP",
    reference: summaryOf(pingPong.direct, msgs),
    ratio: ratioOf(oursPp, summaryOf(pingPong.direct, msgs)),
  }));
  for (const [ref, label] of [["crelay", "C epoll relay"], ["denorelay", "plain Deno relay"]]) {
    rows.push(makeRow({
      section: "relay",
      figure: "server CPU per relayed ping-pong message",
      unit: "µs",
      ours: summaryOf(pingPong.ours, cpuPerMsg),
      referenceName: label,
      reference: summaryOf(pingPong[ref], cpuPerMsg),
      ratio: ratioOf(summaryOf(pingPong.ours, cpuPerMsg), summaryOf(pingPong[ref], cpuPerMsg)),
    }));
  }
  const refused = summaryOf(
    [...(bulk.ours ?? []), ...(pingPong.ours ?? [])].length > 0
      ? [...(bulk.ours ?? []), ...(pingPong.ours ?? [])]
      : undefined,
    (r) => r.relayErrors + r.otherErrors + r.badFrames,
  );
  rows.push(makeRow({
    section: "relay",
    figure: "relay refusals + errors per run",
    unit: "count",
    ours: refused,
    target: "0",
    verdict: refused === null ? "n/a" : refused.max === 0 ? "met" : "short",
  }));
  return rows;
}
