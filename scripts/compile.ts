/**
 * Builds single-file binaries of both programs with `deno compile`, for every release target,
 * with the same least-privilege permission flags as the `server` and `client` tasks.
 *
 * ```sh
 * deno task compile                                   # every program, every target
 * deno task compile --target x86_64-unknown-linux-gnu # one target
 * deno task compile --program stun_server             # one program
 * ```
 *
 * `deno compile` downloads the Deno runtime for each target the first time, so it needs network
 * access to dl.deno.land (the release workflow has it).
 *
 * @module
 */

/** Every target a release ships. */
export const COMPILE_TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** A release target triple. */
export type CompileTarget = typeof COMPILE_TARGETS[number];

import { SERVER_RUNTIME_FLAGS } from "../stun_server/runtime_flags.ts";
import { CLIENT_RUNTIME_FLAGS } from "../p2p_client/runtime_flags.ts";

/** A program the toolset ships, with the runtime flags (permissions, V8 settings) baked into its binary. */
export interface ProgramSpec {
  /** Binary name prefix, e.g. `stun_server`. */
  readonly name: string;
  /** Entrypoint, relative to the repository root. */
  readonly entrypoint: string;
  /** Runtime flags (permissions, V8 settings): the same as the program's `deno task`. */
  readonly runtimeFlags: readonly string[];
  /** Files embedded into the binary. */
  readonly include: readonly string[];
}

/**
 * Both programs, with each program's own runtime flags (the `server` and `client` tasks in
 * `deno.json` must say the same: `compile_test.ts` checks it).
 *
 * @example
 * ```ts
 * console.log(PROGRAMS.map((p) => p.name)); // ["stun_server", "p2p_client"]
 * ```
 */
export const PROGRAMS: readonly ProgramSpec[] = [
  {
    name: "stun_server",
    entrypoint: "stun_server/main.ts",
    runtimeFlags: SERVER_RUNTIME_FLAGS,
    include: [],
  },
  {
    name: "p2p_client",
    entrypoint: "p2p_client/main.ts",
    runtimeFlags: CLIENT_RUNTIME_FLAGS,
    include: ["resources/stun_servers.json"],
  },
];

/**
 * The output path of one program's binary for one target.
 *
 * @example
 * ```ts
 * binaryPath("p2p_client", "x86_64-pc-windows-msvc"); // "dist/p2p_client-x86_64-pc-windows-msvc.exe"
 * ```
 */
export function binaryPath(program: string, target: CompileTarget): string {
  const suffix = target.includes("windows") ? ".exe" : "";
  return `dist/${program}-${target}${suffix}`;
}

/**
 * The `deno compile` arguments that build one program for one target.
 *
 * @example
 * ```ts
 * const args = compileArgs(PROGRAMS[0], "x86_64-unknown-linux-gnu");
 * console.log(args[0]); // "compile"
 * ```
 */
export function compileArgs(program: ProgramSpec, target: CompileTarget): string[] {
  return [
    "compile",
    "--no-prompt",
    "--unstable-net",
    ...program.runtimeFlags,
    ...program.include.flatMap((file) => ["--include", file]),
    "--target",
    target,
    "--output",
    binaryPath(program.name, target),
    program.entrypoint,
  ];
}

function parseSelection(args: string[]): { targets: CompileTarget[]; programs: ProgramSpec[] } {
  let targets: CompileTarget[] = [...COMPILE_TARGETS];
  let programs: ProgramSpec[] = [...PROGRAMS];
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (args[i] === "--target" && value !== undefined) {
      if (!(COMPILE_TARGETS as readonly string[]).includes(value)) {
        throw new Error(`unknown target ${value}; known: ${COMPILE_TARGETS.join(", ")}`);
      }
      targets = [value as CompileTarget];
      i++;
    } else if (args[i] === "--program" && value !== undefined) {
      const found = PROGRAMS.find((p) => p.name === value);
      if (!found) throw new Error(`unknown program ${value}; known: stun_server, p2p_client`);
      programs = [found];
      i++;
    } else {
      throw new Error(`unexpected argument ${args[i]}; use --target T and/or --program P`);
    }
  }
  return { targets, programs };
}

async function main(args: string[]): Promise<number> {
  let selection;
  try {
    selection = parseSelection(args);
  } catch (error) {
    console.error(`compile: ${(error as Error).message}`);
    return 2;
  }
  await Deno.mkdir("dist", { recursive: true });
  for (const target of selection.targets) {
    for (const program of selection.programs) {
      console.log(`compile: ${program.name} for ${target}`);
      const { code } = await new Deno.Command("deno", {
        args: compileArgs(program, target),
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (code !== 0) {
        console.error(`compile: ${program.name} for ${target} failed (exit ${code})`);
        return code;
      }
    }
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
