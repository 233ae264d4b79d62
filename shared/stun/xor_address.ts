/**
 * XOR-MAPPED-ADDRESS (RFC 8489 section 14.2): the reflexive transport address, XORed with the
 * magic cookie (port, IPv4) and the magic cookie plus transaction ID (IPv6).
 *
 * @module
 */
import { addAddressAttribute, decodeAddressValue, type StunAddress } from "./address.ts";
import { AttributeType } from "./constants.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * XOR-MAPPED-ADDRESS (0x0020) of a message, if present.
 *
 * @throws {StunDecodeError} when the attribute is malformed.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, getXorMappedAddress } from "./mod.ts";
 * const bytes = Uint8Array.fromHex(
 *   "0101000c2112a442b7e7a701bc34d686fa87dfae002000080001a147e112a643",
 * );
 * console.log(getXorMappedAddress(decodeStunMessage(bytes)));
 * // { family: "IPv4", hostname: "192.0.2.1", port: 32853 }
 * ```
 */
export function getXorMappedAddress(message: StunMessage): StunAddress | undefined {
  const attribute = message.get(AttributeType.XorMappedAddress);
  if (attribute === undefined) return undefined;
  return decodeAddressValue(attribute.value, message.raw.subarray(4, 20));
}

/**
 * Appends XOR-MAPPED-ADDRESS (0x0020), XORed with the header already started in the writer.
 * Writes straight into the writer's buffer (no allocation for IPv4).
 *
 * @throws {StunEncodeError} when `hostname` is not a literal IP address.
 *
 * @example
 * ```ts
 * import { addXorMappedAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0101, Uint8Array.fromHex("b7e7a701bc34d686fa87dfae"));
 * addXorMappedAddress(writer, { hostname: "192.0.2.1", port: 32853 });
 * console.log(writer.bytes().subarray(20).toHex()); // "002000080001a147e112a643"
 * ```
 */
export function addXorMappedAddress(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(
    writer,
    AttributeType.XorMappedAddress,
    address.hostname,
    address.port,
    true,
  );
}
