/**
 * Peer IDs: the long, unguessable connection IDs the server issues.
 *
 * A peer ID is bound to an Ed25519 public key: it is the first 20 bytes (160 bits) of
 * `SHA-256("p2p-peer-id/v1" || publicKey)`, written as 40 lowercase hex digits. Anyone holding
 * the public key can check the binding, so neither the server nor another client can take over
 * an ID without the matching private key.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Length of a peer ID in bytes. */
export const PEER_ID_BYTES = 20;

/** Length of a peer ID in hex characters. */
export const PEER_ID_HEX_LENGTH = PEER_ID_BYTES * 2;

/** A peer ID: 40 lowercase hex characters. */
export type PeerId = string;

const DOMAIN = new TextEncoder().encode("p2p-peer-id/v1");
const PEER_ID_PATTERN = /^[0-9a-f]{40}$/;

/**
 * Derives the peer ID bound to an Ed25519 public key.
 *
 * @example
 * ```ts
 * const id = await peerIdFromPublicKey(new Uint8Array(32));
 * console.log(id.length); // 40
 * ```
 */
export function peerIdFromPublicKey(publicKey: Uint8Array): Promise<PeerId> {
  try {
    return Promise.resolve(peerIdFromPublicKeySync(publicKey));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@linkcode peerIdFromPublicKey}, synchronously (node:crypto, no WebCrypto thread-pool hop: a
 * handshake's work stays microtask-only, hence deterministic on virtual time).
 *
 * @example
 * ```ts
 * console.log(peerIdFromPublicKeySync(new Uint8Array(32)).length); // 40
 * ```
 */
export function peerIdFromPublicKeySync(publicKey: Uint8Array): PeerId {
  if (publicKey.length !== 32) {
    throw new RangeError(`Ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  }
  const input = new Uint8Array(DOMAIN.length + publicKey.length);
  input.set(DOMAIN, 0);
  input.set(publicKey, DOMAIN.length);
  const digest = new Uint8Array(createHash("sha256").update(input).digest());
  return digest.subarray(0, PEER_ID_BYTES).toHex();
}

/**
 * Tells whether a string is a well-formed peer ID.
 *
 * @example
 * ```ts
 * isPeerId("00".repeat(20)); // true
 * isPeerId("alice"); // false
 * ```
 */
export function isPeerId(value: string): value is PeerId {
  return PEER_ID_PATTERN.test(value);
}
