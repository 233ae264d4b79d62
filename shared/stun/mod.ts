/**
 * STUN (RFC 8489) message codec, modelled on pion/stun: a {@linkcode StunMessage} view from
 * {@linkcode decodeStunMessage}, a reusable {@linkcode StunMessageWriter}, and one `get*`/`add*`
 * pair per attribute (MAPPED-ADDRESS, XOR-MAPPED-ADDRESS, USERNAME, USERHASH, REALM, NONCE,
 * PASSWORD-ALGORITHM(S), MESSAGE-INTEGRITY(-SHA256), FINGERPRINT, ERROR-CODE,
 * UNKNOWN-ATTRIBUTES, SOFTWARE, ALTERNATE-SERVER, ALTERNATE-DOMAIN, and RFC 5780's
 * CHANGE-REQUEST, RESPONSE-ORIGIN, OTHER-ADDRESS). Other attributes stay raw in
 * {@linkcode StunMessage.attributes}; unknown comprehension-required ones are listed in
 * {@linkcode StunMessage.unknownRequired}.
 *
 * Decoding throws only {@linkcode StunDecodeError}; encoding throws {@linkcode StunEncodeError}.
 *
 * @example
 * ```ts
 * import {
 *   addFingerprint, addXorMappedAddress, decodeStunMessage, getXorMappedAddress, StunClass,
 *   StunMessageWriter, StunMethod, verifyFingerprint,
 * } from "./mod.ts";
 * const writer = new StunMessageWriter();
 * writer.start(StunMethod.Binding, StunClass.SuccessResponse, crypto.getRandomValues(new Uint8Array(12)));
 * addXorMappedAddress(writer, { hostname: "198.18.0.7", port: 40000 });
 * addFingerprint(writer);
 * const message = decodeStunMessage(writer.bytes());
 * console.log(getXorMappedAddress(message)?.hostname, verifyFingerprint(message)); // "198.18.0.7" true
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./header.ts";
export * from "./ip.ts";
export * from "./message.ts";
export * from "./writer.ts";
export * from "./address.ts";
export * from "./xor_address.ts";
export * from "./text_attributes.ts";
export * from "./userhash.ts";
export * from "./password_algorithm.ts";
export * from "./error_code.ts";
export * from "./unknown_attributes.ts";
export * from "./change_request.ts";
export * from "./integrity.ts";
export * from "./fingerprint.ts";
export * from "./credentials.ts";
export * from "./string_prep.ts";
export * from "./turn_constants.ts";
export * from "./turn_address.ts";
export * from "./turn_allocation.ts";
export * from "./response_port.ts";
export * from "./data.ts";
export * from "./channel_data.ts";
export * from "./nonce_cookie.ts";
export * from "./retransmit.ts";
