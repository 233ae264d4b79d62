/**
 * A program running inside a namespace of a lab: its JSON events (stdout), the tail of its
 * stderr for diagnostics, a way to send it command lines, and a bounded stop.
 *
 * @module
 */

import { EventLog } from "./json_lines.ts";
import type { NatLab } from "./lab.ts";

/** How much of a child's stderr is kept, in characters. */
export const STDERR_TAIL_CHARS = 16_384;

/**
 * A program started in a lab namespace.
 *
 * @example
 * ```ts
 * import { NatLab } from "./lab.ts";
 * await using lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
 * await using echo = LabProcess.start(lab, lab.publicNamespace, ["cat"]);
 * await echo.command('{"hello":1}');
 * await echo.log.waitFor((e) => e.hello === 1, 5000, "echo");
 * ```
 */
export class LabProcess {
  /** The program's JSON events from stdout. */
  readonly log: EventLog;
  /** When the program was started (`performance.now()`). */
  readonly startedAt: number;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stderrTail = "";
  #stderrDone: Promise<void>;
  #stopped: Promise<Deno.CommandStatus> | undefined;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.startedAt = performance.now();
    this.log = new EventLog(child.stdout);
    this.#stdin = child.stdin.getWriter();
    this.#stderrDone = this.#drainStderr(child.stderr);
  }

  /**
   * Starts `argv` in `namespace` of `lab`.
   *
   * @example
   * ```ts
   * import { NatLab } from "./lab.ts";
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * const child = LabProcess.start(lab, lab.host("a").namespace, ["cat"]);
   * await child.stop();
   * await lab.destroy();
   * ```
   */
  static start(lab: NatLab, namespace: string, argv: readonly string[]): LabProcess {
    return new LabProcess(lab.spawn(namespace, argv));
  }

  async #drainStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.#stderrTail = (this.#stderrTail + decoder.decode(chunk, { stream: true }))
          .slice(-STDERR_TAIL_CHARS);
      }
    } catch {
      // Torn down: keep what was read.
    }
  }

  /** The last {@linkcode STDERR_TAIL_CHARS} characters the program wrote on stderr. */
  get stderrTail(): string {
    return this.#stderrTail;
  }

  /**
   * Writes one command line to the program's stdin. Fails quietly (returns false) when the
   * program has gone.
   *
   * @example
   * ```ts
   * // await client.command("connect 00112233...");
   * ```
   */
  async command(line: string): Promise<boolean> {
    try {
      await this.#stdin.write(new TextEncoder().encode(line + "\n"));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops the program: the optional `exitLine` on stdin and closing stdin, then `signal`, then
   * SIGKILL, each given `graceMs`. Safe to call more than once.
   *
   * @example
   * ```ts
   * // await server.stop({ signal: "SIGTERM" });
   * ```
   */
  stop(
    options: { exitLine?: string; signal?: Deno.Signal; graceMs?: number } = {},
  ): Promise<Deno.CommandStatus> {
    this.#stopped ??= (async () => {
      const grace = options.graceMs ?? 3000;
      const exited = (ms: number) =>
        Promise.race([
          this.#child.status.then(() => true),
          new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), ms);
            this.#child.status.finally(() => clearTimeout(timer));
          }),
        ]);
      if (options.exitLine !== undefined) await this.command(options.exitLine);
      await this.#stdin.close().catch(() => {});
      if (!(await exited(options.exitLine === undefined ? 0 : grace))) {
        try {
          this.#child.kill(options.signal ?? "SIGTERM");
        } catch {
          // Already gone.
        }
        if (!(await exited(grace))) {
          try {
            this.#child.kill("SIGKILL");
          } catch {
            // Already gone.
          }
        }
      }
      const status = await this.#child.status;
      await this.log.done;
      await this.#stderrDone;
      return status;
    })();
    return this.#stopped;
  }

  /** Lets `await using` stop the program. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
