/**
 * IPv6 literal parsing shared by the server's prefix limits and candidate checks.
 *
 * @module
 */

/**
 * The eight 16-bit groups of an IPv6 literal (zone and brackets allowed, an IPv4 tail
 * converted), or null when `host` is not one.
 *
 * @example
 * ```ts
 * console.log(ipv6GroupsOf("2001:db8::1")); // [8193, 3512, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function ipv6GroupsOf(host: string): number[] | null {
  let h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  if (!h.includes(":")) return null;
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4 !== null) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return null;
    h = h.slice(0, v4.index) + ((b[0] << 8) | b[1]).toString(16) + ":" +
      ((b[2] << 8) | b[3]).toString(16);
  }
  const halves = h.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}
