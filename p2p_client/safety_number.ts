/**
 * Safety numbers: a short number two people compare (read aloud, or side by side) to check that
 * each holds the other's real key — that no one in the middle (a server, a forged introduction)
 * substituted one. Both sides compute the same digits from the same two public keys, whichever
 * side asks.
 *
 * Derivation (version 1): sort the two 32-byte Ed25519 public keys by bytes (so the order of the
 * two peers does not matter); `digest = SHA-256("p2p-safety-number/v1" || low || high)`; the
 * first 25 bytes give five groups of five digits, each group the big-endian 40-bit integer of
 * its 5 bytes modulo 100000. Result: 25 digits (about 83 bits) in five groups, e.g.
 * `30414 88127 07356 61923 55280`. A key substituted in the middle changes every group with
 * overwhelming probability; matching 25 digits by search costs an attacker about 2^83 hashes.
 * (Signal's safety numbers use the same idea with 60 digits and per-user halves.)
 *
 * @module
 */

const DOMAIN = new TextEncoder().encode("p2p-safety-number/v1");

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/**
 * The safety number of two public keys (order-independent).
 *
 * @example
 * ```ts
 * const a = new Uint8Array(32).fill(1);
 * const b = new Uint8Array(32).fill(2);
 * (await safetyNumber(a, b)) === (await safetyNumber(b, a)); // true
 * ```
 */
export async function safetyNumber(keyA: Uint8Array, keyB: Uint8Array): Promise<string> {
  if (keyA.length !== 32 || keyB.length !== 32) {
    throw new RangeError("safety numbers are computed from two 32-byte Ed25519 public keys");
  }
  const [low, high] = compareBytes(keyA, keyB) <= 0 ? [keyA, keyB] : [keyB, keyA];
  const input = new Uint8Array(DOMAIN.length + 64);
  input.set(DOMAIN, 0);
  input.set(low, DOMAIN.length);
  input.set(high, DOMAIN.length + 32);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  const groups: string[] = [];
  for (let group = 0; group < 5; group++) {
    let value = 0;
    for (let i = 0; i < 5; i++) value = value * 256 + digest[group * 5 + i];
    groups.push(String(value % 100_000).padStart(5, "0"));
  }
  return groups.join(" ");
}
