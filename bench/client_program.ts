/**
 * Driving the real client program (`p2p_client/main.ts --json`) from a benchmark: commands on
 * stdin, one JSON event per stdout line.
 *
 * @module
 */
import { CLIENT_RUNTIME_FLAGS } from "../p2p_client/runtime_flags.ts";
import type { BenchContext } from "./context.ts";
import { ChildProcess } from "./process.ts";

/** Permissions the client runs with: exactly those of `deno task client` and the binaries. */
export const CLIENT_RUN_FLAGS: readonly string[] = ["--no-prompt", ...CLIENT_RUNTIME_FLAGS];

/** One `--json` event: an object with a string `type`. */
export type ClientEventLine = { type: string; [key: string]: unknown };

/**
 * Parses one stdout line of `--json` mode; null for anything that is not a JSON event.
 *
 * @example
 * ```ts
 * console.log(parseClientEvent('{"type":"registered","id":"ab"}')?.type); // "registered"
 * console.log(parseClientEvent("hello")); // null
 * ```
 */
export function parseClientEvent(line: string): ClientEventLine | null {
  if (!line.startsWith("{")) return null;
  try {
    const value = JSON.parse(line);
    return typeof value?.type === "string" ? value as ClientEventLine : null;
  } catch {
    return null;
  }
}

/** How to start a client. */
export interface ClientProgramOptions {
  /** Repository root. */
  repoRoot: string;
  /** The server's TCP port on 127.0.0.1. */
  serverPort: number;
  /** CPU to pin to. */
  cpu?: number;
  /** Pass `--relay-only`. */
  relayOnly?: boolean;
  /** Further flags. */
  extraArgs?: string[];
  /** Further `deno run` flags (e.g. `--cpu-prof`), after the client's own. */
  denoFlags?: string[];
  /** Leave `--allow-ffi` out of the client's flags (`node:crypto`, the kernel's UDP buffers). */
  withoutFfi?: boolean;
  /** A label for errors. */
  label: string;
}

/** A running client program. */
export class ClientProgram {
  /** The client's peer ID (from its `registered` event). */
  readonly id: string;
  /** The process. */
  readonly child: ChildProcess;

  private constructor(child: ChildProcess, id: string) {
    this.child = child;
    this.id = id;
  }

  /**
   * Starts a client with an ephemeral identity and waits for its `registered` event.
   *
   * @example
   * ```ts
   * // const a = await ClientProgram.start({ repoRoot, serverPort, label: "A" });
   * ```
   */
  static async start(options: ClientProgramOptions, timeoutMs = 30_000): Promise<ClientProgram> {
    const child = ChildProcess.start({
      command: "deno",
      args: [
        "run",
        ...CLIENT_RUN_FLAGS.filter((f) => !(options.withoutFfi === true && f === "--allow-ffi")),
        ...(options.denoFlags ?? []),
        `${options.repoRoot}/p2p_client/main.ts`,
        "--ephemeral",
        "--json",
        "--server",
        `127.0.0.1:${options.serverPort}`,
        "--bind",
        "127.0.0.1",
        ...(options.relayOnly === true ? ["--relay-only"] : []),
        ...(options.extraArgs ?? []),
      ],
      cwd: options.repoRoot,
      cpu: options.cpu,
      stdin: true,
      label: `client ${options.label}`,
    });
    try {
      const line = await child.waitForLine(
        (l) => parseClientEvent(l)?.type === "registered",
        timeoutMs,
      );
      return new ClientProgram(child, String(parseClientEvent(line)?.id));
    } catch (error) {
      await child.stop();
      throw error;
    }
  }

  /**
   * Writes one command line (e.g. `connect <id>`, `send <id> <text>`).
   *
   * @example
   * ```ts
   * // await client.command(`connect ${other.id}`);
   * ```
   */
  async command(line: string): Promise<void> {
    await this.child.writeLine(line);
  }

  /**
   * Waits for an event that satisfies `predicate`, skipping others.
   *
   * @example
   * ```ts
   * // await client.waitFor((e) => e.type === "peer" && e.state === "direct", 10_000);
   * ```
   */
  async waitFor(
    predicate: (event: ClientEventLine) => boolean,
    timeoutMs: number,
  ): Promise<ClientEventLine> {
    const line = await this.child.waitForLine((l) => {
      const event = parseClientEvent(l);
      return event !== null && predicate(event);
    }, timeoutMs);
    return parseClientEvent(line)!;
  }

  /**
   * Asks the client to quit and makes sure it is gone.
   *
   * @example
   * ```ts
   * // await client.stop();
   * ```
   */
  async stop(): Promise<void> {
    await this.child.writeLine("quit").catch(() => {});
    await this.child.stop("SIGTERM", 3000);
  }
}

/**
 * Starts two clients against the server on `serverPort` — A on the server's CPU, B on the load
 * generator's — runs `body`, and stops both whatever happens.
 *
 * @example
 * ```ts
 * // const ms = await withClientPair(context, port, {}, async (a, b) => { ... });
 * ```
 */
export async function withClientPair<T>(
  context: BenchContext,
  serverPort: number,
  options: {
    relayOnly?: boolean;
    extraArgs?: (label: string) => string[];
    denoFlags?: string[];
    withoutFfi?: boolean;
  },
  body: (a: ClientProgram, b: ClientProgram) => Promise<T>,
): Promise<T> {
  const start = (cpu: number | undefined, label: string) =>
    ClientProgram.start({
      repoRoot: context.repoRoot,
      serverPort,
      cpu,
      relayOnly: options.relayOnly,
      extraArgs: options.extraArgs?.(label),
      denoFlags: options.denoFlags,
      withoutFfi: options.withoutFfi,
      label,
    });
  const a = await start(context.serverCpu, "A");
  let b: ClientProgram | null = null;
  try {
    b = await start(context.loadCpu, "B");
    return await body(a, b);
  } finally {
    await a.stop();
    if (b !== null) await b.stop();
  }
}
