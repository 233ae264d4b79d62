/**
 * Which candidate addresses may ever be probed (issue 11, "no packet cannon"): an introduction
 * naming 0.0.0.0 or 255.255.255.255 made a victim's client spray PUNCH packets where it should
 * not. Unspecified, broadcast (limited, and the .255 of no network we can know is not checked),
 * multicast and IPv4 "this network" (0/8) addresses are never candidates. Loopback is left to
 * the receiver (it is fine between two clients on one host, never from a remote peer).
 *
 * @module
 */
import { ipv6GroupsOf } from "./ipv6.ts";

/**
 * True when `host` (an IPv4 or IPv6 literal) may be offered as a candidate.
 *
 * @example
 * ```ts
 * console.log(isCandidateHost("192.0.2.7"), isCandidateHost("0.0.0.0")); // true false
 * console.log(isCandidateHost("255.255.255.255"), isCandidateHost("ff02::1")); // false false
 * ```
 */
export function isCandidateHost(host: string): boolean {
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(host);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    if (a === 0) return false; // this network, unspecified
    if (a >= 224 && a <= 239) return false; // multicast
    if (a === 255 && b === 255 && c === 255 && d === 255) return false; // limited broadcast
    if (a >= 240) return false; // reserved
    return true;
  }
  const groups = ipv6GroupsOf(host);
  if (groups === null) return false;
  if (groups.every((g) => g === 0)) return false; // unspecified
  if ((groups[0] & 0xff00) === 0xff00) return false; // multicast
  return true;
}
