/**
 * The UTF-8 text attributes: USERNAME (RFC 8489 14.3), REALM (14.9), NONCE (14.10), SOFTWARE
 * (14.14) and ALTERNATE-DOMAIN (14.16), with the RFC's size limits.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Size limits of one text attribute. */
interface TextLimits {
  name: string;
  maxBytes: number;
  maxChars: number;
}

const LIMITS: Record<number, TextLimits> = {
  [AttributeType.Username]: { name: "USERNAME", maxBytes: 512, maxChars: Infinity },
  [AttributeType.Realm]: { name: "REALM", maxBytes: 763, maxChars: 127 },
  [AttributeType.Nonce]: { name: "NONCE", maxBytes: 763, maxChars: 127 },
  [AttributeType.Software]: { name: "SOFTWARE", maxBytes: 763, maxChars: 127 },
  [AttributeType.AlternateDomain]: { name: "ALTERNATE-DOMAIN", maxBytes: 255, maxChars: 255 },
};

function charCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/**
 * Decodes a text attribute value as strict UTF-8 within the attribute's limits.
 *
 * @throws {StunDecodeError} (`bad-attribute`) on invalid UTF-8 or a value over the limits.
 *
 * @example
 * ```ts
 * import { AttributeType } from "./constants.ts";
 * import { decodeTextValue } from "./text_attributes.ts";
 * console.log(decodeTextValue(AttributeType.Realm, new TextEncoder().encode("example.org")));
 * // "example.org"
 * ```
 */
export function decodeTextValue(type: number, value: Uint8Array): string {
  const limits = LIMITS[type];
  const name = limits?.name ?? `0x${type.toString(16)}`;
  if (limits !== undefined && value.length > limits.maxBytes) {
    throw new StunDecodeError("bad-attribute", `${name} of ${value.length} bytes is too long`);
  }
  let text: string;
  try {
    text = decoder.decode(value);
  } catch {
    throw new StunDecodeError("bad-attribute", `${name} is not valid UTF-8`);
  }
  if (limits !== undefined && limits.maxChars < value.length && charCount(text) > limits.maxChars) {
    throw new StunDecodeError(
      "bad-attribute",
      `${name} has more than ${limits.maxChars} characters`,
    );
  }
  return text;
}

/**
 * Appends a text attribute, checking the attribute's limits.
 *
 * @throws {StunEncodeError} when the text is over the attribute's limits.
 *
 * @example
 * ```ts
 * import { AttributeType, StunMessageWriter } from "./mod.ts";
 * import { addTextAttribute } from "./text_attributes.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addTextAttribute(writer, AttributeType.Software, "demo");
 * console.log(writer.length); // 28
 * ```
 */
export function addTextAttribute(writer: StunMessageWriter, type: number, text: string): void {
  const limits = LIMITS[type];
  const at = writer.length;
  // Encode straight into the buffer after a provisional header.
  const room = writer.buffer.subarray(Math.min(at + 4, writer.buffer.length));
  const { read, written } = encoder.encodeInto(text, room);
  if (read !== text.length) {
    throw new StunEncodeError(
      `text attribute of ${text.length} characters does not fit the buffer`,
    );
  }
  if (limits !== undefined) {
    if (written > limits.maxBytes || charCount(text) > limits.maxChars) {
      throw new StunEncodeError(`${limits.name} "${text.slice(0, 32)}..." is over its size limit`);
    }
  }
  writer.reserveAttribute(type, written);
}

function getText(message: StunMessage, type: number): string | undefined {
  const attribute = message.get(type);
  return attribute === undefined ? undefined : decodeTextValue(type, attribute.value);
}

/**
 * USERNAME (0x0006) of a message, if present.
 *
 * @throws {StunDecodeError} when the attribute is malformed.
 *
 * @example
 * ```ts
 * import { addUsername, decodeStunMessage, getUsername, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addUsername(writer, "evtj:h6vY");
 * console.log(getUsername(decodeStunMessage(writer.bytes()))); // "evtj:h6vY"
 * ```
 */
export function getUsername(message: StunMessage): string | undefined {
  return getText(message, AttributeType.Username);
}

/**
 * Appends USERNAME (0x0006): at most 512 bytes of UTF-8.
 *
 * @example
 * ```ts
 * import { addUsername, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addUsername(writer, "evtj:h6vY");
 * console.log(writer.length); // 36
 * ```
 */
export function addUsername(writer: StunMessageWriter, username: string): void {
  addTextAttribute(writer, AttributeType.Username, username);
}

/**
 * REALM (0x0014) of a message, if present.
 *
 * @example
 * ```ts
 * import { addRealm, decodeStunMessage, getRealm, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addRealm(writer, "example.org");
 * console.log(getRealm(decodeStunMessage(writer.bytes()))); // "example.org"
 * ```
 */
export function getRealm(message: StunMessage): string | undefined {
  return getText(message, AttributeType.Realm);
}

/**
 * Appends REALM (0x0014): fewer than 128 characters, at most 763 bytes.
 *
 * @example
 * ```ts
 * import { addRealm, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addRealm(writer, "example.org");
 * console.log(writer.length); // 36
 * ```
 */
export function addRealm(writer: StunMessageWriter, realm: string): void {
  addTextAttribute(writer, AttributeType.Realm, realm);
}

/**
 * NONCE (0x0015) of a message, if present.
 *
 * @example
 * ```ts
 * import { addNonce, decodeStunMessage, getNonce, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addNonce(writer, "f//499k954d6OL34oL9FSTvy64sA");
 * console.log(getNonce(decodeStunMessage(writer.bytes()))); // "f//499k954d6OL34oL9FSTvy64sA"
 * ```
 */
export function getNonce(message: StunMessage): string | undefined {
  return getText(message, AttributeType.Nonce);
}

/**
 * Appends NONCE (0x0015): fewer than 128 characters, at most 763 bytes.
 *
 * @example
 * ```ts
 * import { addNonce, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addNonce(writer, "f//499k954d6OL34oL9FSTvy64sA");
 * console.log(writer.length); // 52
 * ```
 */
export function addNonce(writer: StunMessageWriter, nonce: string): void {
  addTextAttribute(writer, AttributeType.Nonce, nonce);
}

/**
 * SOFTWARE (0x8022) of a message, if present.
 *
 * @example
 * ```ts
 * import { addSoftware, decodeStunMessage, getSoftware, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addSoftware(writer, "STUN test client");
 * console.log(getSoftware(decodeStunMessage(writer.bytes()))); // "STUN test client"
 * ```
 */
export function getSoftware(message: StunMessage): string | undefined {
  return getText(message, AttributeType.Software);
}

/**
 * Appends SOFTWARE (0x8022): fewer than 128 characters, at most 763 bytes.
 *
 * @example
 * ```ts
 * import { addSoftware, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addSoftware(writer, "STUN test client");
 * console.log(writer.length); // 40
 * ```
 */
export function addSoftware(writer: StunMessageWriter, software: string): void {
  addTextAttribute(writer, AttributeType.Software, software);
}

/**
 * ALTERNATE-DOMAIN (0x8003) of a message, if present.
 *
 * @example
 * ```ts
 * import { addAlternateDomain, decodeStunMessage, getAlternateDomain, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addAlternateDomain(writer, "stun.example.org");
 * console.log(getAlternateDomain(decodeStunMessage(writer.bytes()))); // "stun.example.org"
 * ```
 */
export function getAlternateDomain(message: StunMessage): string | undefined {
  return getText(message, AttributeType.AlternateDomain);
}

/**
 * Appends ALTERNATE-DOMAIN (0x8003): at most 255 bytes.
 *
 * @example
 * ```ts
 * import { addAlternateDomain, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addAlternateDomain(writer, "stun.example.org");
 * console.log(writer.length); // 40
 * ```
 */
export function addAlternateDomain(writer: StunMessageWriter, domain: string): void {
  addTextAttribute(writer, AttributeType.AlternateDomain, domain);
}
