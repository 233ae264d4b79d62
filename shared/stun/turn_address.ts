/**
 * TURN's XOR address attributes (RFC 8656 sections 18.3 and 18.5): XOR-PEER-ADDRESS (one or
 * more per request) and XOR-RELAYED-ADDRESS. Same encoding as XOR-MAPPED-ADDRESS.
 *
 * @module
 */
import { addAddressAttribute, decodeAddressValue, type StunAddress } from "./address.ts";
import type { StunMessage } from "./message.ts";
import { TurnAttributeType } from "./turn_constants.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * Every XOR-PEER-ADDRESS (0x0012) of a message, in order (CreatePermission may carry several).
 *
 * @throws {StunDecodeError} when one is malformed.
 *
 * @example
 * ```ts
 * import { addXorPeerAddress, decodeStunMessage, getXorPeerAddresses, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0008, new Uint8Array(12));
 * addXorPeerAddress(writer, { hostname: "192.0.2.7", port: 4000 });
 * addXorPeerAddress(writer, { hostname: "2001:db8::7", port: 0 });
 * console.log(getXorPeerAddresses(decodeStunMessage(writer.bytes())).map((a) => a.hostname));
 * // ["192.0.2.7", "2001:db8::7"]
 * ```
 */
export function getXorPeerAddresses(message: StunMessage): StunAddress[] {
  const key = message.raw.subarray(4, 20);
  const found: StunAddress[] = [];
  for (const attribute of message.attributes) {
    if (attribute.type === TurnAttributeType.XorPeerAddress) {
      found.push(decodeAddressValue(attribute.value, key));
    }
  }
  return found;
}

/**
 * Appends XOR-PEER-ADDRESS (0x0012).
 *
 * @throws {StunEncodeError} when `hostname` is not a literal IP address.
 *
 * @example
 * ```ts
 * import { addXorPeerAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0016, new Uint8Array(12));
 * addXorPeerAddress(writer, { hostname: "192.0.2.7", port: 4000 });
 * console.log(writer.length); // 32
 * ```
 */
export function addXorPeerAddress(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(
    writer,
    TurnAttributeType.XorPeerAddress,
    address.hostname,
    address.port,
    true,
  );
}

/**
 * XOR-RELAYED-ADDRESS (0x0016) of a message, if present (the first one; RFC 8656 allows a
 * second for dual allocations).
 *
 * @throws {StunDecodeError} when it is malformed.
 *
 * @example
 * ```ts
 * import { addXorRelayedAddress, decodeStunMessage, getXorRelayedAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0103, new Uint8Array(12));
 * addXorRelayedAddress(writer, { hostname: "198.51.100.1", port: 50000 });
 * console.log(getXorRelayedAddress(decodeStunMessage(writer.bytes()))?.port); // 50000
 * ```
 */
export function getXorRelayedAddress(message: StunMessage): StunAddress | undefined {
  const attribute = message.get(TurnAttributeType.XorRelayedAddress);
  if (attribute === undefined) return undefined;
  return decodeAddressValue(attribute.value, message.raw.subarray(4, 20));
}

/**
 * Appends XOR-RELAYED-ADDRESS (0x0016).
 *
 * @throws {StunEncodeError} when `hostname` is not a literal IP address.
 *
 * @example
 * ```ts
 * import { addXorRelayedAddress, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0103, new Uint8Array(12));
 * addXorRelayedAddress(writer, { hostname: "198.51.100.1", port: 50000 });
 * console.log(writer.length); // 32
 * ```
 */
export function addXorRelayedAddress(
  writer: StunMessageWriter,
  address: { hostname: string; port: number },
): void {
  addAddressAttribute(
    writer,
    TurnAttributeType.XorRelayedAddress,
    address.hostname,
    address.port,
    true,
  );
}
