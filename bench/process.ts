/**
 * Child processes for benchmarks: optionally pinned to a CPU with `taskset`, stdout read line by
 * line with deadlines, stderr kept for error messages, always killed at the end.
 *
 * @module
 */

/** How to start a benchmark child process. */
export interface ChildOptions {
  /** Program to run. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** CPU to pin it to with `taskset -c`, or undefined for no pinning. */
  cpu?: number;
  /** Working directory. */
  cwd?: string;
  /** Whether the child gets a stdin pipe (otherwise stdin is null). */
  stdin?: boolean;
  /** A label for error messages. */
  label: string;
}

/** A running child process with line-wise stdout. */
export class ChildProcess {
  /** The label given at start. */
  readonly label: string;
  /** The underlying Deno process. */
  readonly process: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #stderr = "";
  #closed = false;
  readonly #done: Promise<void>;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;

  private constructor(label: string, process: Deno.ChildProcess, withStdin: boolean) {
    this.label = label;
    this.process = process;
    if (withStdin) this.#writer = process.stdin.getWriter();
    this.#done = Promise.all([this.#pumpStdout(), this.#pumpStderr()]).then(() => {});
  }

  /**
   * Starts a child process.
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "echo", args: ["hi"], label: "echo" });
   * console.log(await child.nextLine(1000)); // "hi"
   * await child.stop();
   * ```
   */
  static start(options: ChildOptions): ChildProcess {
    const pinned = options.cpu !== undefined;
    const command = pinned ? "taskset" : options.command;
    const args = pinned
      ? ["-c", String(options.cpu), options.command, ...options.args]
      : options.args;
    const process = new Deno.Command(command, {
      args,
      cwd: options.cwd,
      stdin: options.stdin === true ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new ChildProcess(options.label, process, options.stdin === true);
  }

  /** The child's process ID (taskset execs the program, so it is the program's PID). */
  get pid(): number {
    return this.process.pid;
  }

  /** The last few KiB the child wrote to stderr. */
  get stderrTail(): string {
    return this.#stderr;
  }

  async #pumpStdout(): Promise<void> {
    let pending = "";
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.process.stdout) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          this.#lines.push(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
        this.#wake();
      }
    } catch {
      // The stream errors when the process is killed; nothing more to read.
    }
    if (pending !== "") this.#lines.push(pending);
    this.#closed = true;
    this.#wake();
  }

  async #pumpStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.process.stderr) {
        this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-4096);
      }
    } catch {
      // as above
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits for the next stdout line, up to `timeoutMs`. Throws when the deadline passes or the
   * child closes stdout first.
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "echo", args: ["hi"], label: "echo" });
   * console.log(await child.nextLine(1000));
   * await child.stop();
   * ```
   */
  async nextLine(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#closed) {
        throw new Error(`${this.label}: exited before writing a line. stderr: ${this.#stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.label}: no output within ${timeoutMs} ms. stderr: ${this.#stderr}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
        this.#waiters.push(resolve);
      });
      clearTimeout(timer);
    }
    return this.#lines.shift()!;
  }

  /**
   * Waits for a stdout line that satisfies `predicate`, skipping others, up to `timeoutMs`.
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "printf", args: ["a\\nb\\n"], label: "p" });
   * console.log(await child.waitForLine((l) => l === "b", 1000)); // "b"
   * await child.stop();
   * ```
   */
  async waitForLine(predicate: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = await this.nextLine(Math.max(1, deadline - Date.now()));
      if (predicate(line)) return line;
    }
  }

  /**
   * Writes a line to the child's stdin (started with `stdin: true`).
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "cat", args: [], stdin: true, label: "cat" });
   * await child.writeLine("hello");
   * console.log(await child.nextLine(1000)); // "hello"
   * await child.stop();
   * ```
   */
  async writeLine(line: string): Promise<void> {
    if (this.#writer === null) throw new Error(`${this.label}: started without stdin`);
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /**
   * Closes stdin (when piped), sends `signal` (SIGTERM by default), and after `graceMs` SIGKILL;
   * resolves when the process is gone and its output drained. Returns the exit status.
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "sleep", args: ["10"], label: "sleep" });
   * await child.stop();
   * ```
   */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 3000): Promise<Deno.CommandStatus> {
    if (this.#writer !== null) {
      await this.#writer.close().catch(() => {});
      this.#writer = null;
    }
    try {
      this.process.kill(signal);
    } catch {
      // already exited
    }
    const timer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, graceMs);
    const status = await this.process.status;
    clearTimeout(timer);
    await this.#done;
    return status;
  }

  /**
   * Waits for the process to exit by itself, up to `timeoutMs`, then stops it (SIGTERM, and
   * SIGKILL 10 s later).
   *
   * @example
   * ```ts
   * const child = ChildProcess.start({ command: "true", args: [], label: "true" });
   * console.log((await child.exited(1000)).code); // 0
   * ```
   */
  async exited(timeoutMs: number): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([this.process.status, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") return await this.stop("SIGTERM", 10_000);
    await this.#done;
    return result;
  }
}
