/**
 * TURN (RFC 8656) as a library for the server's STUN port, one concern per module in the spirit
 * of pion/turn: the five-tuple link ({@linkcode ClientLink}), long-term credentials (static users
 * and the TURN REST API shared secret), stateless nonces, authentication, the peer address
 * policy, the relay port range, permissions and channels, allocations, and the server that
 * dispatches requests ({@linkcode TurnServer}).
 *
 * Why: the config's `turn` servers and browsers' `turn:` URLs need a standard TURN server; coturn's
 * `turnutils_uclient` (UDP, TCP, channels, Send indications, REST API secrets) and Chromium
 * (relay-only data channels over UDP and TCP) run against this one in `deno task test`. Measured
 * (bench/README.md, busy 2-core machine): ChannelData forwarding costs 16.5 µs of server CPU per
 * packet on Deno's sockets and 4.4 µs with `--batched-udp`, against coturn `-m 1`'s 5.3 µs.
 *
 * @example
 * ```ts
 * import { StaticUsers, TurnServer } from "./mod.ts";
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const turn = new TurnServer({ runtime: systemRuntime, realm: "r", credentials: new StaticUsers([]) });
 * await turn.close();
 * ```
 *
 * @module
 */
export * from "./client_link.ts";
export * from "./credentials.ts";
export * from "./nonce.ts";
export * from "./auth.ts";
export * from "./peer_policy.ts";
export * from "./relay_ports.ts";
export * from "./permissions.ts";
export * from "./allocation.ts";
export * from "./turn_server.ts";
