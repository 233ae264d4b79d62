/**
 * STUN message decoding (RFC 8489 section 5 and 6.3): header checks, the attribute walk, and the
 * {@linkcode StunMessage} view over the bytes.
 *
 * @module
 */
import {
  ATTRIBUTE_HEADER_LENGTH,
  AttributeType,
  HEADER_LENGTH,
  KNOWN_REQUIRED_ATTRIBUTES,
  MAGIC_COOKIE,
  type StunClass,
} from "./constants.ts";
import { StunDecodeError } from "./errors.ts";
import { classOf, methodOf } from "./header.ts";

/** One attribute of a decoded message; `value` is a view into the message bytes (no padding). */
export interface StunAttribute {
  /** Attribute type (16 bits). */
  readonly type: number;
  /** The value bytes, without padding: a subarray of {@linkcode StunMessage.raw}. */
  readonly value: Uint8Array;
  /** Offset of the attribute's 4-byte header in {@linkcode StunMessage.raw}. */
  readonly offset: number;
}

/** Options of {@linkcode decodeStunMessage}. */
export interface DecodeStunMessageOptions {
  /**
   * Accept messages without the RFC 5389 magic cookie (RFC 3489 "classic STUN"). Such a message
   * has {@linkcode StunMessage.isLegacy} set. Default: false (`bad-magic-cookie` error).
   */
  allowLegacy?: boolean;
  /**
   * The comprehension-required attribute types the caller understands; others are listed in
   * {@linkcode StunMessage.unknownRequired}. Default: {@linkcode KNOWN_REQUIRED_ATTRIBUTES}.
   */
  comprehended?: ReadonlySet<number>;
}

/**
 * A decoded STUN message: header fields and attributes, all views into {@linkcode raw}.
 *
 * Attributes follow RFC 8489 section 14.5/14.6: anything after MESSAGE-INTEGRITY other than
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and anything after MESSAGE-INTEGRITY-SHA256 other than
 * FINGERPRINT, is ignored (walked for well-formedness but not listed).
 *
 * @example
 * ```ts
 * import { decodeStunMessage, StunClass, StunMethod } from "./mod.ts";
 * const bytes = Uint8Array.fromHex("000100002112a442" + "000102030405060708090a0b");
 * const message = decodeStunMessage(bytes);
 * console.log(message.method === StunMethod.Binding, message.messageClass === StunClass.Request);
 * ```
 */
export class StunMessage {
  /** The whole message as received (header and attributes). */
  readonly raw: Uint8Array;
  /** The 14-bit message type. */
  readonly type: number;
  /** The magic cookie field (0x2112A442 except for RFC 3489 messages). */
  readonly magicCookie: number;
  /** The 96-bit transaction ID (a view into {@linkcode raw}). */
  readonly transactionId: Uint8Array;
  /** The attributes that count, in wire order. */
  readonly attributes: readonly StunAttribute[];
  /** Comprehension-required attribute types the decoder was not told it understands. */
  readonly unknownRequired: readonly number[];

  /**
   * Wraps already-validated parts; use {@linkcode decodeStunMessage} to parse bytes.
   *
   * @example
   * ```ts
   * import { StunMessage } from "./message.ts";
   * const raw = Uint8Array.fromHex("000100002112a442000102030405060708090a0b");
   * const message = new StunMessage(raw, 1, 0x2112a442, raw.subarray(8, 20), [], []);
   * console.log(message.method); // 1
   * ```
   */
  constructor(
    raw: Uint8Array,
    type: number,
    magicCookie: number,
    transactionId: Uint8Array,
    attributes: readonly StunAttribute[],
    unknownRequired: readonly number[],
  ) {
    this.raw = raw;
    this.type = type;
    this.magicCookie = magicCookie;
    this.transactionId = transactionId;
    this.attributes = attributes;
    this.unknownRequired = unknownRequired;
  }

  /**
   * The 12-bit method.
   *
   * @example
   * ```ts
   * import { decodeStunMessage } from "./mod.ts";
   * const m = decodeStunMessage(Uint8Array.fromHex("000100002112a442000102030405060708090a0b"));
   * console.log(m.method); // 1
   * ```
   */
  get method(): number {
    return methodOf(this.type);
  }

  /**
   * The message class (request, indication, success or error response).
   *
   * @example
   * ```ts
   * import { decodeStunMessage, StunClass } from "./mod.ts";
   * const m = decodeStunMessage(Uint8Array.fromHex("010100002112a442000102030405060708090a0b"));
   * console.log(m.messageClass === StunClass.SuccessResponse); // true
   * ```
   */
  get messageClass(): StunClass {
    return classOf(this.type);
  }

  /**
   * True for an RFC 3489 message (no magic cookie; decoded with `allowLegacy`).
   *
   * @example
   * ```ts
   * import { decodeStunMessage } from "./mod.ts";
   * const bytes = Uint8Array.fromHex("00010000" + "00".repeat(16));
   * console.log(decodeStunMessage(bytes, { allowLegacy: true }).isLegacy); // true
   * ```
   */
  get isLegacy(): boolean {
    return this.magicCookie !== MAGIC_COOKIE;
  }

  /**
   * The first attribute of a type, or undefined.
   *
   * @example
   * ```ts
   * import { AttributeType, decodeStunMessage } from "./mod.ts";
   * const m = decodeStunMessage(Uint8Array.fromHex("000100002112a442000102030405060708090a0b"));
   * console.log(m.get(AttributeType.Username)); // undefined
   * ```
   */
  get(type: number): StunAttribute | undefined {
    const attributes = this.attributes;
    for (let i = 0; i < attributes.length; i++) {
      if (attributes[i].type === type) return attributes[i];
    }
    return undefined;
  }

  /**
   * Whether the message carries an attribute of this type.
   *
   * @example
   * ```ts
   * import { AttributeType, decodeStunMessage } from "./mod.ts";
   * const m = decodeStunMessage(Uint8Array.fromHex("000100002112a442000102030405060708090a0b"));
   * console.log(m.has(AttributeType.Fingerprint)); // false
   * ```
   */
  has(type: number): boolean {
    return this.get(type) !== undefined;
  }
}

/**
 * Cheap pre-check of a datagram before full decoding: at least a header, the two leading bits
 * zero, the length field a multiple of 4 equal to the bytes after the header, and (unless
 * `allowLegacy`) the magic cookie. Never throws.
 *
 * @example
 * ```ts
 * import { looksLikeStun } from "./message.ts";
 * console.log(looksLikeStun(Uint8Array.fromHex("000100002112a442000102030405060708090a0b"))); // true
 * console.log(looksLikeStun(new Uint8Array(20))); // false (no magic cookie)
 * ```
 */
export function looksLikeStun(bytes: Uint8Array, allowLegacy = false): boolean {
  if (bytes.length < HEADER_LENGTH || (bytes[0] & 0xc0) !== 0) return false;
  const length = (bytes[2] << 8) | bytes[3];
  if ((length & 3) !== 0 || length + HEADER_LENGTH !== bytes.length) return false;
  return allowLegacy ||
    (bytes[4] === 0x21 && bytes[5] === 0x12 && bytes[6] === 0xa4 && bytes[7] === 0x42);
}

/**
 * Decodes a STUN message. The input must be exactly one message (as a UDP datagram is).
 * Attribute values are not interpreted here; read them with the attribute functions
 * (`getXorMappedAddress`, `getUsername`...), which throw {@linkcode StunDecodeError} on a
 * malformed value.
 *
 * @throws {StunDecodeError} when the bytes are not a well-formed STUN message. Nothing else is
 * ever thrown, and nothing past `bytes.length` is ever read.
 *
 * @example
 * ```ts
 * import { decodeStunMessage } from "./mod.ts";
 * const m = decodeStunMessage(Uint8Array.fromHex("000100002112a442b7e7a701bc34d686fa87dfae"));
 * console.log(m.transactionId.toHex()); // "b7e7a701bc34d686fa87dfae"
 * ```
 */
export function decodeStunMessage(
  bytes: Uint8Array,
  options?: DecodeStunMessageOptions,
): StunMessage {
  if (bytes.length < HEADER_LENGTH) {
    throw new StunDecodeError("truncated", `a STUN header has 20 bytes, got ${bytes.length}`);
  }
  if ((bytes[0] & 0xc0) !== 0) {
    throw new StunDecodeError("not-stun", "the two leading bits of a STUN message are zero");
  }
  const type = (bytes[0] << 8) | bytes[1];
  const length = (bytes[2] << 8) | bytes[3];
  const magicCookie = ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
  if (magicCookie !== MAGIC_COOKIE && options?.allowLegacy !== true) {
    throw new StunDecodeError(
      "bad-magic-cookie",
      `magic cookie is 0x${magicCookie.toString(16)}, not 0x2112a442`,
    );
  }
  if ((length & 3) !== 0) {
    throw new StunDecodeError("bad-length", `message length ${length} is not a multiple of 4`);
  }
  if (length + HEADER_LENGTH !== bytes.length) {
    throw new StunDecodeError(
      length + HEADER_LENGTH > bytes.length ? "truncated" : "bad-length",
      `header says ${length} bytes of attributes, input has ${bytes.length - HEADER_LENGTH}`,
    );
  }
  const comprehended = options?.comprehended ?? KNOWN_REQUIRED_ATTRIBUTES;
  const attributes: StunAttribute[] = [];
  let unknownRequired: number[] | undefined;
  // 0: normal, 1: after MESSAGE-INTEGRITY, 2: after MESSAGE-INTEGRITY-SHA256, 3: after FINGERPRINT
  let stage = 0;
  let offset = HEADER_LENGTH;
  const end = bytes.length;
  while (offset < end) {
    if (end - offset < ATTRIBUTE_HEADER_LENGTH) {
      throw new StunDecodeError("truncated", `attribute header at ${offset} is cut off`);
    }
    const attributeType = (bytes[offset] << 8) | bytes[offset + 1];
    const valueLength = (bytes[offset + 2] << 8) | bytes[offset + 3];
    const valueStart = offset + ATTRIBUTE_HEADER_LENGTH;
    const next = valueStart + ((valueLength + 3) & ~3);
    if (next > end) {
      throw new StunDecodeError(
        "truncated",
        `attribute 0x${attributeType.toString(16)} at ${offset} claims ${valueLength} bytes`,
      );
    }
    if (stage === 3) {
      throw new StunDecodeError(
        "attribute-after-fingerprint",
        `attribute 0x${attributeType.toString(16)} follows FINGERPRINT`,
      );
    }
    let counts: boolean;
    if (attributeType === AttributeType.Fingerprint) {
      counts = true;
      stage = 3;
    } else if (attributeType === AttributeType.MessageIntegritySha256) {
      counts = stage < 2;
      stage = 2;
    } else if (attributeType === AttributeType.MessageIntegrity) {
      counts = stage === 0;
      if (stage === 0) stage = 1;
    } else {
      counts = stage === 0;
    }
    if (counts) {
      attributes.push({
        type: attributeType,
        value: bytes.subarray(valueStart, valueStart + valueLength),
        offset,
      });
      if (attributeType < 0x8000 && !comprehended.has(attributeType)) {
        (unknownRequired ??= []).push(attributeType);
      }
    }
    offset = next;
  }
  return new StunMessage(
    bytes,
    type,
    magicCookie,
    bytes.subarray(8, HEADER_LENGTH),
    attributes,
    unknownRequired ?? NO_TYPES,
  );
}

const NO_TYPES: readonly number[] = Object.freeze([]);
