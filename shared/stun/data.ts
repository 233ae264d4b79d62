/**
 * DATA (RFC 8656 section 18.4): the application bytes of Send and Data indications.
 *
 * @module
 */
import type { StunMessage } from "./message.ts";
import { TurnAttributeType } from "./turn_constants.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * DATA (0x0013) of a message, if present: a view into the message bytes.
 *
 * @example
 * ```ts
 * import { addData, decodeStunMessage, getData, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0016, new Uint8Array(12));
 * addData(writer, Uint8Array.of(1, 2, 3));
 * console.log(getData(decodeStunMessage(writer.bytes()))); // Uint8Array(3) [1, 2, 3]
 * ```
 */
export function getData(message: StunMessage): Uint8Array | undefined {
  return message.get(TurnAttributeType.Data)?.value;
}

/**
 * Appends DATA (0x0013).
 *
 * @throws {StunEncodeError} when the data does not fit the writer's buffer.
 *
 * @example
 * ```ts
 * import { addData, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0017, new Uint8Array(12));
 * addData(writer, new Uint8Array(5));
 * console.log(writer.length); // 32
 * ```
 */
export function addData(writer: StunMessageWriter, data: Uint8Array): void {
  writer.addAttribute(TurnAttributeType.Data, data);
}
