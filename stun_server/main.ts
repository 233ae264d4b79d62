/**
 * The rendezvous server program: `deno task server [flags]` (see `--help`).
 *
 * Prints one JSON line `{"event":"listening",...}` on stdout once it listens (see
 * `ListeningAnnouncement` in `server.ts`); logs go to stderr, human-readable on a terminal and
 * JSON lines otherwise (`--log-format`). SIGINT and SIGTERM shut it down gracefully (every client
 * gets `bye server-shutdown`, the final log lines are written) with exit code 0; a repeated signal
 * during shutdown is noted and ignored, never fatal (a second SIGINT used to kill it with 130 and
 * cut off the last lines). SIGHUP logs the current totals. Usage errors exit 2, startup errors
 * (a port in use) exit 1 with one line naming what failed.
 *
 * @module
 */
import { dispose, getLogger } from "@logtape/logtape";
import { parseServerArgs } from "./cli.ts";
import { configureServerLogging, type LogPipe } from "./logging.ts";
import { type MetricsEndpoint, serveMetrics } from "./metrics_http.ts";
import { announce, type RunningServer, startServer, StartupError } from "./server.ts";
import { stunTurnListen } from "./turn_setup.ts";
import { relayBudget } from "./relay_budget.ts";
import { batchedDatagramRuntime, systemRuntime } from "../shared/runtime/mod.ts";
import { summarize as summaryOf } from "./summary.ts";
import type { ClusterBus } from "./cluster/bus.ts";
import { ClusterNode } from "./cluster/cluster_node.ts";
import { NatsTransport } from "./cluster/nats_transport.ts";
import { runWorkers } from "./workers.ts";
import { isLinkSecret, SiblingLinks } from "./cluster/sibling_links.ts";

/** Reads the worker link secret: the first line of stdin, bounded to 5 s and 64 bytes. */
async function readSecretLine(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string | undefined> {
  let text = "";
  let timer: number | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = systemRuntime.setTimer(() => resolve(null), 5000);
  });
  try {
    while (!text.includes("\n") && text.length <= 64) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === null || chunk.done) return undefined;
      text += new TextDecoder().decode(chunk.value);
    }
  } finally {
    systemRuntime.clearTimer(timer);
  }
  const secret = text.split("\n")[0].trim();
  return isLinkSecret(secret) ? secret : undefined;
}

/** How long the announcement waits for the cluster bus to be joined (ms). */
const CLUSTER_JOIN_WAIT_MS = 5000;

const encoder = new TextEncoder();

/** Writes all of `text`; false when the stream is gone (closed pipe, full disk). */
function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): boolean {
  try {
    const bytes = encoder.encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
    return true;
  } catch {
    return false;
  }
}

function hostPort(address: { hostname: string; port: number }): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** How long exit waits for the last log lines to be written. */
const FINAL_LOG_FLUSH_MS = 2000;

/** Interval of the INFO summary line (written only when something happened meanwhile). */
const SUMMARY_INTERVAL_MS = 10 * 60 * 1000;

async function main(): Promise<number> {
  const parsed = parseServerArgs(Deno.args, {
    writeOut: (text) => void writeAll(Deno.stdout, text),
    writeErr: (text) => void writeAll(Deno.stderr, text),
  });
  if ("exitCode" in parsed) return parsed.exitCode;
  const config = parsed.config;
  const format = config.logFormat === "auto" ? (isTerminal() ? "text" : "json") : config.logFormat;
  const logPipe: LogPipe = await configureServerLogging(config.logLevel, format);
  const log = getLogger(["stun-server"]);
  const finish = async (code: number) => {
    await logPipe.flush(FINAL_LOG_FLUSH_MS);
    await dispose();
    return code;
  };

  // Nothing one connection does may bring the server down: log strays, keep serving.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("unhandled rejection: {reason}", { reason: String(event.reason) });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("uncaught error: {message}", { message: String(event.error ?? event.message) });
  });

  // Signals are caught before anything is announced, so a stop right after start is graceful,
  // and they stay caught until exit: a second SIGINT (an impatient Ctrl-C, or one delivered both
  // to the process group and by a parent) must not kill the shutdown half-way.
  const stopped = Promise.withResolvers<string>();
  let stopping = false;
  let server: RunningServer | undefined;
  const onStop = (name: string) => () => {
    if (stopping) {
      log.info("{signal} received again: already shutting down", { signal: name });
      return;
    }
    stopping = true;
    stopped.resolve(name);
  };
  const onHangup = () => {
    if (server === undefined) return;
    log.info("totals: {totals}", {
      totals: server.metrics.snapshot(),
      suppressedWarnings: server.signaling.log.suppressed(),
    });
  };
  const listeners: [Deno.Signal, () => void][] = [["SIGINT", onStop("SIGINT")]];
  if (Deno.build.os !== "windows") {
    listeners.push(["SIGTERM", onStop("SIGTERM")], ["SIGHUP", onHangup]);
  }
  for (const [signal, handler] of listeners) Deno.addSignalListener(signal, handler);
  // A worker of --workers with --worker-link: the supervisor writes the link secret as the first
  // line of our stdin (not on the command line, where every local user could read it).
  let stdin: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let linkSecret: string | undefined;
  if (config.workerLink) {
    stdin = Deno.stdin.readable.getReader();
    linkSecret = await readSecretLine(stdin);
    if (linkSecret === undefined) log.warn("no worker link secret on stdin: relaying over NATS");
  }
  if (config.supervised) {
    // A worker of --workers: when the supervisor goes away (its end of our stdin closes, even
    // if it was killed), shut down rather than linger as an orphan holding the port.
    const reader = stdin ?? Deno.stdin.readable.getReader();
    (async () => {
      try {
        while (!(await reader.read()).done) {
          // nothing more is sent; only the end matters
        }
      } catch {
        // closed
      }
      onStop("supervisor-gone")();
    })();
  }

  if (config.workers > 1) {
    const code = await runWorkers(
      Deno.args,
      config,
      log,
      stopped.promise,
      (line) => void writeAll(Deno.stdout, line),
    );
    const result = await finish(code);
    for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
    return result;
  }

  let cluster: ClusterBus | undefined;
  if (config.cluster !== undefined) {
    const nodeName = config.nodeName ?? `node-${systemRuntime.randomBytes(4).toHex()}`;
    cluster = new ClusterNode({
      nodeName,
      siblings: linkSecret === undefined ? undefined : new SiblingLinks({
        nodeName,
        secret: linkSecret,
        runtime: systemRuntime,
      }),
      transport: NatsTransport.start({
        servers: config.cluster,
        name: `p2p-stun-server ${nodeName}`,
        runtime: systemRuntime,
      }),
      runtime: systemRuntime,
      prefix: config.clusterPrefix,
    });
    log.info("cluster node {node} joining NATS {servers}", {
      node: nodeName,
      servers: config.cluster.join(","),
    });
  }

  let metricsEndpoint: MetricsEndpoint | undefined;
  try {
    server = startServer({
      hostname: config.host,
      tcpPort: config.tcpPort,
      stunPort: config.stunPort,
      maxClients: config.maxClients,
      maxConnectionsPerAddress: config.maxConnsPerIp,
      relayBytesPerSecond: config.relayRate,
      relayQueueBytes: config.relayQueue,
      heartbeatMs: config.heartbeatMs,
      registrationTimeoutMs: config.registrationTimeoutMs,
      maxPendingConnections: config.maxPending,
      maxPuzzleBits: config.puzzleBits,
      runtime: config.stun.batchedUdp ? batchedDatagramRuntime(systemRuntime) : systemRuntime,
      listenStun: stunTurnListen(config.stun),
      relayBudget: config.stun.relayTotalBps === undefined
        ? undefined
        : relayBudget(config.stun.relayTotalBps, () => systemRuntime.now()),
      cluster,
      reusePort: config.reusePort,
    });
    const metrics = server.metrics;
    metrics.addCollector(() => metrics.logLinesDropped = logPipe.dropped);
    if (config.metrics !== undefined) {
      try {
        metricsEndpoint = serveMetrics(server.metrics, config.metrics);
      } catch (error) {
        await server.close();
        if (error instanceof Deno.errors.AddrInUse) {
          throw new StartupError(`metrics port ${config.metrics.port} is in use`);
        }
        throw new StartupError(
          `cannot serve metrics on ${hostPort(config.metrics)}: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
      }
    }
  } catch (error) {
    await cluster?.close();
    const what = error instanceof StartupError ? error.message : String(error);
    writeAll(Deno.stderr, `stun_server: cannot start: ${what}\n`);
    for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
    return await finish(1);
  }
  if (cluster !== undefined) {
    // Announce once the bus is joined and synchronised (about a second), so that the clients of
    // a freshly started node do not get `cluster-unavailable`; bounded: without NATS, the server
    // serves its own clients and says so.
    const bus = cluster;
    const deadline = systemRuntime.now() + CLUSTER_JOIN_WAIT_MS;
    while (!bus.available && systemRuntime.now() < deadline) {
      await new Promise<void>((resolve) => systemRuntime.setTimer(resolve, 50));
    }
    if (!bus.available) {
      log.warn("cluster bus not available after {ms} ms: serving local clients until it is", {
        ms: CLUSTER_JOIN_WAIT_MS,
      });
    }
  }
  const announcement = {
    ...announce(server, Deno.pid),
    ...(metricsEndpoint !== undefined ? { metrics: metricsEndpoint.addr } : {}),
  };
  writeAll(Deno.stdout, JSON.stringify(announcement) + "\n");
  log.info("listening: signaling on TCP {tcp}, STUN on UDP {stun}{metrics}", {
    tcp: hostPort(announcement.tcp),
    stun: announcement.stun.map(hostPort).join(", "),
    metrics: metricsEndpoint === undefined
      ? ""
      : `, metrics and status page on http://${hostPort(metricsEndpoint.addr)}/`,
  });

  let lastSummary = server.metrics.snapshot();
  let summaryTimer: number | undefined;
  const summarize = () => {
    const now = server!.metrics.snapshot();
    const summary = summaryOf(lastSummary, now);
    if (summary !== null) {
      log.info(summary.message, summary.properties);
      lastSummary = now;
    }
    summaryTimer = systemRuntime.setTimer(summarize, SUMMARY_INTERVAL_MS);
  };
  summaryTimer = systemRuntime.setTimer(summarize, SUMMARY_INTERVAL_MS);

  const signal = await stopped.promise;
  systemRuntime.clearTimer(summaryTimer);
  const before = server.metrics.snapshot();
  log.info("{signal} received: shutting down ({connected} connected, {registered} registered)", {
    signal,
    connected: before.connected,
    registered: before.registered,
  });
  await server.close();
  await metricsEndpoint?.close();
  const after = server.metrics.snapshot();
  log.info(
    "stopped after {uptime} s: {registrations} registrations, {introductions} introductions, {relayFrames} frames / {relayBytes} bytes relayed, {refused} relay frames refused, {stun} STUN requests answered",
    {
      uptime: Math.round(after.uptimeSeconds),
      registrations: after.registrations.accepted ?? 0,
      introductions: after.introductions,
      relayFrames: after.relayFrames,
      relayBytes: after.relayBytes,
      refused: Object.values(after.relayRefused).reduce((a, b) => a + b, 0),
      stun: Object.values(after.stunAnswered).reduce((a, b) => a + b, 0),
      totals: after,
    },
  );
  const code = await finish(0);
  for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
  return code;
}

if (import.meta.main) Deno.exit(await main());
