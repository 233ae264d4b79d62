/**
 * `--workers N`: several server processes on one machine, joined by the cluster bus, so the
 * signaling service, the relay and STUN use every core instead of one.
 *
 * Ports: the signaling TCP port is shared by all workers with `SO_REUSEPORT` (Linux spreads new
 * connections over them; `Deno.listen({reusePort})`). Deno exposes no `SO_REUSEPORT` for UDP
 * (`Deno.listenDatagram({reuseAddress})` sets `SO_REUSEADDR`, with which Linux hands every unicast
 * datagram to the last socket bound, so the port would not be shared but stolen), so each worker
 * binds its own STUN port: worker 0 the configured one (public STUN for everyone), worker k the
 * configured one + k, announced to its own clients in `registered.stunPort` (a client sends its
 * authenticated Bindings there). Open UDP ports `stunPort .. stunPort + N - 1` in the firewall.
 * Likewise `--metrics host:port` gives worker k `port + k`, and `--alt-port` (RFC 5780) too.
 *
 * The supervisor (this module) starts worker 0, learns the real TCP port from its announcement
 * (port 0 works), starts the others on it, prints one announcement for all, restarts a worker
 * that dies (at most 10 times), and on SIGINT/SIGTERM stops them all gracefully.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { sleep, systemRuntime } from "../shared/runtime/mod.ts";
import type { ServerConfig } from "./cli.ts";
import { SERVER_RUNTIME_FLAGS } from "./runtime_flags.ts";
import type { ListeningAnnouncement } from "./server.ts";
import { SERVER_VERSION } from "./version.ts";

/** The supervisor's announcement: the usual fields, plus each worker. */
export interface WorkersAnnouncement extends ListeningAnnouncement {
  /** Every worker: process, node name, STUN addresses. */
  workers: { pid: number; node: string; stun: { hostname: string; port: number }[] }[];
}

/** Flags the supervisor sets per worker (removed from the arguments it passes on). */
const PER_WORKER_FLAGS = new Set([
  "--supervised",
  "--alt-port",
  "--metrics",
  "--workers",
  "--tcp-port",
  "--stun-port",
  "--node-name",
  "--reuse-port",
  "--worker-link",
]);
const VALUELESS = new Set(["--reuse-port", "--supervised", "--worker-link"]);
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const MAX_RESTARTS = 10;

/**
 * `args` without the flags the supervisor sets for each worker.
 *
 * @example
 * ```ts
 * console.log(workerBaseArgs(["--workers", "2", "--cluster", "nats://n:4222", "--tcp-port=0"]));
 * // ["--cluster", "nats://n:4222"]
 * ```
 */
export function workerBaseArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.split("=")[0];
    if (!PER_WORKER_FLAGS.has(name)) {
      out.push(arg);
      continue;
    }
    if (!arg.includes("=") && !VALUELESS.has(name)) i++; // skip its value
  }
  return out;
}

interface Worker {
  index: number;
  node: string;
  args: string[];
  child: Deno.ChildProcess;
  announcement: ListeningAnnouncement;
  restarts: number;
}

/**
 * Runs `config.workers` server processes until `stopped` resolves; returns the exit code.
 * `writeOut` receives the one announcement line.
 */
export async function runWorkers(
  args: readonly string[],
  config: ServerConfig,
  log: Logger,
  stopped: Promise<string>,
  writeOut: (line: string) => void,
): Promise<number> {
  const base = config.nodeName ?? `node-${systemRuntime.randomBytes(4).toHex()}`;
  const common = workerBaseArgs(args);
  // The workers' secret for their relay links (cluster/sibling_links.ts), given on their stdin.
  const linkSecret = systemRuntime.randomBytes(16).toHex();
  const workers: Worker[] = [];
  let stopping = false;
  const argsOf = (index: number, tcpPort: number) => [
    ...common,
    "--workers",
    "1",
    "--reuse-port",
    "--supervised",
    "--worker-link",
    "--node-name",
    `${base}-${index}`,
    "--tcp-port",
    String(tcpPort),
    "--stun-port",
    String(config.stunPort === 0 ? 0 : config.stunPort + index),
    ...(config.stun.altPort === undefined
      ? []
      : ["--alt-port", String(config.stun.altPort === 0 ? 0 : config.stun.altPort + index)]),
    ...(config.metrics === undefined ? [] : [
      "--metrics",
      `${
        config.metrics.hostname.includes(":")
          ? `[${config.metrics.hostname}]`
          : config.metrics.hostname
      }:${config.metrics.port === 0 ? 0 : config.metrics.port + index}`,
    ]),
  ];
  try {
    let tcpPort = config.tcpPort;
    for (let index = 0; index < config.workers; index++) {
      const workerArgs = argsOf(index, tcpPort);
      const { child, announcement } = await spawnWorker(workerArgs, linkSecret);
      tcpPort = announcement.tcp.port;
      workers.push({
        index,
        node: `${base}-${index}`,
        args: workerArgs,
        child,
        announcement,
        restarts: 0,
      });
    }
  } catch (error) {
    log.fatal("cannot start the workers: {error}", { error: String(error) });
    await stopAll(workers);
    return 1;
  }
  const first = workers[0].announcement;
  const announcement: WorkersAnnouncement = {
    event: "listening",
    pid: Deno.pid,
    version: SERVER_VERSION,
    tcp: first.tcp,
    stun: workers.flatMap((w) => w.announcement.stun),
    workers: workers.map((w) => ({ pid: w.child.pid, node: w.node, stun: w.announcement.stun })),
  };
  writeOut(JSON.stringify(announcement) + "\n");
  log.info("{count} workers listening on TCP port {port}", {
    count: workers.length,
    port: first.tcp.port,
  });
  for (const worker of workers) watch(worker);

  function watch(worker: Worker): void {
    worker.child.status.then(async (status) => {
      if (stopping) return;
      log.error("worker {node} exited with {code}", { node: worker.node, code: status.code });
      if (worker.restarts >= MAX_RESTARTS) {
        log.error("worker {node} restarted too often: not restarting it", { node: worker.node });
        return;
      }
      worker.restarts++;
      await sleep(systemRuntime, 1000);
      if (stopping) return;
      try {
        const { child, announcement } = await spawnWorker(worker.args, linkSecret);
        worker.child = child;
        worker.announcement = announcement;
        log.info("worker {node} restarted (pid {pid})", { node: worker.node, pid: child.pid });
        watch(worker);
      } catch (error) {
        log.error("restarting worker {node} failed: {error}", {
          node: worker.node,
          error: String(error),
        });
      }
    });
  }

  const signal = await stopped;
  stopping = true;
  log.info("{signal} received: stopping {count} workers", { signal, count: workers.length });
  return await stopAll(workers) ? 0 : 1;
}

async function spawnWorker(
  args: string[],
  linkSecret: string,
): Promise<{ child: Deno.ChildProcess; announcement: ListeningAnnouncement }> {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      ...SERVER_RUNTIME_FLAGS,
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      new URL("./main.ts", import.meta.url).pathname,
      ...args,
    ],
    // Our end of its stdin stays open as long as we live: when it closes (we exit or are
    // killed), the worker shuts down (--supervised).
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  // The first line of its stdin is the link secret (--worker-link); the pipe then stays open.
  const stdin = child.stdin.getWriter();
  stdin.write(new TextEncoder().encode(linkSecret + "\n")).catch(() => {});
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = systemRuntime.setTimer(
      () => reject(new Error("no announcement in time")),
      START_TIMEOUT_MS,
    );
  });
  try {
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`worker exited before listening (${args.join(" ")})`);
      text += value;
      if (text.length > 64 * 1024) throw new Error("worker announcement too long");
    }
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    throw error;
  } finally {
    systemRuntime.clearTimer(timer);
  }
  // Keep draining stdout (nothing more is expected) so the worker never blocks on it.
  (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {
      // closed
    }
  })();
  return { child, announcement: JSON.parse(text.slice(0, text.indexOf("\n"))) };
}

async function stopAll(workers: Worker[]): Promise<boolean> {
  for (const worker of workers) {
    try {
      worker.child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  let timer: number | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = systemRuntime.setTimer(() => resolve("timeout"), STOP_TIMEOUT_MS);
  });
  let clean = true;
  for (const worker of workers) {
    const outcome = await Promise.race([worker.child.status, deadline]);
    if (outcome === "timeout" || !outcome.success) clean = false;
    if (outcome === "timeout") {
      try {
        worker.child.kill("SIGKILL");
      } catch {
        // gone
      }
      await worker.child.status;
    }
  }
  systemRuntime.clearTimer(timer);
  return clean;
}
