/**
 * Running the system tools the lab is built with (`ip`, `nft`, `sysctl`), with typed errors.
 *
 * @module
 */

/** Thrown when a lab command exits with a non-zero status or cannot be started. */
export class LabCommandError extends Error {
  /**
   * @param argv The command that failed.
   * @param code Its exit code (-1 when it could not start).
   * @param stderr What it printed on stderr.
   */
  constructor(readonly argv: readonly string[], readonly code: number, readonly stderr: string) {
    super(`command failed (exit ${code}): ${argv.join(" ")}: ${stderr.trim()}`);
    this.name = "LabCommandError";
  }
}

/** Runs a command and returns its stdout; throws {@linkcode LabCommandError} on failure. */
export type CommandRunner = (argv: readonly string[], stdin?: string) => Promise<string>;

/** How long one lab command may take before it is killed, in milliseconds. */
export const COMMAND_TIMEOUT_MS = 30_000;

/**
 * The real command runner: starts the program, feeds `stdin`, waits at most
 * {@linkcode COMMAND_TIMEOUT_MS}.
 *
 * @example
 * ```ts
 * const out = await runCommand(["ip", "netns", "list"]);
 * ```
 */
export async function runCommand(argv: readonly string[], stdin?: string): Promise<string> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new LabCommandError(argv, -1, String(error));
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, COMMAND_TIMEOUT_MS);
  try {
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(stdin)).catch(() => {});
      await writer.close().catch(() => {});
    }
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new LabCommandError(argv, output.code, new TextDecoder().decode(output.stderr));
    }
    return stdout;
  } finally {
    clearTimeout(timer);
  }
}
