/**
 * The peer-to-peer protocol's pure core: packet codecs, the authenticated key exchange, the
 * encrypted transport with replay protection, and the frames carried inside it. No sockets, no
 * timers: the client feeds bytes in and sends the bytes that come out.
 *
 * @example
 * ```ts
 * import { Identity } from "../identity/identity.ts";
 * import { systemRuntime } from "../runtime/mod.ts";
 * import { HandshakeInitiator, HandshakeResponder, classifyDatagram, PeerPacketType } from "./mod.ts";
 *
 * const alice = await Identity.generate();
 * const bob = await Identity.generate();
 * const initiator = await HandshakeInitiator.start({
 *   identity: alice,
 *   remoteId: bob.id,
 *   remotePublicKey: bob.publicKey,
 *   localIndex: 1,
 *   now: () => systemRuntime.wallClock(),
 * });
 * // Bob's side:
 * const responder = new HandshakeResponder({
 *   identity: bob,
 *   now: () => systemRuntime.wallClock(),
 *   lookupPeer: () => alice.publicKey,
 *   allocateIndex: () => 2,
 * });
 * const accepted = await responder.respond(initiator.packet);
 * const session = await initiator.complete(accepted!.response);
 * const packet = await session!.seal(new TextEncoder().encode("hi"));
 * console.log(classifyDatagram(packet) === PeerPacketType.Transport); // true
 * ```
 *
 * @module
 */
export type { Identity } from "../identity/identity.ts";
export type { PeerId } from "../identity/peer_id.ts";
export * from "./errors.ts";
export * from "./packet.ts";
export * from "./frames.ts";
export * from "./replay_window.ts";
export * from "./session.ts";
export * from "./handshake.ts";
