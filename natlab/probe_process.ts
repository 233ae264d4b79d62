/**
 * Driving the probe tool ({@link ./udp_probe.ts}) in a namespace of a lab.
 *
 * @module
 */

import { EventLog, type JsonEvent } from "./json_lines.ts";
import type { NatLab } from "./lab.ts";

const PROBE_SCRIPT = new URL("./udp_probe.ts", import.meta.url).pathname;

/** How long the probe may take to start (Deno's start-up on a loaded machine), in ms. */
export const PROBE_START_TIMEOUT_MS = 60_000;

/**
 * A running probe. Start with {@linkcode ProbeProcess.start}; always {@linkcode close}.
 *
 * @example
 * ```ts
 * import { NatLab } from "./lab.ts";
 * await using lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
 * await using probe = await ProbeProcess.start(lab, lab.host("a").namespace, ["--udp", "0.0.0.0:0"]);
 * console.log(probe.udp[0]);
 * ```
 */
export class ProbeProcess {
  /** The probe's events. */
  readonly log: EventLog;
  /** The addresses its UDP sockets are bound to. */
  udp: string[] = [];
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #closed: Promise<void> | undefined;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.log = new EventLog(child.stdout);
    this.#stdin = child.stdin.getWriter();
  }

  /**
   * Starts the probe with these arguments in `namespace` and waits until it is ready.
   *
   * @example
   * ```ts
   * import { NatLab } from "./lab.ts";
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * const probe = await ProbeProcess.start(lab, lab.publicNamespace, ["--udp", "198.18.0.1:3000", "--echo"]);
   * await probe.close();
   * await lab.destroy();
   * ```
   */
  static async start(
    lab: NatLab,
    namespace: string,
    args: readonly string[],
  ): Promise<ProbeProcess> {
    const child = lab.spawn(namespace, [
      Deno.execPath(),
      "run",
      "--no-prompt",
      "--allow-net",
      "--allow-read",
      PROBE_SCRIPT,
      ...args,
    ], { stderr: "null" });
    const probe = new ProbeProcess(child);
    try {
      const ready = await probe.log.waitFor(
        (e) => e.type === "ready" || e.type === "error",
        PROBE_START_TIMEOUT_MS,
        "probe ready",
      );
      if (ready.type !== "ready") throw new Error(`probe failed: ${String(ready.message)}`);
      probe.udp = ready.udp as string[];
    } catch (error) {
      await probe.close();
      throw error;
    }
    return probe;
  }

  /**
   * Sends one command line to the probe.
   *
   * @example
   * ```ts
   * // await probe.command("send 0 198.18.0.1:3000 hello");
   * ```
   */
  async command(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /**
   * The datagrams received so far on one socket.
   *
   * @example
   * ```ts
   * // probe.received(0).map((e) => e.text);
   * ```
   */
  received(socket = 0): JsonEvent[] {
    return this.log.events.filter((e) => e.type === "recv" && e.socket === socket);
  }

  /**
   * Stops the probe (asks it to exit, kills it if it does not) and waits for it.
   *
   * @example
   * ```ts
   * // await probe.close();
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#stdin.write(new TextEncoder().encode("exit\n")).catch(() => {});
      await this.#stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5000);
      await this.#child.status;
      clearTimeout(timer);
      await this.log.done;
    })();
    return this.#closed;
  }

  /** Lets `await using` close the probe. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
