/**
 * Textual IP addresses to bytes and back, as the address attributes need them: dotted-quad IPv4,
 * RFC 4291 IPv6 (with `::` compression and an embedded IPv4 tail) and RFC 5952 canonical IPv6
 * output. Also turns IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) back into IPv4.
 *
 * @module
 */

/** Address family of a STUN address attribute. */
export type StunAddressFamily = "IPv4" | "IPv6";

const DIGIT_0 = 48;
const DIGIT_9 = 57;

function hexValue(code: number): number {
  if (code >= DIGIT_0 && code <= DIGIT_9) return code - DIGIT_0;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** Writes dotted-quad `text[start..end)` into `out[offset..offset+4)`; false if malformed. */
function writeIpv4Part(
  text: string,
  start: number,
  end: number,
  out: Uint8Array,
  offset: number,
): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || part === 3) return false;
      out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (code >= DIGIT_0 && code <= DIGIT_9) {
      if (digits > 0 && value === 0) return false; // no leading zeros ("01")
      value = value * 10 + code - DIGIT_0;
      digits++;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  if (digits === 0 || part !== 3) return false;
  out[offset + 3] = value;
  return true;
}

/** Writes IPv6 `text` into `out[offset..offset+16)`; false if malformed. */
function writeIpv6(text: string, out: Uint8Array, offset: number): boolean {
  let end = text.indexOf("%"); // zone ID ("fe80::1%eth0") is not carried by STUN
  if (end < 0) end = text.length;
  if (end < 2) return false;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      out.fill(0, offset, offset + 16);
      return true;
    }
  }
  while (i < end) {
    let value = 0;
    let digits = 0;
    const groupStart = i;
    while (i < end && digits <= 4) {
      const v = hexValue(text.charCodeAt(i));
      if (v < 0) break;
      value = (value << 4) | v;
      digits++;
      i++;
    }
    if (i < end && text.charCodeAt(i) === 46) {
      // Embedded IPv4 tail: must be the last 32 bits.
      if (groups.length > 6) return false;
      const tail = new Uint8Array(4);
      if (!writeIpv4Part(text, groupStart, end, tail, 0)) return false;
      groups.push((tail[0] << 8) | tail[1], (tail[2] << 8) | tail[3]);
      i = end;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    groups.push(value);
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = groups.length;
      i++;
    } else if (i === end) {
      return false; // trailing single colon
    }
  }
  if (groups.length > 8) return false;
  if (gap < 0 && groups.length !== 8) return false;
  if (gap >= 0 && groups.length > 7) return false;
  const zeros = 8 - groups.length;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    let value: number;
    if (gap >= 0 && k >= gap && k < gap + zeros) value = 0;
    else value = groups[g++];
    out[offset + 2 * k] = value >> 8;
    out[offset + 2 * k + 1] = value & 0xff;
  }
  return true;
}

/**
 * Writes a textual IP address into `out` at `offset` and returns how many bytes it wrote: 4 for
 * IPv4, 16 for IPv6, 0 when `text` is not a literal IP address (nothing useful is written then).
 * Allocation-free for IPv4 and plain IPv6; meant for hot paths.
 *
 * @example
 * ```ts
 * import { writeIpAddress } from "./ip.ts";
 * const out = new Uint8Array(16);
 * console.log(writeIpAddress("192.0.2.1", out, 0)); // 4
 * console.log(writeIpAddress("2001:db8::1", out, 0)); // 16
 * console.log(writeIpAddress("example.org", out, 0)); // 0
 * ```
 */
export function writeIpAddress(text: string, out: Uint8Array, offset: number): 0 | 4 | 16 {
  if (text.indexOf(":") >= 0) {
    if (out.length - offset < 16) return 0;
    return writeIpv6(text, out, offset) ? 16 : 0;
  }
  if (out.length - offset < 4) return 0;
  return writeIpv4Part(text, 0, text.length, out, offset) ? 4 : 0;
}

/**
 * Parses a literal IPv4 or IPv6 address to its bytes (4 or 16), or `undefined` if `text` is not
 * one.
 *
 * @example
 * ```ts
 * import { parseIpAddress } from "./ip.ts";
 * console.log(parseIpAddress("127.0.0.1")); // Uint8Array(4) [127, 0, 0, 1]
 * console.log(parseIpAddress("::1")?.length); // 16
 * ```
 */
export function parseIpAddress(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const length = writeIpAddress(text, out, 0);
  return length === 0 ? undefined : out.slice(0, length);
}

/**
 * Formats 4 bytes as dotted-quad IPv4 or 16 bytes as RFC 5952 canonical IPv6 (lowercase, the
 * longest run of two or more zero groups compressed to `::`).
 *
 * @example
 * ```ts
 * import { formatIpAddress } from "./ip.ts";
 * console.log(formatIpAddress(new Uint8Array([192, 0, 2, 1]))); // "192.0.2.1"
 * const v6 = new Uint8Array(16);
 * v6[0] = 0x20; v6[1] = 0x01; v6[15] = 1;
 * console.log(formatIpAddress(v6)); // "2001::1"
 * ```
 */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) {
    throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  }
  const groups: number[] = [];
  for (let k = 0; k < 8; k++) groups.push((bytes[2 * k] << 8) | bytes[2 * k + 1]);
  let bestStart = -1;
  let bestLength = 1;
  for (let k = 0; k < 8;) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let j = k;
    while (j < 8 && groups[j] === 0) j++;
    if (j - k > bestLength) {
      bestStart = k;
      bestLength = j - k;
    }
    k = j;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4
 * peers) into plain IPv4 text; returns any other address unchanged.
 *
 * @example
 * ```ts
 * import { unmapIpv4 } from "./ip.ts";
 * console.log(unmapIpv4("::ffff:192.0.2.1")); // "192.0.2.1"
 * console.log(unmapIpv4("2001:db8::1")); // "2001:db8::1"
 * ```
 */
export function unmapIpv4(hostname: string): string {
  if (hostname.length > 7 && hostname.charCodeAt(0) === 58) {
    if (!hostname.startsWith("::ffff:") && !hostname.toLowerCase().startsWith("::ffff:")) {
      return hostname;
    }
    const rest = hostname.slice(7);
    if (rest.indexOf(":") < 0 && rest.indexOf(".") > 0) return rest;
    // Hex form ("::ffff:c000:201") as some formatters print it.
    const bytes = parseIpAddress(hostname);
    if (bytes !== undefined && bytes.length === 16 && bytes[10] === 0xff && bytes[11] === 0xff) {
      return formatIpAddress(bytes.subarray(12));
    }
  }
  return hostname;
}
