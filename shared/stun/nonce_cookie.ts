/**
 * The RFC 8489 section 9.2 nonce cookie: a nonce that starts with `obMatJos2` followed by four
 * base64 characters (24 bits) of "security feature" flags tells a client the server supports
 * PASSWORD-ALGORITHMS (bit 0) and USERHASH (bit 1), and lets the client detect a bid-down attack.
 *
 * @module
 */

/** The fixed prefix of a nonce carrying security features. */
export const NONCE_COOKIE = "obMatJos2";

/** Security feature bits of the nonce cookie. */
export interface SecurityFeatures {
  /** The server supports PASSWORD-ALGORITHMS (SHA-256 keys). */
  passwordAlgorithms: boolean;
  /** The server supports USERHASH (username anonymity). */
  usernameAnonymity: boolean;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * The 13-character nonce prefix announcing `features`; append the server's own nonce text.
 *
 * @example
 * ```ts
 * import { nonceCookie } from "./nonce_cookie.ts";
 * console.log(nonceCookie({ passwordAlgorithms: true, usernameAnonymity: false })); // "obMatJos2AAAB"
 * ```
 */
export function nonceCookie(features: SecurityFeatures): string {
  const bits = (features.passwordAlgorithms ? 1 : 0) | (features.usernameAnonymity ? 2 : 0);
  let text = "";
  for (let shift = 18; shift >= 0; shift -= 6) text += BASE64[(bits >> shift) & 63];
  return NONCE_COOKIE + text;
}

/**
 * The security features a nonce announces, or undefined when it has no cookie.
 *
 * @example
 * ```ts
 * import { parseNonceCookie } from "./nonce_cookie.ts";
 * console.log(parseNonceCookie("obMatJos2AAABxyz")?.passwordAlgorithms); // true
 * console.log(parseNonceCookie("abc")); // undefined
 * ```
 */
export function parseNonceCookie(nonce: string): SecurityFeatures | undefined {
  if (!nonce.startsWith(NONCE_COOKIE) || nonce.length < NONCE_COOKIE.length + 4) return undefined;
  let bits = 0;
  for (let i = 0; i < 4; i++) {
    const digit = BASE64.indexOf(nonce[NONCE_COOKIE.length + i]);
    if (digit < 0) return undefined;
    bits = (bits << 6) | digit;
  }
  return { passwordAlgorithms: (bits & 1) !== 0, usernameAnonymity: (bits & 2) !== 0 };
}
