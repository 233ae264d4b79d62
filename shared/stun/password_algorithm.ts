/**
 * PASSWORD-ALGORITHM (RFC 8489 section 14.12) and PASSWORD-ALGORITHMS (section 14.11).
 *
 * Each algorithm is written as a 16-bit number, a 16-bit parameter length and the parameters
 * padded to a multiple of 4 bytes.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/**
 * Password algorithm numbers (RFC 8489 section 18.5).
 *
 * @example
 * ```ts
 * import { PasswordAlgorithm } from "./password_algorithm.ts";
 * console.log(PasswordAlgorithm.Sha256); // 2
 * ```
 */
export const PasswordAlgorithm = {
  Md5: 0x0001,
  Sha256: 0x0002,
} as const;

/** One password algorithm with its (usually empty) parameters. */
export interface PasswordAlgorithmEntry {
  /** Algorithm number, e.g. {@linkcode PasswordAlgorithm.Sha256}. */
  algorithm: number;
  /** Algorithm parameters (empty for MD5 and SHA-256). */
  parameters: Uint8Array;
}

function readEntries(value: Uint8Array, name: string): PasswordAlgorithmEntry[] {
  const entries: PasswordAlgorithmEntry[] = [];
  let offset = 0;
  while (offset < value.length) {
    if (value.length - offset < 4) {
      throw new StunDecodeError("bad-attribute", `${name}: entry header cut off at ${offset}`);
    }
    const algorithm = (value[offset] << 8) | value[offset + 1];
    const length = (value[offset + 2] << 8) | value[offset + 3];
    const start = offset + 4;
    const padded = (length + 3) & ~3;
    if (start + length > value.length) {
      throw new StunDecodeError("bad-attribute", `${name}: parameters of ${length} bytes cut off`);
    }
    entries.push({ algorithm, parameters: value.slice(start, start + length) });
    offset = Math.min(start + padded, value.length);
  }
  return entries;
}

function entriesLength(entries: readonly PasswordAlgorithmEntry[]): number {
  let length = 0;
  for (const entry of entries) {
    if (entry.parameters.length > 0xffff) throw new StunEncodeError("parameters over 65535 bytes");
    length += 4 + ((entry.parameters.length + 3) & ~3);
  }
  return length;
}

function writeEntries(
  writer: StunMessageWriter,
  at: number,
  entries: readonly PasswordAlgorithmEntry[],
): void {
  let offset = at;
  for (const entry of entries) {
    writer.view.setUint16(offset, entry.algorithm);
    writer.view.setUint16(offset + 2, entry.parameters.length);
    writer.buffer.set(entry.parameters, offset + 4);
    const padded = (entry.parameters.length + 3) & ~3;
    writer.buffer.fill(0, offset + 4 + entry.parameters.length, offset + 4 + padded);
    offset += 4 + padded;
  }
}

/**
 * PASSWORD-ALGORITHM (0x001D) of a message, if present.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when the value is not exactly one entry.
 *
 * @example
 * ```ts
 * import { addPasswordAlgorithm, decodeStunMessage, getPasswordAlgorithm, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addPasswordAlgorithm(writer, { algorithm: 2, parameters: new Uint8Array() });
 * console.log(getPasswordAlgorithm(decodeStunMessage(writer.bytes()))?.algorithm); // 2
 * ```
 */
export function getPasswordAlgorithm(message: StunMessage): PasswordAlgorithmEntry | undefined {
  const attribute = message.get(AttributeType.PasswordAlgorithm);
  if (attribute === undefined) return undefined;
  const entries = readEntries(attribute.value, "PASSWORD-ALGORITHM");
  if (entries.length !== 1) {
    throw new StunDecodeError("bad-attribute", "PASSWORD-ALGORITHM holds one algorithm");
  }
  return entries[0];
}

/**
 * Appends PASSWORD-ALGORITHM (0x001D).
 *
 * @example
 * ```ts
 * import { addPasswordAlgorithm, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0001, new Uint8Array(12));
 * addPasswordAlgorithm(writer, { algorithm: 2, parameters: new Uint8Array() });
 * console.log(writer.bytes().subarray(20).toHex()); // "001d000400020000"
 * ```
 */
export function addPasswordAlgorithm(
  writer: StunMessageWriter,
  entry: PasswordAlgorithmEntry,
): void {
  const at = writer.reserveAttribute(AttributeType.PasswordAlgorithm, entriesLength([entry]));
  writeEntries(writer, at, [entry]);
}

/**
 * PASSWORD-ALGORITHMS (0x8002) of a message, if present.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when an entry is cut off.
 *
 * @example
 * ```ts
 * import { addPasswordAlgorithms, decodeStunMessage, getPasswordAlgorithms, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * const none = new Uint8Array();
 * addPasswordAlgorithms(writer, [{ algorithm: 2, parameters: none }, { algorithm: 1, parameters: none }]);
 * console.log(getPasswordAlgorithms(decodeStunMessage(writer.bytes()))?.map((e) => e.algorithm)); // [2, 1]
 * ```
 */
export function getPasswordAlgorithms(
  message: StunMessage,
): PasswordAlgorithmEntry[] | undefined {
  const attribute = message.get(AttributeType.PasswordAlgorithms);
  if (attribute === undefined) return undefined;
  return readEntries(attribute.value, "PASSWORD-ALGORITHMS");
}

/**
 * Appends PASSWORD-ALGORITHMS (0x8002).
 *
 * @example
 * ```ts
 * import { addPasswordAlgorithms, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addPasswordAlgorithms(writer, [{ algorithm: 1, parameters: new Uint8Array() }]);
 * console.log(writer.length); // 28
 * ```
 */
export function addPasswordAlgorithms(
  writer: StunMessageWriter,
  entries: readonly PasswordAlgorithmEntry[],
): void {
  const at = writer.reserveAttribute(AttributeType.PasswordAlgorithms, entriesLength(entries));
  writeEntries(writer, at, entries);
}
