/**
 * The plain address attributes (RFC 8489 section 14.1 format): MAPPED-ADDRESS,
 * ALTERNATE-SERVER, and RFC 5780's RESPONSE-ORIGIN and OTHER-ADDRESS.
 *
 * Value: one zero byte, the family (0x01 IPv4, 0x02 IPv6), the port (16 bits), then 4 or 16
 * address bytes.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import { formatIpAddress, type StunAddressFamily, writeIpAddress } from "./ip.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/** A transport address as STUN carries it. */
export interface StunAddress {
  /** `IPv4` or `IPv6`. */
  family: StunAddressFamily;
  /** The literal IP address (dotted quad or RFC 5952 IPv6). */
  hostname: string;
  /** The UDP/TCP port. */
  port: number;
}

/** Family byte of an IPv4 address in address attributes. */
export const FAMILY_IPV4 = 0x01;
/** Family byte of an IPv6 address in address attributes. */
export const FAMILY_IPV6 = 0x02;

/**
 * Decodes an address attribute value. With `xorKey` (the 16 header bytes from the magic cookie
 * on), port and address are un-XORed as XOR-MAPPED-ADDRESS requires.
 *
 * @throws {StunDecodeError} (`bad-attribute`) on a malformed value.
 *
 * @example
 * ```ts
 * import { decodeAddressValue } from "./address.ts";
 * const address = decodeAddressValue(Uint8Array.fromHex("00011f90c0000201"));
 * console.log(address); // { family: "IPv4", hostname: "192.0.2.1", port: 8080 }
 * ```
 */
export function decodeAddressValue(value: Uint8Array, xorKey?: Uint8Array): StunAddress {
  if (value.length < 4) {
    throw new StunDecodeError("bad-attribute", `address value of ${value.length} bytes`);
  }
  const familyByte = value[1];
  const addressLength = familyByte === FAMILY_IPV4 ? 4 : familyByte === FAMILY_IPV6 ? 16 : 0;
  if (addressLength === 0) {
    throw new StunDecodeError(
      "bad-attribute",
      `unknown address family 0x${familyByte.toString(16)}`,
    );
  }
  if (value.length !== 4 + addressLength) {
    throw new StunDecodeError(
      "bad-attribute",
      `address value of ${value.length} bytes for family ${familyByte}`,
    );
  }
  let port = (value[2] << 8) | value[3];
  const address = value.slice(4, 4 + addressLength);
  if (xorKey !== undefined) {
    port ^= (xorKey[0] << 8) | xorKey[1];
    for (let i = 0; i < addressLength; i++) address[i] ^= xorKey[i];
  }
  return {
    family: addressLength === 4 ? "IPv4" : "IPv6",
    hostname: formatIpAddress(address),
    port,
  };
}

/**
 * Appends an address attribute of any type, straight into the writer's buffer. With `xor`, the
 * port and address are XORed with the magic cookie and transaction ID already in the header
 * (XOR-MAPPED-ADDRESS and friends). IPv4-mapped IPv6 text is written as given; unmap it first
 * with `unmapIpv4` when the peer is really IPv4.
 *
 * @throws {StunEncodeError} when `hostname` is not a literal IP address or `port` not 0..65535.
 *
 * @example
 * ```ts
 * import { addAddressAttribute, AttributeType, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addAddressAttribute(writer, AttributeType.MappedAddress, "192.0.2.1", 8080);
 * console.log(writer.length); // 32
 * ```
 */
export function addAddressAttribute(
  writer: StunMessageWriter,
  type: number,
  hostname: string,
  port: number,
  xor = false,
): void {
  if (!(port >= 0 && port <= 0xffff) || !Number.isInteger(port)) {
    throw new StunEncodeError(`port ${port} is not 0..65535`);
  }
  const addressLength = hostname.indexOf(":") >= 0 ? 16 : 4;
  const before = writer.length;
  const at = writer.reserveAttribute(type, 4 + addressLength, 0);
  const buffer = writer.buffer;
  if (writeIpAddress(hostname, buffer, at + 4) !== addressLength) {
    writer.length = before;
    writer.view.setUint16(2, before - 20);
    throw new StunEncodeError(`"${hostname}" is not a literal IP address`);
  }
  buffer[at] = 0;
  buffer[at + 1] = addressLength === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  if (xor) {
    // XOR key: magic cookie then transaction ID, i.e. header bytes 4..20.
    buffer[at + 2] = (port >> 8) ^ buffer[4];
    buffer[at + 3] = (port & 0xff) ^ buffer[5];
    for (let i = 0; i < addressLength; i++) buffer[at + 4 + i] ^= buffer[4 + i];
  } else {
    buffer[at + 2] = port >> 8;
    buffer[at + 3] = port & 0xff;
  }
}

function getAddress(message: StunMessage, type: number): StunAddress | undefined {
  const attribute = message.get(type);
  return attribute === undefined ? undefined : decodeAddressValue(attribute.value);
}

/**
 * MAPPED-ADDRESS (0x0001) of a message, if present.
 *
 * @throws {StunDecodeError} when the attribute is malformed.
 *
 * @example
 * ```ts
 * import { addMappedAddress, decodeStunMessage, getMappedAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addMappedAddress(writer, { hostname: "192.0.2.1", port: 32853 });
 * console.log(getMappedAddress(decodeStunMessage(writer.bytes()))?.port); // 32853
 * ```
 */
export function getMappedAddress(message: StunMessage): StunAddress | undefined {
  return getAddress(message, AttributeType.MappedAddress);
}

/**
 * Appends MAPPED-ADDRESS (0x0001).
 *
 * @example
 * ```ts
 * import { addMappedAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addMappedAddress(writer, { hostname: "2001:db8::1", port: 1 });
 * console.log(writer.length); // 44
 * ```
 */
export function addMappedAddress(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(writer, AttributeType.MappedAddress, address.hostname, address.port);
}

/**
 * ALTERNATE-SERVER (0x8023) of a message, if present.
 *
 * @example
 * ```ts
 * import { addAlternateServer, decodeStunMessage, getAlternateServer, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addAlternateServer(writer, { hostname: "192.0.2.9", port: 3478 });
 * console.log(getAlternateServer(decodeStunMessage(writer.bytes()))?.hostname); // "192.0.2.9"
 * ```
 */
export function getAlternateServer(message: StunMessage): StunAddress | undefined {
  return getAddress(message, AttributeType.AlternateServer);
}

/**
 * Appends ALTERNATE-SERVER (0x8023).
 *
 * @example
 * ```ts
 * import { addAlternateServer, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addAlternateServer(writer, { hostname: "192.0.2.9", port: 3478 });
 * console.log(writer.length); // 32
 * ```
 */
export function addAlternateServer(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(writer, AttributeType.AlternateServer, address.hostname, address.port);
}

/**
 * RESPONSE-ORIGIN (0x802B, RFC 5780) of a message, if present.
 *
 * @example
 * ```ts
 * import { addResponseOrigin, decodeStunMessage, getResponseOrigin, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addResponseOrigin(writer, { hostname: "198.18.0.1", port: 3478 });
 * console.log(getResponseOrigin(decodeStunMessage(writer.bytes()))?.port); // 3478
 * ```
 */
export function getResponseOrigin(message: StunMessage): StunAddress | undefined {
  return getAddress(message, AttributeType.ResponseOrigin);
}

/**
 * Appends RESPONSE-ORIGIN (0x802B, RFC 5780).
 *
 * @example
 * ```ts
 * import { addResponseOrigin, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addResponseOrigin(writer, { hostname: "198.18.0.1", port: 3478 });
 * console.log(writer.length); // 32
 * ```
 */
export function addResponseOrigin(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(writer, AttributeType.ResponseOrigin, address.hostname, address.port);
}

/**
 * OTHER-ADDRESS (0x802C, RFC 5780) of a message, if present.
 *
 * @example
 * ```ts
 * import { addOtherAddress, decodeStunMessage, getOtherAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addOtherAddress(writer, { hostname: "198.18.0.2", port: 3479 });
 * console.log(getOtherAddress(decodeStunMessage(writer.bytes()))?.port); // 3479
 * ```
 */
export function getOtherAddress(message: StunMessage): StunAddress | undefined {
  return getAddress(message, AttributeType.OtherAddress);
}

/**
 * Appends OTHER-ADDRESS (0x802C, RFC 5780).
 *
 * @example
 * ```ts
 * import { addOtherAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, new Uint8Array(12));
 * addOtherAddress(writer, { hostname: "198.18.0.2", port: 3479 });
 * console.log(writer.length); // 32
 * ```
 */
export function addOtherAddress(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(writer, AttributeType.OtherAddress, address.hostname, address.port);
}
