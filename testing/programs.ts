/**
 * How tests, the NAT lab and the benchmarks run the real programs: `deno run` with each program's
 * own permissions ({@linkcode SERVER_PERMISSIONS}, {@linkcode CLIENT_PERMISSIONS}) and this
 * repository's `deno.json`.
 *
 * @module
 */
import { SERVER_PERMISSIONS } from "../stun_server/permissions.ts";
import { CLIENT_PERMISSIONS } from "../p2p_client/permissions.ts";

/** The repository root. */
export const REPO_ROOT: URL = new URL("../", import.meta.url);

/** A program of the toolset. */
export type Program = "stun_server" | "p2p_client";

/**
 * The `deno` arguments that run `program` as its task does, followed by `programArgs`.
 *
 * @example
 * ```ts
 * const child = new Deno.Command(Deno.execPath(), {
 *   args: programRunArgs("stun_server", ["--tcp-port", "0", "--stun-port", "0"]),
 * }).spawn();
 * ```
 */
export function programRunArgs(
  program: Program,
  programArgs: readonly string[] = [],
  denoFlags: readonly string[] = [],
): string[] {
  const permissions = program === "stun_server" ? SERVER_PERMISSIONS : CLIENT_PERMISSIONS;
  return [
    "run",
    "--no-prompt",
    ...permissions,
    "--config",
    new URL("deno.json", REPO_ROOT).pathname,
    ...denoFlags,
    new URL(`${program}/main.ts`, REPO_ROOT).pathname,
    ...programArgs,
  ];
}
