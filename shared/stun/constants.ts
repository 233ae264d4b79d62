/**
 * STUN constants from RFC 8489 and RFC 5780: the magic cookie, header sizes, message classes,
 * methods and attribute types.
 *
 * @module
 */

/** The fixed magic cookie of every RFC 5389/8489 message (bytes 4..8 of the header). */
export const MAGIC_COOKIE = 0x2112a442;

/** Length of the STUN header in bytes. */
export const HEADER_LENGTH = 20;

/** Length of a transaction ID in bytes (96 bits). */
export const TRANSACTION_ID_LENGTH = 12;

/** Length of an attribute header (type and length) in bytes. */
export const ATTRIBUTE_HEADER_LENGTH = 4;

/**
 * The four STUN message classes (RFC 8489 section 5).
 *
 * @example
 * ```ts
 * import { StunClass } from "./constants.ts";
 * console.log(StunClass.SuccessResponse); // 2
 * ```
 */
export const StunClass = {
  Request: 0,
  Indication: 1,
  SuccessResponse: 2,
  ErrorResponse: 3,
} as const;

/** One of the values of {@linkcode StunClass}. */
export type StunClass = typeof StunClass[keyof typeof StunClass];

/**
 * STUN methods. RFC 8489 defines only Binding; the codec carries any 12-bit method.
 *
 * @example
 * ```ts
 * import { StunMethod } from "./constants.ts";
 * console.log(StunMethod.Binding); // 1
 * ```
 */
export const StunMethod = {
  Binding: 0x001,
} as const;

/**
 * Attribute types known to this codec (RFC 8489 section 18.3, RFC 5780 section 7, and the RFC
 * 8445 ICE attributes that appear in the RFC 5769 vectors).
 *
 * Types below 0x8000 are comprehension-required, types from 0x8000 up are comprehension-optional.
 *
 * @example
 * ```ts
 * import { AttributeType } from "./constants.ts";
 * console.log(AttributeType.XorMappedAddress.toString(16)); // "20"
 * ```
 */
export const AttributeType = {
  MappedAddress: 0x0001,
  ChangeRequest: 0x0003,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
} as const;

/** One of the values of {@linkcode AttributeType}. */
export type KnownAttributeType = typeof AttributeType[keyof typeof AttributeType];

/**
 * Tells whether an attribute type is comprehension-required (0x0000-0x7FFF): an agent that does
 * not understand it must reject the message (a server answers 420 Unknown Attribute).
 *
 * @example
 * ```ts
 * import { isComprehensionRequired } from "./constants.ts";
 * console.log(isComprehensionRequired(0x0020)); // true
 * console.log(isComprehensionRequired(0x8022)); // false
 * ```
 */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

/**
 * The comprehension-required attribute types this codec understands. A decoded message reports
 * every other comprehension-required type in {@linkcode StunMessage.unknownRequired}.
 *
 * @example
 * ```ts
 * import { AttributeType, KNOWN_REQUIRED_ATTRIBUTES } from "./constants.ts";
 * console.log(KNOWN_REQUIRED_ATTRIBUTES.has(AttributeType.Username)); // true
 * ```
 */
export const KNOWN_REQUIRED_ATTRIBUTES: ReadonlySet<number> = new Set<number>(
  Object.values(AttributeType).filter(isComprehensionRequired),
);

/**
 * STUN error codes used by RFC 8489 (section 14.8).
 *
 * @example
 * ```ts
 * import { ErrorCodes } from "./constants.ts";
 * console.log(ErrorCodes.Unauthenticated); // 401
 * ```
 */
export const ErrorCodes = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthenticated: 401,
  UnknownAttribute: 420,
  StaleNonce: 438,
  ServerError: 500,
} as const;
