/**
 * MESSAGE-INTEGRITY (RFC 8489 section 14.5, HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 (section
 * 14.6, HMAC-SHA256, possibly truncated to 16..32 bytes).
 *
 * The HMAC covers the message up to the attribute, with the header's length field set as if the
 * message ended right after the integrity attribute (so a FINGERPRINT added later does not
 * change it). Keys come from `shortTermKey` or `longTermKey`.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { AttributeType, HEADER_LENGTH } from "./constants.ts";
import { StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/** Length of the MESSAGE-INTEGRITY value (an HMAC-SHA1). */
export const MESSAGE_INTEGRITY_LENGTH = 20;

const lengthField = new Uint8Array(2);

function hmacOver(
  algorithm: "sha1" | "sha256",
  key: Uint8Array,
  raw: Uint8Array,
  attributeOffset: number,
  valueLength: number,
): Uint8Array {
  // Length as if the message ended after this attribute (RFC 8489 section 14.5).
  const adjusted = attributeOffset + 4 + valueLength - HEADER_LENGTH;
  lengthField[0] = adjusted >> 8;
  lengthField[1] = adjusted & 0xff;
  const digest = createHmac(algorithm, key)
    .update(raw.subarray(0, 2))
    .update(lengthField)
    .update(raw.subarray(4, attributeOffset))
    .digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/**
 * Appends MESSAGE-INTEGRITY (0x0008) keyed with `key`, over everything written so far.
 *
 * @example
 * ```ts
 * import { addMessageIntegrity, shortTermKey, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addMessageIntegrity(writer, shortTermKey("secret"));
 * console.log(writer.length); // 44
 * ```
 */
export function addMessageIntegrity(writer: StunMessageWriter, key: Uint8Array): void {
  const offset = writer.length;
  const at = writer.reserveAttribute(AttributeType.MessageIntegrity, MESSAGE_INTEGRITY_LENGTH);
  writer.buffer.set(
    hmacOver("sha1", key, writer.buffer, offset, MESSAGE_INTEGRITY_LENGTH),
    at,
  );
}

/**
 * Appends MESSAGE-INTEGRITY-SHA256 (0x001C) keyed with `key`, truncated to `length` bytes (a
 * multiple of 4 from 16 to 32; default 32).
 *
 * @throws {StunEncodeError} on an invalid `length`.
 *
 * @example
 * ```ts
 * import { addMessageIntegritySha256, shortTermKey, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addMessageIntegritySha256(writer, shortTermKey("secret"), 16);
 * console.log(writer.length); // 40
 * ```
 */
export function addMessageIntegritySha256(
  writer: StunMessageWriter,
  key: Uint8Array,
  length = 32,
): void {
  if (!Number.isInteger(length) || length < 16 || length > 32 || (length & 3) !== 0) {
    throw new StunEncodeError(`MESSAGE-INTEGRITY-SHA256 length ${length} is not 16..32 by 4`);
  }
  const offset = writer.length;
  const at = writer.reserveAttribute(AttributeType.MessageIntegritySha256, length);
  const digest = hmacOver("sha256", key, writer.buffer, offset, length);
  writer.buffer.set(digest.subarray(0, length), at);
}

/**
 * Checks MESSAGE-INTEGRITY (HMAC-SHA1) of a decoded message with `key`, in constant time.
 * False when the attribute is missing or not 20 bytes.
 *
 * @example
 * ```ts
 * import { addMessageIntegrity, decodeStunMessage, shortTermKey, StunMessageWriter, verifyMessageIntegrity } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addMessageIntegrity(writer, shortTermKey("secret"));
 * const message = decodeStunMessage(writer.bytes());
 * console.log(verifyMessageIntegrity(message, shortTermKey("secret"))); // true
 * console.log(verifyMessageIntegrity(message, shortTermKey("other"))); // false
 * ```
 */
export function verifyMessageIntegrity(message: StunMessage, key: Uint8Array): boolean {
  const attribute = message.get(AttributeType.MessageIntegrity);
  if (attribute === undefined || attribute.value.length !== MESSAGE_INTEGRITY_LENGTH) return false;
  const expected = hmacOver("sha1", key, message.raw, attribute.offset, MESSAGE_INTEGRITY_LENGTH);
  return timingSafeEqual(expected, attribute.value);
}

/**
 * Checks MESSAGE-INTEGRITY-SHA256 of a decoded message with `key`, in constant time, whatever
 * its (valid) truncation. False when the attribute is missing or its length is not 16..32 by 4.
 *
 * @example
 * ```ts
 * import { addMessageIntegritySha256, decodeStunMessage, shortTermKey, StunMessageWriter, verifyMessageIntegritySha256 } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addMessageIntegritySha256(writer, shortTermKey("secret"));
 * console.log(verifyMessageIntegritySha256(decodeStunMessage(writer.bytes()), shortTermKey("secret"))); // true
 * ```
 */
export function verifyMessageIntegritySha256(message: StunMessage, key: Uint8Array): boolean {
  const attribute = message.get(AttributeType.MessageIntegritySha256);
  if (attribute === undefined) return false;
  const length = attribute.value.length;
  if (length < 16 || length > 32 || (length & 3) !== 0) return false;
  const expected = hmacOver("sha256", key, message.raw, attribute.offset, length);
  return timingSafeEqual(expected.subarray(0, length), attribute.value);
}
