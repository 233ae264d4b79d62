/**
 * The injected runtime: clock, timers, randomness and sockets as one value, so the client and
 * the server run on the system or, unchanged, on virtual time in the simulator.
 *
 * @example
 * ```ts
 * import { sleep, systemRuntime } from "./mod.ts";
 * const before = systemRuntime.now();
 * await sleep(systemRuntime, 5);
 * console.log(systemRuntime.now() - before >= 4); // true
 * ```
 *
 * @module
 */
export * from "./runtime.ts";
export * from "./system.ts";
export * from "./timing.ts";
export * from "./batched_udp.ts";
