/**
 * CHANGE-REQUEST (RFC 5780 section 7.2): asks a NAT-behaviour-discovery server to answer from
 * another IP address and/or port.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/** The two flags of CHANGE-REQUEST. */
export interface ChangeRequest {
  /** Answer from another IP address (flag A, 0x4). */
  changeIp: boolean;
  /** Answer from another port (flag B, 0x2). */
  changePort: boolean;
}

/**
 * CHANGE-REQUEST (0x0003) of a message, if present.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when the value is not 4 bytes.
 *
 * @example
 * ```ts
 * import { addChangeRequest, decodeStunMessage, getChangeRequest, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addChangeRequest(writer, { changeIp: true, changePort: false });
 * console.log(getChangeRequest(decodeStunMessage(writer.bytes())));
 * // { changeIp: true, changePort: false }
 * ```
 */
export function getChangeRequest(message: StunMessage): ChangeRequest | undefined {
  const attribute = message.get(AttributeType.ChangeRequest);
  if (attribute === undefined) return undefined;
  if (attribute.value.length !== 4) {
    throw new StunDecodeError("bad-attribute", `CHANGE-REQUEST of ${attribute.value.length} bytes`);
  }
  const flags = attribute.value[3];
  return { changeIp: (flags & 0x04) !== 0, changePort: (flags & 0x02) !== 0 };
}

/**
 * Appends CHANGE-REQUEST (0x0003).
 *
 * @example
 * ```ts
 * import { addChangeRequest, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addChangeRequest(writer, { changeIp: false, changePort: true });
 * console.log(writer.bytes().subarray(20).toHex()); // "0003000400000002"
 * ```
 */
export function addChangeRequest(writer: StunMessageWriter, request: ChangeRequest): void {
  const at = writer.reserveAttribute(AttributeType.ChangeRequest, 4);
  writer.view.setUint32(at, (request.changeIp ? 0x04 : 0) | (request.changePort ? 0x02 : 0));
}
