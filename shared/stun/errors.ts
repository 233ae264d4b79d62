/**
 * Typed errors of the STUN codec.
 *
 * @module
 */

/**
 * Why a byte sequence is not a STUN message (or not a well-formed attribute).
 *
 * - `truncated`: fewer bytes than the header or an attribute claims.
 * - `not-stun`: the two leading bits of the message type are not zero.
 * - `bad-magic-cookie`: the magic cookie is not 0x2112A442 (and legacy messages were not allowed).
 * - `bad-length`: the header's length field is not a multiple of 4 or disagrees with the input.
 * - `attribute-after-fingerprint`: an attribute follows FINGERPRINT, which must be last.
 * - `bad-attribute`: an attribute value does not have the format its type requires.
 */
export type StunDecodeErrorReason =
  | "truncated"
  | "not-stun"
  | "bad-magic-cookie"
  | "bad-length"
  | "attribute-after-fingerprint"
  | "bad-attribute";

/**
 * The only error the STUN decoders throw: the input is not a well-formed STUN message or
 * attribute. `reason` says why in a machine-readable way.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, StunDecodeError } from "./mod.ts";
 * try {
 *   decodeStunMessage(new Uint8Array(3));
 * } catch (error) {
 *   if (error instanceof StunDecodeError) console.log(error.reason); // "truncated"
 * }
 * ```
 */
export class StunDecodeError extends Error {
  /** Machine-readable cause. */
  readonly reason: StunDecodeErrorReason;

  /**
   * Creates a decode error.
   *
   * @example
   * ```ts
   * import { StunDecodeError } from "./errors.ts";
   * const error = new StunDecodeError("truncated", "need 20 bytes");
   * console.log(error.reason); // "truncated"
   * ```
   */
  constructor(reason: StunDecodeErrorReason, message: string) {
    super(message);
    this.name = "StunDecodeError";
    this.reason = reason;
  }
}

/**
 * Thrown by the STUN encoders when asked to write something the format cannot carry (a value
 * over 65,535 bytes, a message larger than the writer's buffer, a malformed address...).
 *
 * @example
 * ```ts
 * import { StunEncodeError } from "./errors.ts";
 * const error = new StunEncodeError("value too long");
 * console.log(error.name); // "StunEncodeError"
 * ```
 */
export class StunEncodeError extends Error {
  /**
   * Creates an encode error.
   *
   * @example
   * ```ts
   * import { StunEncodeError } from "./errors.ts";
   * console.log(new StunEncodeError("too long").message); // "too long"
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "StunEncodeError";
  }
}
