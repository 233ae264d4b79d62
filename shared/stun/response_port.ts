/**
 * RESPONSE-PORT (RFC 5780 section 7.5): asks a behaviour-discovery server to send its answer to
 * this port of the client's reflexive address instead of the request's source port.
 *
 * @module
 */
import { StunDecodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import { TurnAttributeType } from "./turn_constants.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * RESPONSE-PORT (0x0027), if present.
 *
 * @throws {StunDecodeError} when the value is not 4 bytes.
 *
 * @example
 * ```ts
 * import { addResponsePort, decodeStunMessage, getResponsePort, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addResponsePort(writer, 40001);
 * console.log(getResponsePort(decodeStunMessage(writer.bytes()))); // 40001
 * ```
 */
export function getResponsePort(message: StunMessage): number | undefined {
  const attribute = message.get(TurnAttributeType.ResponsePort);
  if (attribute === undefined) return undefined;
  if (attribute.value.length !== 4) {
    throw new StunDecodeError("bad-attribute", `RESPONSE-PORT of ${attribute.value.length} bytes`);
  }
  return (attribute.value[0] << 8) | attribute.value[1];
}

/**
 * Appends RESPONSE-PORT (0x0027).
 *
 * @example
 * ```ts
 * import { addResponsePort, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addResponsePort(writer, 0x1234);
 * console.log(writer.bytes().subarray(20).toHex()); // "0027000412340000"
 * ```
 */
export function addResponsePort(writer: StunMessageWriter, port: number): void {
  const at = writer.reserveAttribute(TurnAttributeType.ResponsePort, 4);
  writer.view.setUint32(at, ((port & 0xffff) << 16) >>> 0);
}
