/**
 * Runs a real `nats-server` (Debian's package) for cluster tests and benchmarks: on loopback, on
 * a free port, with a bounded wait until it accepts connections, and stopped (killed) by the
 * caller in `finally`. It can be stopped and started again on the same port, which is how the
 * tests take NATS away from a running cluster and give it back.
 *
 * @module
 */

/** Options of {@linkcode NatsServer.start}. */
export interface NatsServerOptions {
  /** TCP port (default: a free one). */
  port?: number;
  /** Deadline for the server to accept connections, in ms (default 15,000). */
  startTimeoutMs?: number;
  /** The executable (default `nats-server` on the PATH). */
  executable?: string;
}

const MAX_LOG_CHARS = 256 * 1024;

/** A free TCP port on 127.0.0.1 (bound, read and released). */
export function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether `nats-server` can be run here (tests skip with a clear message when not). */
export async function natsServerAvailable(executable = "nats-server"): Promise<boolean> {
  try {
    const output = await new Deno.Command(executable, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return output.success;
  } catch {
    return false;
  }
}

/**
 * A running `nats-server` on 127.0.0.1.
 *
 * @example
 * ```ts
 * const nats = await NatsServer.start();
 * try {
 *   console.log(nats.url); // nats://127.0.0.1:<port>
 *   await nats.stop();
 *   await nats.restart(); // same port
 * } finally {
 *   await nats.stop();
 * }
 * ```
 */
export class NatsServer {
  readonly port: number;
  readonly #options: NatsServerOptions;
  #child: Deno.ChildProcess | null = null;
  #log = "";

  private constructor(port: number, options: NatsServerOptions) {
    this.port = port;
    this.#options = options;
  }

  /** Starts `nats-server` and waits (bounded) until it accepts TCP connections. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options.port ?? freeTcpPort(), options);
    await server.restart();
    return server;
  }

  /** The client URL. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The process ID while running, else null. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== null;
  }

  /** What the server printed (bounded), for failure messages. */
  get log(): string {
    return this.#log;
  }

  /** Starts the server again on the same port (no-op while running). */
  async restart(): Promise<void> {
    if (this.#child !== null) return;
    const child = new Deno.Command(this.#options.executable ?? "nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(this.port), "--no_advertise"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#pump(child.stdout);
    this.#pump(child.stderr);
    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 15_000);
    let exited = false;
    child.status.then(() => exited = true);
    for (let attempt = 0; attempt < 10_000; attempt++) {
      if (exited) break;
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        conn.close();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await this.stop();
    throw new Error(`nats-server did not start on port ${this.port}:\n${this.#log}`);
  }

  /** Kills the server (SIGKILL, as a crash would) and waits for it to exit. Idempotent. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }

  #pump(stream: ReadableStream<Uint8Array>): void {
    (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of stream) {
          if (this.#log.length < MAX_LOG_CHARS) this.#log += decoder.decode(chunk);
        }
      } catch {
        // closed
      }
    })();
  }
}

/**
 * Polls `condition` every `stepMs` (real time) until it holds or `timeoutMs` pass; returns whether
 * it held. For tests against real processes (no fixed sleeps).
 *
 * @example
 * ```ts
 * let ready = false;
 * setTimeout(() => ready = true, 10);
 * console.log(await pollUntil(() => ready, 1000)); // true
 * ```
 */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 20,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return false;
}
