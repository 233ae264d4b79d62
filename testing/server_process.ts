/**
 * Runs the REAL server program (`stun_server/main.ts`) as a child process for integration
 * tests: on loopback with port 0 by default, waiting (with a deadline) for its listening
 * announcement, and stopping it with SIGTERM while checking it exits with code 0.
 *
 * @module
 */

/** The line the server prints on stdout once it listens (see `stun_server/server.ts`). */
export interface ServerAnnouncement {
  /** Always `"listening"`. */
  event: "listening";
  /** The server's process ID. */
  pid: number;
  /** The server's version. */
  version: string;
  /** The signaling service's TCP address. */
  tcp: { hostname: string; port: number };
  /** The STUN service's UDP addresses. */
  stun: { hostname: string; port: number }[];
  /** The metrics endpoint's address (with `--metrics`). */
  metrics?: { hostname: string; port: number };
}

/** Options of {@linkcode ServerProcess.start}. */
export interface ServerProcessOptions {
  /**
   * Extra server flags. `--host 127.0.0.1`, `--tcp-port 0` and `--stun-port 0` are added unless
   * these flags are given here.
   */
  args?: string[];
  /** Deadline for the listening announcement, in ms (default 60,000). */
  startTimeoutMs?: number;
  /** The program to run (default: this repository's `stun_server/main.ts`). */
  entry?: string | URL;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Extra `deno run` flags placed before the program (e.g. `--v8-flags=...`). */
  denoFlags?: string[];
}

import { SERVER_RUNTIME_FLAGS } from "../stun_server/runtime_flags.ts";
import { readLines } from "./read_lines.ts";

const REPO = new URL("../", import.meta.url);
const DEFAULT_ENTRY = new URL("stun_server/main.ts", REPO);
const MAX_LOG_CHARS = 1 << 20;

/**
 * A running server process.
 *
 * @example
 * ```ts
 * const server = await ServerProcess.start({ args: ["--heartbeat-ms", "500"] });
 * try {
 *   console.log(server.tcpPort, server.stunPort);
 * } finally {
 *   await server.stop(); // SIGTERM; throws unless the exit code is 0
 * }
 * ```
 */
export class ServerProcess {
  readonly #options: ServerProcessOptions;
  readonly #args: string[];
  #child: Deno.ChildProcess;
  #announcement: ServerAnnouncement;
  #stderr: { text: string };
  #pumps: Promise<void>;
  #status: Promise<Deno.CommandStatus>;
  #running = true;

  private constructor(
    options: ServerProcessOptions,
    args: string[],
    started: Started,
  ) {
    this.#options = options;
    this.#args = args;
    this.#child = started.child;
    this.#announcement = started.announcement;
    this.#stderr = started.stderr;
    this.#pumps = started.pumps;
    this.#status = started.child.status;
  }

  /**
   * Spawns the server and waits for its listening announcement. On a deadline or an early exit
   * the child is killed and the error carries its stderr.
   *
   * @example
   * ```ts
   * const server = await ServerProcess.start();
   * await server.stop();
   * ```
   */
  static async start(options: ServerProcessOptions = {}): Promise<ServerProcess> {
    const args = withDefaults(options.args ?? []);
    return new ServerProcess(options, args, await spawn(options, args));
  }

  /** The announcement the server printed. */
  get announcement(): ServerAnnouncement {
    return this.#announcement;
  }

  /** The server's process ID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** The host clients should connect to (the `--host` given, default `127.0.0.1`). */
  get host(): string {
    const i = this.#args.indexOf("--host");
    return this.#args[i + 1];
  }

  /** The bound TCP (signaling) port. */
  get tcpPort(): number {
    return this.#announcement.tcp.port;
  }

  /** The bound UDP (STUN) port. */
  get stunPort(): number {
    return this.#announcement.stun[0]?.port ?? 0;
  }

  /** Everything the server wrote on stderr so far (its JSON log lines; last 1 MiB). */
  get logs(): string {
    return this.#stderr.text;
  }

  /**
   * The server's resident memory in KiB, from `/proc/<pid>/status` (Linux).
   *
   * @example
   * ```ts
   * const server = await ServerProcess.start();
   * console.log(await server.rssKiB());
   * await server.stop();
   * ```
   */
  async rssKiB(): Promise<number> {
    const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!match) throw new Error("no VmRSS in /proc status");
    return Number(match[1]);
  }

  /**
   * Sends SIGTERM and waits for the exit; throws (with stderr) unless the exit code is 0.
   * A server still running after `timeoutMs` is killed and an error thrown.
   *
   * @example
   * ```ts
   * const server = await ServerProcess.start();
   * const status = await server.stop();
   * console.log(status.code); // 0
   * ```
   */
  async stop(timeoutMs = 20_000): Promise<Deno.CommandStatus> {
    const status = await this.#terminate("SIGTERM", timeoutMs);
    if (status.code !== 0) {
      throw new Error(
        `server exited with code ${status.code} (signal ${status.signal}); stderr:\n${this.logs}`,
      );
    }
    return status;
  }

  /**
   * Kills the server with SIGKILL (a crash, as clients see it) and waits for it to be gone.
   *
   * @example
   * ```ts
   * const server = await ServerProcess.start();
   * await server.kill();
   * ```
   */
  async kill(): Promise<Deno.CommandStatus> {
    return await this.#terminate("SIGKILL", 20_000);
  }

  /**
   * Stops the server (SIGTERM, exit code 0 checked) and starts it again with the same flags on
   * the same ports, so clients can reconnect to the address they knew.
   *
   * @example
   * ```ts
   * const server = await ServerProcess.start();
   * await server.restart();
   * await server.stop();
   * ```
   */
  async restart(): Promise<void> {
    const tcp = String(this.tcpPort);
    const stun = String(this.stunPort);
    await this.stop();
    const args = [...this.#args];
    args[args.indexOf("--tcp-port") + 1] = tcp;
    args[args.indexOf("--stun-port") + 1] = stun;
    const started = await spawn(this.#options, args);
    this.#child = started.child;
    this.#announcement = started.announcement;
    this.#stderr = started.stderr;
    this.#pumps = started.pumps;
    this.#status = started.child.status;
    this.#running = true;
  }

  /** Stops the server if it still runs (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#running) await this.kill();
  }

  async #terminate(signal: Deno.Signal, timeoutMs: number): Promise<Deno.CommandStatus> {
    if (this.#running) {
      try {
        this.#child.kill(signal);
      } catch {
        // already exited
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<null>((resolve) =>
      timer = setTimeout(() => resolve(null), timeoutMs)
    );
    let status = await Promise.race([this.#status, timedOut]);
    clearTimeout(timer);
    if (status === null) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone meanwhile
      }
      await this.#status;
      await this.#pumps;
      this.#running = false;
      throw new Error(
        `server did not exit within ${timeoutMs} ms of ${signal}; stderr:\n${this.logs}`,
      );
    }
    status = status as Deno.CommandStatus;
    await this.#pumps;
    this.#running = false;
    return status;
  }
}

interface Started {
  child: Deno.ChildProcess;
  announcement: ServerAnnouncement;
  stderr: { text: string };
  pumps: Promise<void>;
}

function withDefaults(args: string[]): string[] {
  const result = [...args];
  if (!result.includes("--host")) result.push("--host", "127.0.0.1");
  if (!result.includes("--tcp-port")) result.push("--tcp-port", "0");
  if (!result.includes("--stun-port")) result.push("--stun-port", "0");
  return result;
}

async function spawn(options: ServerProcessOptions, args: string[]): Promise<Started> {
  const entry = options.entry ?? DEFAULT_ENTRY;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      ...SERVER_RUNTIME_FLAGS,
      "--config",
      new URL("deno.json", REPO).pathname,
      ...(options.denoFlags ?? []),
      entry instanceof URL ? entry.pathname : entry,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const stderr = { text: "" };
  const stderrPump = pumpText(child.stderr, (chunk) => {
    stderr.text += chunk;
    if (stderr.text.length > MAX_LOG_CHARS) stderr.text = stderr.text.slice(-MAX_LOG_CHARS);
  });
  const announced = Promise.withResolvers<ServerAnnouncement>();
  const stdoutPump = (async () => {
    try {
      for await (const line of readLines(child.stdout, 65_536)) {
        try {
          const value = JSON.parse(line);
          if (value?.event === "listening") announced.resolve(value as ServerAnnouncement);
        } catch {
          // not JSON: ignore
        }
      }
    } catch {
      // the child went away
    }
  })();
  const pumps = Promise.all([stdoutPump, stderrPump]).then(() => {});
  const deadline = options.startTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failure = Promise.race([
    child.status.then((s) => `exited early with code ${s.code}`),
    new Promise<string>((resolve) =>
      timer = setTimeout(() => resolve(`no listening announcement within ${deadline} ms`), deadline)
    ),
  ]);
  const outcome = await Promise.race([announced.promise, failure]);
  clearTimeout(timer);
  if (typeof outcome === "string") {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await pumps;
    throw new Error(`server ${outcome}; stderr:\n${stderr.text}`);
  }
  return { child, announcement: outcome, stderr, pumps };
}

async function pumpText(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  } catch {
    // the child went away
  }
}
