/**
 * How tests, the NAT lab and the benchmarks run the real programs: `deno run` with each program's
 * own runtime flags ({@linkcode SERVER_RUNTIME_FLAGS}, {@linkcode CLIENT_RUNTIME_FLAGS}) and this
 * repository's `deno.json`.
 *
 * @module
 */
import { SERVER_RUNTIME_FLAGS } from "../stun_server/runtime_flags.ts";
import { CLIENT_RUNTIME_FLAGS } from "../p2p_client/runtime_flags.ts";

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
  const runtimeFlags = program === "stun_server" ? SERVER_RUNTIME_FLAGS : CLIENT_RUNTIME_FLAGS;
  return [
    "run",
    "--no-prompt",
    ...runtimeFlags,
    "--config",
    new URL("deno.json", REPO_ROOT).pathname,
    ...denoFlags,
    new URL(`${program}/main.ts`, REPO_ROOT).pathname,
    ...programArgs,
  ];
}
