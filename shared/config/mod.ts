/**
 * The client configuration: the `{"stun": [...], "turn": [...]}` file format and `host:port`
 * server addresses.
 *
 * @example
 * ```ts
 * import { parseClientConfigText } from "./mod.ts";
 * const config = parseClientConfigText('{"stun": ["stun:127.0.0.1:54321"], "turn": []}', "c.json");
 * console.log(config.stun[0].port); // 54321
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./server_address.ts";
export * from "./client_config.ts";
