/**
 * The STUN message type: a 12-bit method and a 2-bit class interleaved in 14 bits
 * (RFC 8489 section 5, figure 3).
 *
 * @module
 */
import type { StunClass } from "./constants.ts";

/**
 * Packs a method and a class into the 14-bit STUN message type.
 *
 * @example
 * ```ts
 * import { encodeMessageType } from "./header.ts";
 * import { StunClass, StunMethod } from "./constants.ts";
 * console.log(encodeMessageType(StunMethod.Binding, StunClass.SuccessResponse).toString(16)); // "101"
 * ```
 */
export function encodeMessageType(method: number, stunClass: StunClass): number {
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) {
    throw new RangeError(`a STUN method has 12 bits, got ${method}`);
  }
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) |
    ((stunClass & 1) << 4) | ((stunClass & 2) << 7);
}

/**
 * The method (12 bits) of a 14-bit STUN message type.
 *
 * @example
 * ```ts
 * import { methodOf } from "./header.ts";
 * console.log(methodOf(0x0111)); // 1 (Binding)
 * ```
 */
export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

/**
 * The class of a 14-bit STUN message type.
 *
 * @example
 * ```ts
 * import { classOf } from "./header.ts";
 * console.log(classOf(0x0111)); // 3 (ErrorResponse)
 * ```
 */
export function classOf(type: number): StunClass {
  return (((type >> 4) & 1) | ((type >> 7) & 2)) as StunClass;
}
