/**
 * The small fixed-size attributes of TURN allocations (RFC 8656 section 18): LIFETIME,
 * REQUESTED-TRANSPORT, REQUESTED-ADDRESS-FAMILY, EVEN-PORT, RESERVATION-TOKEN and DONT-FRAGMENT.
 *
 * @module
 */
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import { TurnAttributeType } from "./turn_constants.ts";
import type { StunMessageWriter } from "./writer.ts";

function fixed(message: StunMessage, type: number, length: number, name: string) {
  const attribute = message.get(type);
  if (attribute === undefined) return undefined;
  if (attribute.value.length !== length) {
    throw new StunDecodeError("bad-attribute", `${name} of ${attribute.value.length} bytes`);
  }
  return attribute.value;
}

/**
 * LIFETIME (0x000D) in seconds, if present.
 *
 * @throws {StunDecodeError} when the value is not 4 bytes.
 *
 * @example
 * ```ts
 * import { addLifetime, decodeStunMessage, getLifetime, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0004, new Uint8Array(12));
 * addLifetime(writer, 600);
 * console.log(getLifetime(decodeStunMessage(writer.bytes()))); // 600
 * ```
 */
export function getLifetime(message: StunMessage): number | undefined {
  const value = fixed(message, TurnAttributeType.Lifetime, 4, "LIFETIME");
  if (value === undefined) return undefined;
  return ((value[0] << 24) | (value[1] << 16) | (value[2] << 8) | value[3]) >>> 0;
}

/**
 * Appends LIFETIME (0x000D).
 *
 * @throws {StunEncodeError} when `seconds` is not a 32-bit unsigned integer.
 *
 * @example
 * ```ts
 * import { addLifetime, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0104, new Uint8Array(12));
 * addLifetime(writer, 0);
 * console.log(writer.length); // 28
 * ```
 */
export function addLifetime(writer: StunMessageWriter, seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) {
    throw new StunEncodeError(`LIFETIME ${seconds} is not a 32-bit unsigned integer`);
  }
  const at = writer.reserveAttribute(TurnAttributeType.Lifetime, 4);
  writer.view.setUint32(at, seconds);
}

/**
 * REQUESTED-TRANSPORT (0x0019): the IANA protocol number (17 for UDP), if present.
 *
 * @throws {StunDecodeError} when the value is not 4 bytes.
 *
 * @example
 * ```ts
 * import { addRequestedTransport, decodeStunMessage, getRequestedTransport, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addRequestedTransport(writer, 17);
 * console.log(getRequestedTransport(decodeStunMessage(writer.bytes()))); // 17
 * ```
 */
export function getRequestedTransport(message: StunMessage): number | undefined {
  return fixed(message, TurnAttributeType.RequestedTransport, 4, "REQUESTED-TRANSPORT")?.[0];
}

/**
 * Appends REQUESTED-TRANSPORT (0x0019) with protocol number `protocol` (0..255).
 *
 * @example
 * ```ts
 * import { addRequestedTransport, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addRequestedTransport(writer, 17);
 * console.log(writer.bytes().subarray(20).toHex()); // "0019000411000000"
 * ```
 */
export function addRequestedTransport(writer: StunMessageWriter, protocol: number): void {
  const at = writer.reserveAttribute(TurnAttributeType.RequestedTransport, 4);
  writer.view.setUint32(at, (protocol & 0xff) << 24 >>> 0);
}

/**
 * REQUESTED-ADDRESS-FAMILY (0x0017): `"IPv4"` or `"IPv6"`, if present.
 *
 * @throws {StunDecodeError} when the value is not 4 bytes or names an unknown family.
 *
 * @example
 * ```ts
 * import { addRequestedAddressFamily, decodeStunMessage, getRequestedAddressFamily, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addRequestedAddressFamily(writer, "IPv6");
 * console.log(getRequestedAddressFamily(decodeStunMessage(writer.bytes()))); // "IPv6"
 * ```
 */
export function getRequestedAddressFamily(message: StunMessage): "IPv4" | "IPv6" | undefined {
  const value = fixed(
    message,
    TurnAttributeType.RequestedAddressFamily,
    4,
    "REQUESTED-ADDRESS-FAMILY",
  );
  if (value === undefined) return undefined;
  if (value[0] === 0x01) return "IPv4";
  if (value[0] === 0x02) return "IPv6";
  throw new StunDecodeError("bad-attribute", `address family 0x${value[0].toString(16)}`);
}

/**
 * Appends REQUESTED-ADDRESS-FAMILY (0x0017).
 *
 * @example
 * ```ts
 * import { addRequestedAddressFamily, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addRequestedAddressFamily(writer, "IPv4");
 * console.log(writer.bytes().subarray(20).toHex()); // "0017000401000000"
 * ```
 */
export function addRequestedAddressFamily(
  writer: StunMessageWriter,
  family: "IPv4" | "IPv6",
): void {
  const at = writer.reserveAttribute(TurnAttributeType.RequestedAddressFamily, 4);
  writer.view.setUint32(at, family === "IPv4" ? 0x01000000 : 0x02000000);
}

/**
 * EVEN-PORT (0x0018): undefined when absent, else whether the R bit (reserve the next port too)
 * is set.
 *
 * @throws {StunDecodeError} when the value is not 1 byte.
 *
 * @example
 * ```ts
 * import { addEvenPort, decodeStunMessage, getEvenPort, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addEvenPort(writer, true);
 * console.log(getEvenPort(decodeStunMessage(writer.bytes()))); // { reserveNext: true }
 * ```
 */
export function getEvenPort(message: StunMessage): { reserveNext: boolean } | undefined {
  const value = fixed(message, TurnAttributeType.EvenPort, 1, "EVEN-PORT");
  return value === undefined ? undefined : { reserveNext: (value[0] & 0x80) !== 0 };
}

/**
 * Appends EVEN-PORT (0x0018).
 *
 * @example
 * ```ts
 * import { addEvenPort, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addEvenPort(writer, false);
 * console.log(writer.bytes().subarray(20).toHex()); // "0018000100000000"
 * ```
 */
export function addEvenPort(writer: StunMessageWriter, reserveNext: boolean): void {
  const at = writer.reserveAttribute(TurnAttributeType.EvenPort, 1);
  writer.buffer[at] = reserveNext ? 0x80 : 0;
}

/**
 * RESERVATION-TOKEN (0x0022): the 8-byte token, if present (a view into the message).
 *
 * @throws {StunDecodeError} when the value is not 8 bytes.
 *
 * @example
 * ```ts
 * import { addReservationToken, decodeStunMessage, getReservationToken, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0103, new Uint8Array(12));
 * addReservationToken(writer, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
 * console.log(getReservationToken(decodeStunMessage(writer.bytes()))?.toHex()); // "0102030405060708"
 * ```
 */
export function getReservationToken(message: StunMessage): Uint8Array | undefined {
  return fixed(message, TurnAttributeType.ReservationToken, 8, "RESERVATION-TOKEN");
}

/**
 * Appends RESERVATION-TOKEN (0x0022).
 *
 * @throws {StunEncodeError} when `token` is not 8 bytes.
 *
 * @example
 * ```ts
 * import { addReservationToken, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0103, new Uint8Array(12));
 * addReservationToken(writer, new Uint8Array(8));
 * console.log(writer.length); // 32
 * ```
 */
export function addReservationToken(writer: StunMessageWriter, token: Uint8Array): void {
  if (token.length !== 8) throw new StunEncodeError(`RESERVATION-TOKEN of ${token.length} bytes`);
  writer.addAttribute(TurnAttributeType.ReservationToken, token);
}

/**
 * Whether the message carries DONT-FRAGMENT (0x001A, no value).
 *
 * @example
 * ```ts
 * import { addDontFragment, decodeStunMessage, hasDontFragment, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addDontFragment(writer);
 * console.log(hasDontFragment(decodeStunMessage(writer.bytes()))); // true
 * ```
 */
export function hasDontFragment(message: StunMessage): boolean {
  return message.has(TurnAttributeType.DontFragment);
}

/**
 * Appends DONT-FRAGMENT (0x001A).
 *
 * @example
 * ```ts
 * import { addDontFragment, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0003, new Uint8Array(12));
 * addDontFragment(writer);
 * console.log(writer.bytes().subarray(20).toHex()); // "001a0000"
 * ```
 */
export function addDontFragment(writer: StunMessageWriter): void {
  writer.reserveAttribute(TurnAttributeType.DontFragment, 0);
}
