/**
 * Building the delay holder (`natlab/native/nfqueue_delay.c`) with gcc. The binary is cached
 * under the system's temporary directory by the hash of its source, so a run compiles it at
 * most once.
 *
 * @module
 */

import { type CommandRunner, runCommand } from "./command.ts";

const SOURCE = new URL("./native/nfqueue_delay.c", import.meta.url);

let built: Promise<string> | undefined;

/**
 * The path of the compiled delay holder, compiling it first if needed.
 *
 * @example
 * ```ts
 * const holder = await delayHolderBinary();
 * ```
 */
export function delayHolderBinary(runner: CommandRunner = runCommand): Promise<string> {
  built ??= (async () => {
    const source = await Deno.readFile(SOURCE);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", source)).toHex();
    const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
    const binary = `${tmp}/natlab-nfqueue-delay-${digest.slice(0, 16)}`;
    try {
      if (Deno.statSync(binary).isFile) return binary;
    } catch {
      // Not built yet.
    }
    const partial = `${binary}.${Deno.pid}.${crypto.randomUUID()}.partial`;
    await runner(["gcc", "-O2", "-Wall", "-o", partial, SOURCE.pathname]);
    await Deno.rename(partial, binary);
    return binary;
  })();
  built.catch(() => built = undefined);
  return built;
}
