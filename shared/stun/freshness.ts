/**
 * Freshness of authenticated Binding requests (issue 11): a captured request replayed from
 * another address was accepted, and the victim's public endpoint became the attacker's address
 * until its next keep-alive. A client now puts a strictly increasing 64-bit counter in a
 * comprehension-optional attribute, P2P-FRESHNESS (0x8F01, 8 bytes, big-endian), covered by
 * MESSAGE-INTEGRITY; the server accepts a request for a USERNAME only if its counter is above
 * the last one accepted (a replay of any earlier request, from anywhere, changes nothing).
 * Servers that do not know the attribute ignore it (RFC 8489 §15: comprehension-optional).
 *
 * @module
 */

/** The attribute type of P2P-FRESHNESS (comprehension-optional range). */
export const P2P_FRESHNESS_ATTRIBUTE = 0x8f01;

/**
 * The 8-byte value of a P2P-FRESHNESS attribute.
 *
 * @example
 * ```ts
 * console.log(encodeFreshness(1n)); // Uint8Array(8) [0, 0, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function encodeFreshness(counter: bigint): Uint8Array {
  const value = new Uint8Array(8);
  new DataView(value.buffer).setBigUint64(0, counter);
  return value;
}

/**
 * The counter in a P2P-FRESHNESS value, or undefined when it is not 8 bytes.
 *
 * @example
 * ```ts
 * console.log(decodeFreshness(encodeFreshness(7n))); // 7n
 * ```
 */
export function decodeFreshness(value: Uint8Array): bigint | undefined {
  if (value.length !== 8) return undefined;
  return new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0);
}
