/**
 * NAT behaviour discovery (RFC 5780): {@linkcode probeNat} runs the STUN tests and
 * {@linkcode classifyNat} turns observations into mapping and filtering behaviour.
 *
 * @example
 * ```ts
 * import { classifyNat } from "./mod.ts";
 * console.log(classifyNat({ localPort: 1, localAddresses: [], primary: undefined }).udpReachable);
 * // false
 * ```
 *
 * @module
 */
export * from "./classify.ts";
export * from "./nat_probe.ts";
export * from "./explain.ts";
export * from "./diagnose.ts";
