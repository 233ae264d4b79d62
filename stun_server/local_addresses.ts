/**
 * The host's own addresses, for binding one UDP socket per address. A socket bound to a
 * wildcard answers from whatever source the kernel's routing picks, so on a host with two
 * addresses of one family a request to the second is answered from the first and dropped by
 * the client's NAT or by Chromium (`701 STUN binding request timed out`); coturn binds one
 * socket per listening address, and so do we.
 *
 * @module
 */

/** One address of an interface, as `Deno.networkInterfaces` reports it. */
export interface InterfaceAddressInfo {
  /** `"IPv4"` or `"IPv6"`. */
  family: "IPv4" | "IPv6";
  /** The literal address. */
  address: string;
}

/**
 * The addresses worth binding: every IPv4 address and every IPv6 address except link-local ones
 * (which need a zone to bind and cannot be reached off-link), without duplicates, IPv4 first.
 *
 * @example
 * ```ts
 * import { bindableAddresses } from "./local_addresses.ts";
 * console.log(bindableAddresses([
 *   { family: "IPv6", address: "fe80::1" },
 *   { family: "IPv4", address: "127.0.0.1" },
 *   { family: "IPv6", address: "::1" },
 * ])); // ["127.0.0.1", "::1"]
 * ```
 */
export function bindableAddresses(interfaces: readonly InterfaceAddressInfo[]): string[] {
  const v4 = new Set<string>(), v6 = new Set<string>();
  for (const entry of interfaces) {
    if (entry.family === "IPv4") v4.add(entry.address);
    else if (!/^fe[89ab]/i.test(entry.address)) v6.add(entry.address.split("%")[0].toLowerCase());
  }
  return [...v4, ...v6];
}

/**
 * The system's bindable addresses (`Deno.networkInterfaces`; needs
 * `--allow-sys=networkInterfaces`). Empty when they cannot be listed.
 *
 * @example
 * ```ts
 * import { systemAddresses } from "./local_addresses.ts";
 * console.log(Array.isArray(systemAddresses())); // true
 * ```
 */
export function systemAddresses(): string[] {
  try {
    return bindableAddresses(Deno.networkInterfaces() as InterfaceAddressInfo[]);
  } catch {
    return [];
  }
}
