/**
 * UNKNOWN-ATTRIBUTES (RFC 8489 section 14.13): the comprehension-required attribute types a 420
 * error response did not understand.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * UNKNOWN-ATTRIBUTES (0x000A) of a message, if present.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when the value length is odd.
 *
 * @example
 * ```ts
 * import { addUnknownAttributes, decodeStunMessage, getUnknownAttributes, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addUnknownAttributes(writer, [0x0002, 0x7777]);
 * console.log(getUnknownAttributes(decodeStunMessage(writer.bytes()))); // [2, 30583]
 * ```
 */
export function getUnknownAttributes(message: StunMessage): number[] | undefined {
  const attribute = message.get(AttributeType.UnknownAttributes);
  if (attribute === undefined) return undefined;
  const value = attribute.value;
  if ((value.length & 1) !== 0) {
    throw new StunDecodeError("bad-attribute", `UNKNOWN-ATTRIBUTES of ${value.length} bytes`);
  }
  const types: number[] = [];
  for (let i = 0; i < value.length; i += 2) types.push((value[i] << 8) | value[i + 1]);
  return types;
}

/**
 * Appends UNKNOWN-ATTRIBUTES (0x000A) listing attribute types.
 *
 * @example
 * ```ts
 * import { addUnknownAttributes, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addUnknownAttributes(writer, [0x0002]);
 * console.log(writer.length); // 28
 * ```
 */
export function addUnknownAttributes(writer: StunMessageWriter, types: readonly number[]): void {
  const at = writer.reserveAttribute(AttributeType.UnknownAttributes, types.length * 2);
  for (let i = 0; i < types.length; i++) writer.view.setUint16(at + 2 * i, types[i] & 0xffff);
}
