/**
 * STUN credential keys (RFC 8489 section 9): the short-term key and the long-term MD5 and
 * SHA-256 keys, and USERHASH.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { opaqueString } from "./string_prep.ts";

const encoder = new TextEncoder();

/** A long-term credential password algorithm (RFC 8489 section 18.5). */
export type PasswordAlgorithmName = "MD5" | "SHA-256";

/**
 * Short-term credential key (RFC 8489 section 9.1.1): the UTF-8 bytes of
 * OpaqueString(password).
 *
 * @throws {StunEncodeError} when OpaqueString refuses the password.
 *
 * @example
 * ```ts
 * import { shortTermKey } from "./credentials.ts";
 * console.log(shortTermKey("VOkJxbRl1RmTxUk/WvJxBt").length); // 22
 * ```
 */
export function shortTermKey(password: string): Uint8Array {
  return encoder.encode(opaqueString(password));
}

/**
 * Long-term credential key (RFC 8489 section 9.2.2):
 * `MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))` (16 bytes) or the same
 * with SHA-256 (32 bytes). The username is taken as given (already prepared by its profile).
 *
 * @throws {StunEncodeError} when OpaqueString refuses the realm or password.
 *
 * @example
 * ```ts
 * import { longTermKey } from "./credentials.ts";
 * const key = longTermKey("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org", "TheMatrIX");
 * console.log(key.length); // 16
 * ```
 */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  algorithm: PasswordAlgorithmName = "MD5",
): Uint8Array {
  const input = `${username}:${opaqueString(realm)}:${opaqueString(password)}`;
  const hash = createHash(algorithm === "MD5" ? "md5" : "sha256").update(input).digest();
  return new Uint8Array(hash.buffer, hash.byteOffset, hash.byteLength);
}

/**
 * The USERHASH value (RFC 8489 section 14.4): `SHA-256(username ":" OpaqueString(realm))`, 32
 * bytes.
 *
 * @example
 * ```ts
 * import { computeUserhash } from "./credentials.ts";
 * const hash = computeUserhash("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org");
 * console.log(hash.toHex().slice(0, 8)); // "4a3cf38f"
 * ```
 */
export function computeUserhash(username: string, realm: string): Uint8Array {
  const hash = createHash("sha256").update(`${username}:${opaqueString(realm)}`).digest();
  return new Uint8Array(hash.buffer, hash.byteOffset, hash.byteLength);
}
