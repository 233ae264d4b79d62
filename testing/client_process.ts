/**
 * Test helper: runs the real client program (`p2p_client/main.ts --json`) as a child process,
 * drives it through stdin, and parses its JSON events from stdout. Every wait is polled with a
 * deadline.
 *
 * @module
 */
import { programRunArgs } from "./programs.ts";
import { readLines } from "./read_lines.ts";

const MAX_LOG_CHARS = 1 << 20;

/** A parsed `--json` event line. */
export type JsonEvent = { type: string } & Record<string, unknown>;

/** How to start a {@linkcode ClientProcess}. */
export interface ClientProcessOptions {
  /** `--server` value(s). */
  servers: string[];
  /** Extra flags. */
  args?: string[];
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Use `--ephemeral` (default true). */
  ephemeral?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Extra `deno run` flags (e.g. `--allow-ffi`), placed before the program. */
  denoFlags?: string[];
}

/**
 * A running client.
 *
 * @example
 * ```ts
 * const client = await ClientProcess.start({ servers: ["127.0.0.1:3478"] });
 * const registered = await client.waitFor((e) => e.type === "registered", 30_000, "registration");
 * await client.stop();
 * ```
 */
export class ClientProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pumps: Promise<void>;
  /** Every event printed so far. */
  readonly events: JsonEvent[] = [];
  /** Lines on stdout that were not one JSON object (must stay empty). */
  readonly badLines: string[] = [];
  #stderr = "";
  #stdinClosed = false;
  #id: string | undefined;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    const stdout = (async () => {
      // A 1 MiB message is one event line, several MiB once JSON-escaped.
      for await (const line of readLines(child.stdout, 16 << 20)) {
        try {
          const value = JSON.parse(line);
          if (typeof value === "object" && value !== null && typeof value.type === "string") {
            this.events.push(value);
          } else this.badLines.push(line);
        } catch {
          this.badLines.push(line);
        }
      }
    })();
    const stderr = (async () => {
      const errDecoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        this.#stderr += errDecoder.decode(chunk, { stream: true });
        if (this.#stderr.length > MAX_LOG_CHARS) this.#stderr = this.#stderr.slice(-MAX_LOG_CHARS);
      }
    })();
    this.#pumps = Promise.all([stdout, stderr]).then(() => {});
  }

  /** Starts a client. */
  static start(options: ClientProcessOptions): ClientProcess {
    const denoArgs = programRunArgs("p2p_client", [
      "--json",
      ...(options.ephemeral === false ? [] : ["--ephemeral"]),
      ...options.servers.flatMap((server) => ["--server", server]),
      ...(options.args ?? []),
    ], options.denoFlags ?? []);
    const [command, args] = options.netns
      ? ["ip", ["netns", "exec", options.netns, Deno.execPath(), ...denoArgs]]
      : [Deno.execPath(), denoArgs];
    const child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: options.env,
    }).spawn();
    return new ClientProcess(child);
  }

  /** The child's process ID (for `/proc/<pid>/status`). */
  get pid(): number {
    return this.#child.pid;
  }

  /** The client's stderr (logs). */
  get logs(): string {
    return this.#stderr;
  }

  /** The registered ID (after {@linkcode ClientProcess.registered}). */
  get id(): string {
    if (!this.#id) throw new Error("client not registered yet");
    return this.#id;
  }

  /** Waits for registration; returns the ID. */
  async registered(timeoutMs = 60_000): Promise<string> {
    const event = await this.waitFor((e) => e.type === "registered", timeoutMs, "registration");
    this.#id = event.id as string;
    return this.#id;
  }

  /** Sends one command line. */
  async command(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Events of `type`. */
  of(type: string): JsonEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  /** Waits (polling, with a deadline) for an event matching `predicate`, from index `from`. */
  async waitFor(
    predicate: (event: JsonEvent) => boolean,
    timeoutMs: number,
    what: string,
    from = 0,
  ): Promise<JsonEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; events:\n${
            this.events.slice(-40).map((e) => JSON.stringify(e)).join("\n")
          }\nstderr:\n${this.#stderr.slice(-4000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Waits until `count` events match `predicate`. */
  async waitForCount(
    predicate: (event: JsonEvent) => boolean,
    count: number,
    timeoutMs: number,
    what: string,
  ): Promise<JsonEvent[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.filter(predicate);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what} (${found.length}/${count}); last events:\n${
            this.events.slice(-20).map((e) => JSON.stringify(e)).join("\n")
          }\nstderr:\n${this.#stderr.slice(-4000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Closes stdin (the client exits once pending messages are delivered or reported). */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    try {
      await this.#writer.close();
    } catch {
      // child gone
    }
  }

  /** Ends the client gracefully (stdin EOF), killing it after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<Deno.CommandStatus> {
    await this.closeStdin();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((
      resolve,
    ) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const status = await Promise.race([this.#child.status, timeout]);
    clearTimeout(timer);
    if (status === null) {
      this.kill();
      const killed = await this.#child.status;
      await this.#pumps;
      return killed;
    }
    await this.#pumps;
    return status;
  }

  /** The child's exit status (resolves when it exits). */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Sends a signal (SIGSTOP / SIGCONT freeze and resume the process, as a closed laptop lid). */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Kills the client at once. */
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }

  /** Kills and reaps (for `finally`). */
  async dispose(): Promise<void> {
    await this.closeStdin();
    this.kill();
    await this.#child.status;
    await this.#pumps;
  }
}

/**
 * Waits, polling every 25 ms, until `condition()` holds; throws after `timeoutMs`.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * import { waitUntil } from "./client_process.ts";
 * let done = false;
 * systemRuntime.setTimer(() => (done = true), 10);
 * await waitUntil(() => done, 1000, "done");
 * ```
 */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
