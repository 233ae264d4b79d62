/**
 * Can this run build a NAT lab? It needs Linux, root, `ip` and `nft`, and permission to create
 * network namespaces (a container may refuse).
 *
 * @module
 */

import { type CommandRunner, runCommand } from "./command.ts";

/** The answer of {@linkcode checkLabSupport}. */
export type LabSupport = { ok: true } | { ok: false; reason: string };

/**
 * Checks whether namespaces, veth pairs and nftables can be used here. The check creates and
 * deletes one throw-away namespace.
 *
 * @example
 * ```ts
 * const support = await checkLabSupport();
 * if (!support.ok) console.log(`NAT lab unavailable: ${support.reason}`);
 * ```
 */
export async function checkLabSupport(runner: CommandRunner = runCommand): Promise<LabSupport> {
  if (Deno.build.os !== "linux") {
    return { ok: false, reason: `needs Linux, this is ${Deno.build.os}` };
  }
  if (Deno.uid() !== 0) return { ok: false, reason: "needs root (network namespaces, nftables)" };
  // Random, so that test workers sharing this process ID do not collide.
  const name = `nlab${Deno.pid}x${Math.floor(Math.random() * 1e9)}-check`;
  try {
    await runner(["ip", "netns", "add", name]);
  } catch (error) {
    return { ok: false, reason: `cannot create a network namespace: ${String(error)}` };
  }
  try {
    await runner([
      "ip",
      "-n",
      name,
      "link",
      "add",
      "name",
      "v0",
      "type",
      "veth",
      "peer",
      "name",
      "v1",
    ]);
    await runner(["ip", "-n", name, "link", "add", "name", "br0", "type", "bridge"]);
    await runner(["ip", "netns", "exec", name, "nft", "-f", "-"], "table ip natlabcheck {\n}\n");
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `namespace tools unusable: ${String(error)}` };
  } finally {
    await runner(["ip", "netns", "del", name]).catch(() => {});
  }
}
