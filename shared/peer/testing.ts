/**
 * Test support for the peer protocol: a pair of sessions that completed a real handshake.
 *
 * @module
 */
import { Identity } from "../identity/identity.ts";
import { HandshakeInitiator, HandshakeResponder } from "./handshake.ts";
import type { SecureSession } from "./session.ts";

/** Options for {@linkcode handshakenSessionPair}. */
export interface SessionPairOptions {
  /** The index the initiator picks for itself (the responder's receiver index). */
  readonly initiatorIndex: number;
  /** The index the responder allocates for itself (the initiator's receiver index). */
  readonly responderIndex: number;
  /** The clock both ends read, in milliseconds. */
  readonly now: () => number;
}

/**
 * Runs a full handshake between two fresh identities and returns the initiator's and the
 * responder's sessions, in that order. Throws when either side rejects the handshake.
 *
 * @example
 * ```ts
 * import { handshakenSessionPair } from "./testing.ts";
 *
 * const [a, b] = await handshakenSessionPair({ initiatorIndex: 1, responderIndex: 2, now: () => 0 });
 * const plaintext = await b.open(await a.seal(new TextEncoder().encode("hi")));
 * ```
 */
export async function handshakenSessionPair(
  options: SessionPairOptions,
): Promise<[SecureSession, SecureSession]> {
  const alice = await Identity.generate();
  const bob = await Identity.generate();
  const responder = new HandshakeResponder({
    identity: bob,
    now: options.now,
    lookupPeer: (id) => (id === alice.id ? alice.publicKey : undefined),
    allocateIndex: () => options.responderIndex,
  });
  const initiator = await HandshakeInitiator.start({
    identity: alice,
    remoteId: bob.id,
    remotePublicKey: bob.publicKey,
    localIndex: options.initiatorIndex,
    now: options.now,
  });
  const accepted = await responder.respond(initiator.packet);
  if (accepted === undefined) throw new Error("the responder rejected the handshake");
  const session = await initiator.complete(accepted.response);
  if (session === undefined) throw new Error("the initiator rejected the handshake response");
  return [session, accepted.session];
}
