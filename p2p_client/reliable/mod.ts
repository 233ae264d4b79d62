/**
 * The reliable, ordered, exactly-once message channel carried inside encrypted peer packets: a
 * pure state machine driven by an injected clock.
 *
 * @example
 * ```ts
 * import { ReliableChannel } from "./mod.ts";
 *
 * const channel = new ReliableChannel({
 *   now: () => performance.now(),
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
