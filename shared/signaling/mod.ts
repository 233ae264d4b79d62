/**
 * The signaling protocol (version 1) shared by the server and the client: framing, the strict
 * message schemas, error codes, constants, the registration proof, a batching write queue, and
 * a ready-made client connection. The wire contract is `docs/protocol.md`, section 2.
 *
 * @example
 * ```ts
 * import { encodeControlFrame, FrameDecoder, parseClientMessage, decodeControlBody } from "./mod.ts";
 * const decoder = new FrameDecoder();
 * const [frame] = decoder.push(encodeControlFrame({ type: "ping", t: 1 }));
 * console.log(parseClientMessage(decodeControlBody(frame.body)).ok); // true
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./frame.ts";
export * from "./messages.ts";
export * from "./registration.ts";
export * from "./puzzle.ts";
export * from "./ipv6.ts";
export * from "./candidate_address.ts";
export * from "./write_queue.ts";
export * from "./connection.ts";
