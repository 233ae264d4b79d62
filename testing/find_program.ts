/**
 * Test helper: finds a program on `PATH` without a shell (the interop and NAT-lab tests run
 * Debian's coturn, chromium and miniupnpd binaries, which `.ci/run` installs).
 *
 * @module
 */

/**
 * The full path of `name` on `PATH`, or undefined when it is not installed.
 *
 * @example
 * ```ts
 * import { findOnPath } from "./find_program.ts";
 * const sh = findOnPath("sh"); // "/usr/bin/sh" on Debian
 * ```
 */
export function findOnPath(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The full path of `name` on `PATH`; throws, naming the Debian package to install, when missing.
 *
 * @example
 * ```ts
 * import { requireOnPath } from "./find_program.ts";
 * const sh = requireOnPath("sh", "dash");
 * ```
 */
export function requireOnPath(name: string, debianPackage: string): string {
  const found = findOnPath(name);
  if (found === undefined) {
    throw new Error(
      `${name} not found on PATH: install the Debian package ${debianPackage} (.ci/run does)`,
    );
  }
  return found;
}

/**
 * Why a test that runs `names` must be skipped (`"<name> is not installed"` for the first one
 * missing from `PATH`), or undefined when all are there.
 *
 * @example
 * ```ts
 * import { missingProgram } from "./find_program.ts";
 * const skip = missingProgram(["sh", "turnserver"]); // undefined, or "turnserver is not installed"
 * ```
 */
export function missingProgram(names: readonly string[]): string | undefined {
  const missing = names.find((name) => findOnPath(name) === undefined);
  return missing === undefined ? undefined : `${missing} is not installed`;
}
