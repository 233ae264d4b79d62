/**
 * Password and realm preparation: RFC 8265 OpaqueString (what RFC 8489 uses) and RFC 4013
 * SASLprep (what RFC 5389 used, and what the RFC 5769 long-term vector was made with).
 *
 * @module
 */
import { StunEncodeError } from "./errors.ts";

// RFC 3454 C.1.2 non-ASCII space characters (mapped to U+0020 by both profiles).
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
// RFC 3454 B.1: commonly mapped to nothing (SASLprep only).
const MAPPED_TO_NOTHING =
  /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
// RFC 4013 section 2.3 prohibited output (RFC 3454 C.1.2, C.2.1, C.2.2, C.3-C.9).
const SASLPREP_PROHIBITED = new RegExp(
  "[" +
    "\\u0000-\\u001F\\u007F-\\u009F\\u00A0\\u0340\\u0341\\u06DD\\u070F\\u1680\\u180E" +
    "\\u2000-\\u200F\\u2028-\\u202F\\u205F-\\u2063\\u206A-\\u206F\\u2FF0-\\u2FFB\\u3000" +
    "\\uD800-\\uDFFF\\uE000-\\uF8FF\\uFDD0-\\uFDEF\\uFEFF\\uFFF9-\\uFFFF" +
    "\\u{1D173}-\\u{1D17A}\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}" +
    "\\u{4FFFE}\\u{4FFFF}\\u{5FFFE}\\u{5FFFF}\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}" +
    "\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}\\u{AFFFE}\\u{AFFFF}\\u{BFFFE}\\u{BFFFF}" +
    "\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{E0001}\\u{E0020}-\\u{E007F}" +
    "\\u{EFFFE}-\\u{10FFFF}" +
    "]",
  "u",
);
// RFC 8264 FreeformClass: disallowed code points (controls, ignorables, noncharacters,
// surrogates, unassigned). Private use is disallowed too.
const OPAQUE_DISALLOWED =
  /[\p{Cc}\p{Cs}\p{Cn}\p{Co}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;

/**
 * RFC 8265 OpaqueString: non-ASCII spaces become U+0020, then NFC; refuses empty strings and
 * the code points FreeformClass disallows (controls, default-ignorables, unassigned...).
 * Plain printable ASCII comes back unchanged.
 *
 * @throws {StunEncodeError} when the string is empty or holds a disallowed code point.
 *
 * @example
 * ```ts
 * import { opaqueString } from "./string_prep.ts";
 * console.log(opaqueString("VOkJxbRl1RmTxUk/WvJxBt")); // "VOkJxbRl1RmTxUk/WvJxBt"
 * console.log(opaqueString("a\u00A0b")); // "a b"
 * ```
 */
export function opaqueString(input: string): string {
  if (isPrintableAscii(input)) return input;
  const output = input.replace(NON_ASCII_SPACE, " ").normalize("NFC");
  if (output.length === 0) throw new StunEncodeError("OpaqueString: empty string");
  const bad = OPAQUE_DISALLOWED.exec(output);
  if (bad !== null) {
    throw new StunEncodeError(
      `OpaqueString: disallowed code point U+${bad[0].codePointAt(0)!.toString(16).toUpperCase()}`,
    );
  }
  return output;
}

/**
 * RFC 4013 SASLprep (stored-string profile, without the RFC 3454 bidirectional-text check):
 * B.1 characters removed, non-ASCII spaces mapped to U+0020, NFKC, prohibited output refused.
 *
 * @throws {StunEncodeError} when the prepared string holds a prohibited code point.
 *
 * @example
 * ```ts
 * import { saslPrep } from "./string_prep.ts";
 * console.log(saslPrep("The\u00ADM\u00AAtr\u2168")); // "TheMatrIX" (RFC 5769 section 2.4)
 * ```
 */
export function saslPrep(input: string): string {
  if (isPrintableAscii(input)) return input;
  const output = input.replace(MAPPED_TO_NOTHING, "").replace(NON_ASCII_SPACE, " ").normalize(
    "NFKC",
  );
  const bad = SASLPREP_PROHIBITED.exec(output);
  if (bad !== null) {
    throw new StunEncodeError(
      `SASLprep: prohibited code point U+${bad[0].codePointAt(0)!.toString(16).toUpperCase()}`,
    );
  }
  return output;
}

function isPrintableAscii(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}
