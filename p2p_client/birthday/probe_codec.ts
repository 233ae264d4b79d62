/**
 * The birthday-punching probe: 29 bytes, `BDAY` | type | 8-byte nonce | 16-byte tag, the tag an
 * HMAC-SHA-256 (truncated to 128 bits) over the first 13 bytes under a key both peers got from
 * the signaling session. Only a peer holding the key can make a probe or answer the other side
 * accepts, so a stray packet from an unverified address never wins.
 *
 * `node:crypto`'s HMAC is synchronous, so the per-packet work stays on virtual time.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Length of every probe. */
export const PROBE_LENGTH = 29;

const MAGIC = [0x42, 0x44, 0x41, 0x59]; // "BDAY"

/** Probe types: who sends, and whether it answers. */
export const ProbeType = {
  /** The easy side's probe to a guessed port. */
  EasyProbe: 1,
  /** The hard side's probe from one of its sockets. */
  HardProbe: 2,
  /** The easy side's answer. */
  EasyAck: 3,
  /** The hard side's answer. */
  HardAck: 4,
} as const;

/** One of {@linkcode ProbeType}. */
export type ProbeType = typeof ProbeType[keyof typeof ProbeType];

function tag(key: Uint8Array, head: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(head).digest().subarray(0, 16));
}

/**
 * Encodes a probe.
 *
 * @example
 * ```ts
 * const bytes = encodeProbe(new Uint8Array(32), ProbeType.EasyProbe, new Uint8Array(8));
 * console.log(bytes.length); // 29
 * ```
 */
export function encodeProbe(key: Uint8Array, type: ProbeType, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== 8) throw new RangeError("a probe nonce has 8 bytes");
  const bytes = new Uint8Array(PROBE_LENGTH);
  bytes.set(MAGIC, 0);
  bytes[4] = type;
  bytes.set(nonce, 5);
  bytes.set(tag(key, bytes.subarray(0, 13)), 13);
  return bytes;
}

/**
 * Decodes and authenticates a probe: its type and nonce, or `undefined` for anything that is not
 * a probe made with `key` (never throws).
 *
 * @example
 * ```ts
 * const key = new Uint8Array(32).fill(1);
 * const bytes = encodeProbe(key, ProbeType.HardAck, new Uint8Array(8).fill(2));
 * console.log(decodeProbe(key, bytes)?.type); // 4
 * console.log(decodeProbe(new Uint8Array(32), bytes)); // undefined
 * ```
 */
export function decodeProbe(
  key: Uint8Array,
  bytes: Uint8Array,
): { type: ProbeType; nonce: Uint8Array } | undefined {
  if (bytes.length !== PROBE_LENGTH) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return undefined;
  const type = bytes[4];
  if (type < 1 || type > 4) return undefined;
  const expected = tag(key, bytes.subarray(0, 13));
  if (!timingSafeEqual(expected, bytes.subarray(13, 29))) return undefined;
  return { type: type as ProbeType, nonce: bytes.slice(5, 13) };
}
