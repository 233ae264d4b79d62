/**
 * FINGERPRINT (RFC 8489 section 14.7): CRC-32 of the message up to the attribute, XORed with
 * 0x5354554E. It must be the last attribute.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/** The constant FINGERPRINT XORs into the CRC-32 ("STUN"). */
export const FINGERPRINT_XOR = 0x5354554e;

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/**
 * CRC-32 (ISO-HDLC, the zlib one) of `bytes[start..end)`. A table-driven loop: cheaper than a
 * native call for the few dozen bytes of a STUN message.
 *
 * @example
 * ```ts
 * import { crc32 } from "./fingerprint.ts";
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * Appends FINGERPRINT (0x8028) over everything written so far. Add it last.
 *
 * @example
 * ```ts
 * import { addFingerprint, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addFingerprint(writer);
 * console.log(writer.length); // 28
 * ```
 */
export function addFingerprint(writer: StunMessageWriter): void {
  const offset = writer.length;
  const at = writer.reserveAttribute(AttributeType.Fingerprint, 4);
  writer.view.setUint32(at, (crc32(writer.buffer, 0, offset) ^ FINGERPRINT_XOR) >>> 0);
}

/**
 * Checks a decoded message's FINGERPRINT. False when it is missing or not 4 bytes. (The decoder
 * already guarantees FINGERPRINT is the last attribute.)
 *
 * @example
 * ```ts
 * import { addFingerprint, decodeStunMessage, StunMessageWriter, verifyFingerprint } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addFingerprint(writer);
 * console.log(verifyFingerprint(decodeStunMessage(writer.bytes()))); // true
 * ```
 */
export function verifyFingerprint(message: StunMessage): boolean {
  const attribute = message.get(AttributeType.Fingerprint);
  if (attribute === undefined || attribute.value.length !== 4) return false;
  const value = attribute.value;
  const stated = ((value[0] << 24) | (value[1] << 16) | (value[2] << 8) | value[3]) >>> 0;
  return stated === ((crc32(message.raw, 0, attribute.offset) ^ FINGERPRINT_XOR) >>> 0);
}
