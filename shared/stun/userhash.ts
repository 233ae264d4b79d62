/**
 * USERHASH (RFC 8489 section 14.4): a 32-byte SHA-256 hash standing in for USERNAME.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * USERHASH (0x001E) of a message, if present: a copy of its 32 bytes.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when the value is not 32 bytes.
 *
 * @example
 * ```ts
 * import { addUserhash, decodeStunMessage, getUserhash, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addUserhash(writer, new Uint8Array(32).fill(7));
 * console.log(getUserhash(decodeStunMessage(writer.bytes()))?.[0]); // 7
 * ```
 */
export function getUserhash(message: StunMessage): Uint8Array | undefined {
  const attribute = message.get(AttributeType.Userhash);
  if (attribute === undefined) return undefined;
  if (attribute.value.length !== 32) {
    throw new StunDecodeError("bad-attribute", `USERHASH of ${attribute.value.length} bytes`);
  }
  return attribute.value.slice();
}

/**
 * Appends USERHASH (0x001E); compute the value with `computeUserhash`.
 *
 * @throws {StunEncodeError} when `userhash` is not 32 bytes.
 *
 * @example
 * ```ts
 * import { addUserhash, computeUserhash, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addUserhash(writer, computeUserhash("user", "example.org"));
 * console.log(writer.length); // 56
 * ```
 */
export function addUserhash(writer: StunMessageWriter, userhash: Uint8Array): void {
  if (userhash.length !== 32) {
    throw new StunEncodeError(`USERHASH has 32 bytes, got ${userhash.length}`);
  }
  writer.addAttribute(AttributeType.Userhash, userhash);
}
