/**
 * The P2P client as a library: {@linkcode P2PClient} (one UDP socket, the server session, STUN,
 * and independent peer links with explicit path state), its events and commands. The program is
 * `main.ts`.
 *
 * @example
 * ```ts
 * import { parseCommand, PathManager } from "./mod.ts";
 * console.log(parseCommand("list")); // { ok: true, command: { kind: "list" } }
 * console.log(new PathManager(0).state); // "connecting"
 * ```
 *
 * @module
 */
export * from "./client.ts";
export * from "./events.ts";
export * from "./commands.ts";
export * from "./path_manager.ts";
export * from "./punch_scheduler.ts";
export * from "./peer_link.ts";
export * from "./peer_table.ts";
export * from "./server_session.ts";
export * from "./stun_client.ts";
export * from "./udp_mux.ts";
export * from "./identity_store.ts";
export * from "./cli.ts";
