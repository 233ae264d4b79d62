/**
 * The reliable, ordered, exactly-once message channel carried inside encrypted peer packets: a
 * pure state machine driven by an injected clock.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * import { ReliableChannel } from "./mod.ts";
 *
 * declare function sealAndSend(frame: Uint8Array): void;
 * const channel = new ReliableChannel({
 *   now: () => systemRuntime.now(),
 *   send: (frame) => sealAndSend(frame),
 *   deliver: (message) => console.log(new TextDecoder().decode(message)),
 * });
 * channel.sendMessage(new TextEncoder().encode("hello"));
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./reliable_channel.ts";
export * from "./rtt_estimator.ts";
export * from "./receive_buffer.ts";
