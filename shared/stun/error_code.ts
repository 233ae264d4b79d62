/**
 * ERROR-CODE (RFC 8489 section 14.8): a code from 300 to 699 and a UTF-8 reason phrase.
 *
 * @module
 */
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import type { StunMessage } from "./message.ts";
import type { StunMessageWriter } from "./writer.ts";

/** A decoded ERROR-CODE. */
export interface StunErrorCode {
  /** The code, 300..699 (class * 100 + number). */
  code: number;
  /** The reason phrase. */
  reason: string;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Default reason phrases of RFC 8489's error codes. */
const REASONS: Record<number, string> = {
  300: "Try Alternate",
  400: "Bad Request",
  401: "Unauthenticated",
  420: "Unknown Attribute",
  403: "Forbidden",
  437: "Allocation Mismatch",
  438: "Stale Nonce",
  440: "Address Family not Supported",
  441: "Wrong Credentials",
  442: "Unsupported Transport Protocol",
  443: "Peer Address Family Mismatch",
  486: "Allocation Quota Reached",
  500: "Server Error",
  508: "Insufficient Capacity",
};

/**
 * ERROR-CODE (0x0009) of a message, if present.
 *
 * @throws {StunDecodeError} (`bad-attribute`) when the attribute is malformed.
 *
 * @example
 * ```ts
 * import { addErrorCode, decodeStunMessage, getErrorCode, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addErrorCode(writer, 420);
 * console.log(getErrorCode(decodeStunMessage(writer.bytes())));
 * // { code: 420, reason: "Unknown Attribute" }
 * ```
 */
export function getErrorCode(message: StunMessage): StunErrorCode | undefined {
  const attribute = message.get(AttributeType.ErrorCode);
  if (attribute === undefined) return undefined;
  const value = attribute.value;
  if (value.length < 4 || value.length > 4 + 763) {
    throw new StunDecodeError("bad-attribute", `ERROR-CODE value of ${value.length} bytes`);
  }
  const errorClass = value[2] & 0x07;
  const number = value[3];
  if (errorClass < 3 || errorClass > 6 || number > 99) {
    throw new StunDecodeError("bad-attribute", `ERROR-CODE class ${errorClass} number ${number}`);
  }
  let reason: string;
  try {
    reason = decoder.decode(value.subarray(4));
  } catch {
    throw new StunDecodeError("bad-attribute", "ERROR-CODE reason is not valid UTF-8");
  }
  return { code: errorClass * 100 + number, reason };
}

/**
 * Appends ERROR-CODE (0x0009). The reason defaults to RFC 8489's phrase for the code.
 *
 * @throws {StunEncodeError} when `code` is not an integer in 300..699.
 *
 * @example
 * ```ts
 * import { addErrorCode, StunMessageWriter } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.startRaw(0x0111, new Uint8Array(12));
 * addErrorCode(writer, 401);
 * console.log(writer.bytes().subarray(24, 28)); // Uint8Array(4) [0, 0, 4, 1]
 * ```
 */
export function addErrorCode(writer: StunMessageWriter, code: number, reason?: string): void {
  if (!Number.isInteger(code) || code < 300 || code > 699) {
    throw new StunEncodeError(`error code ${code} is not 300..699`);
  }
  const phrase = encoder.encode(reason ?? REASONS[code] ?? "");
  if (phrase.length > 763) throw new StunEncodeError("ERROR-CODE reason over 763 bytes");
  const at = writer.reserveAttribute(AttributeType.ErrorCode, 4 + phrase.length);
  const buffer = writer.buffer;
  buffer[at] = 0;
  buffer[at + 1] = 0;
  buffer[at + 2] = Math.floor(code / 100);
  buffer[at + 3] = code % 100;
  buffer.set(phrase, at + 4);
}
