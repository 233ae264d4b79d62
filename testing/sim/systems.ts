/**
 * The systems the simulator can run, by name, for `deno task sim --system <name>` and the
 * workers: `real` (the real `P2PClient` and `startServer`, see `real_system.ts`), `reference`
 * (the reference peer and server of `reference_peer.ts`) and its deliberately broken variants
 * `reference:<bug>`.
 *
 * @module
 */
import { type ReferenceBug, referenceSystem } from "./reference_peer.ts";
import type { SystemUnderTest } from "./scenario.ts";
import { realSystem, type RealSystemOptions } from "./real_system.ts";

/** The system `deno task sim` runs when none is named. */
export const DEFAULT_SYSTEM = "real";

/** Names accepted by {@linkcode systemByName}. */
export const SYSTEM_NAMES: readonly string[] = [
  "real",
  "reference",
  "reference:no-dedupe",
  "reference:no-order",
  "reference:failed-for-unconfirmed",
  "reference:no-relay",
];

/**
 * The system called `name`.
 *
 * @example
 * ```ts
 * const system = await systemByName("reference:no-dedupe");
 * console.log(system.name); // reference(no-dedupe)
 * ```
 */
export function systemByName(
  name: string,
  real: RealSystemOptions = {},
): Promise<SystemUnderTest> {
  if (name === "real") return Promise.resolve(realSystem(real));
  if (name === "reference") return Promise.resolve(referenceSystem());
  if (name.startsWith("reference:") && SYSTEM_NAMES.includes(name)) {
    return Promise.resolve(referenceSystem(name.slice("reference:".length) as ReferenceBug));
  }
  return Promise.reject(new Error(`unknown system ${name} (known: ${SYSTEM_NAMES.join(", ")})`));
}
