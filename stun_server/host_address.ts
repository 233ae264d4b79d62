/**
 * Normalising the addresses sockets report, so one client is counted and shown one way.
 *
 * @module
 */

/**
 * Turns an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4
 * peers) into plain IPv4, and strips brackets and zone IDs; other addresses are returned as is.
 *
 * @example
 * ```ts
 * console.log(normalizeHost("::ffff:127.0.0.1")); // "127.0.0.1"
 * console.log(normalizeHost("[fe80::1%eth0]")); // "fe80::1"
 * ```
 */
export function normalizeHost(host: string): string {
  let h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(h);
  return mapped ? mapped[1] : h.toLowerCase();
}
