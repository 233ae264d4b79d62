/**
 * Starting the real server (`stun_server/main.ts`) for a benchmark, with the flags its `--help`
 * says it has.
 *
 * @module
 */
import { SERVER_RUNTIME_FLAGS } from "../stun_server/runtime_flags.ts";
import { ChildProcess } from "./process.ts";
import { type ProfileEntry, readNewestProfile, summarizeCpuProfile } from "./profile.ts";

/** Permissions the server runs with: exactly those of `deno task server` and the binaries. */
export const SERVER_RUN_FLAGS: readonly string[] = ["--no-prompt", ...SERVER_RUNTIME_FLAGS];

/**
 * Returns the server's `--help` text, or throws an Error saying why the server is not available.
 *
 * @example
 * ```ts
 * const help = await serverHelp("/work/main");
 * ```
 */
export async function serverHelp(repoRoot: string): Promise<string> {
  const main = `${repoRoot}/stun_server/main.ts`;
  try {
    await Deno.stat(main);
  } catch {
    throw new Error("stun_server/main.ts does not exist yet");
  }
  const result = await new Deno.Command("deno", {
    args: ["run", "-A", main, "--help"],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  if (!result.success || !text.includes("--stun-port")) {
    throw new Error(`stun_server/main.ts --help failed: ${text.trim().slice(0, 300)}`);
  }
  return text;
}

/**
 * Picks the flags of `wanted` that the help text lists, keeping each flag's value.
 *
 * @example
 * ```ts
 * const args = supportedFlags("  --host <host>\n", [["--host", "127.0.0.1"], ["--nope", "1"]]);
 * console.log(args); // ["--host", "127.0.0.1"]
 * ```
 */
export function supportedFlags(help: string, wanted: readonly [string, string][]): string[] {
  const out: string[] = [];
  for (const [flag, value] of wanted) {
    if (new RegExp(`(^|[\\s,])${flag}(?![\\w-])`).test(help)) out.push(flag, value);
  }
  return out;
}

/** How to start the server. */
export interface OurServerOptions {
  /** Repository root. */
  repoRoot: string;
  /** UDP STUN port. */
  stunPort: number;
  /** TCP signaling port. */
  tcpPort: number;
  /** CPU to pin to. */
  cpu?: number;
  /** Extra flags (already filtered by {@linkcode supportedFlags}). */
  extraArgs?: string[];
  /** Extra V8 flags or `deno run` options (e.g. `--cpu-prof`). */
  denoArgs?: string[];
  /** Record a V8 CPU profile into this directory (written when the server exits). */
  profileDir?: string;
}

/**
 * Starts the server on loopback and returns the running child.
 *
 * @example
 * ```ts
 * const server = startOurServer({ repoRoot: "/work/main", stunPort: 40000, tcpPort: 40001 });
 * await server.stop();
 * ```
 */
export function startOurServer(options: OurServerOptions): ChildProcess {
  return ChildProcess.start({
    command: "deno",
    args: [
      "run",
      ...SERVER_RUN_FLAGS,
      ...(options.denoArgs ?? []),
      ...(options.profileDir === undefined
        ? []
        : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`]),
      `${options.repoRoot}/stun_server/main.ts`,
      "--stun-port",
      String(options.stunPort),
      "--tcp-port",
      String(options.tcpPort),
      ...(options.extraArgs ?? []),
    ],
    cwd: options.repoRoot,
    cpu: options.cpu,
    label: "our server",
  });
}

/**
 * Waits for the server's `{"event":"listening",...}` line on stdout and returns its TCP port.
 * Throws with the server's stderr when it does not come within `timeoutMs`.
 *
 * @example
 * ```ts
 * const server = startOurServer({ repoRoot: "/work/main", stunPort: 0, tcpPort: 0 });
 * const tcpPort = await waitForListening(server, 20_000);
 * await server.stop();
 * ```
 */
export async function waitForListening(server: ChildProcess, timeoutMs: number): Promise<number> {
  const line = await server.waitForLine((l) => l.includes('"listening"'), timeoutMs);
  const port = JSON.parse(line)?.tcp?.port;
  if (typeof port !== "number") throw new Error(`unexpected listening line: ${line}`);
  return port;
}

/**
 * Stops a server started with `profileDir` (SIGTERM: it shuts down gracefully, which writes the
 * profile) and returns the summary of its profile, or null when none was written.
 *
 * @example
 * ```ts
 * // const entries = await stopAndSummarize(server, dir, repoRoot);
 * ```
 */
export async function stopAndSummarize(
  server: ChildProcess,
  profileDir: string,
  repoRoot: string,
): Promise<ProfileEntry[] | null> {
  await server.stop("SIGTERM", 15_000);
  const profile = await readNewestProfile(profileDir);
  return profile === null ? null : summarizeCpuProfile(profile, 15, `file://${repoRoot}/`);
}
