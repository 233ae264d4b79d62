/**
 * TURN (RFC 8656) as a library for the server's STUN port, one concern per module in the spirit
 * of pion/turn: the five-tuple link ({@linkcode ClientLink}), long-term credentials (static users
 * and the TURN REST API shared secret), stateless nonces, authentication, the peer address
 * policy, the relay port range, permissions and channels, allocations, and the server that
 * dispatches requests ({@linkcode TurnServer}).
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
