/**
 * The registration proof: what a client signs to show it holds its Ed25519 key.
 *
 * @module
 */
import { CHALLENGE_NONCE_BYTES, REGISTER_SIGNATURE_DOMAIN } from "./constants.ts";

const DOMAIN = new TextEncoder().encode(REGISTER_SIGNATURE_DOMAIN);

/**
 * The bytes a client signs in `register`: ASCII `p2p-register/v1` followed by the 32 raw nonce
 * bytes from `challenge`. Throws a `RangeError` for a nonce of the wrong length.
 *
 * @example
 * ```ts
 * const data = registrationSignedData(new Uint8Array(32));
 * console.log(data.length); // 15 + 32
 * ```
 */
export function registrationSignedData(nonce: Uint8Array): Uint8Array {
  if (nonce.length !== CHALLENGE_NONCE_BYTES) {
    throw new RangeError(`challenge nonce must be ${CHALLENGE_NONCE_BYTES} bytes`);
  }
  const data = new Uint8Array(DOMAIN.length + nonce.length);
  data.set(DOMAIN, 0);
  data.set(nonce, DOMAIN.length);
  return data;
}
