/**
 * The P2P client as a library: {@linkcode P2PClient} (one UDP socket, the server session, STUN,
 * and independent peer links with explicit path state), its events and commands. The program is
 * `main.ts`.
 *
 * @example
 * ```ts
 * import { parseCommand, PathManager } from "./mod.ts";
 * console.log(parseCommand("list")); // { ok: true, command: { kind: "list" } }
 * console.log(new PathManager(0).state); // "none"
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
export * from "./link_frames.ts";
export * from "./local_addresses.ts";
export type { Identity } from "../shared/identity/mod.ts";
export type { ServerAddress } from "../shared/config/mod.ts";
export type {
  Address,
  ClientMessage,
  ServerMessage,
  ServerMessageOf,
} from "../shared/signaling/messages.ts";
export type { RegistrationSigner, SignalingEvent } from "../shared/signaling/connection.ts";
export type { HandshakeResponse } from "../shared/peer/handshake.ts";
export type { SecureSession } from "../shared/peer/session.ts";
export * from "./backoff.ts";
export * from "./outbox.ts";
export * from "./secure_link.ts";
export * from "./inbound_packet.ts";
export * from "./received_window.ts";
export * from "./client_store.ts";
export * from "./deadline_timer.ts";
export type { Command } from "@commander-js/extra-typings";
