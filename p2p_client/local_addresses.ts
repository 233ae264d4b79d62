/**
 * The client's local candidate addresses: the addresses of its network interfaces that can carry
 * the UDP socket's traffic, with the socket's port.
 *
 * @module
 */
import type { UdpAddress } from "./path_manager.ts";

/** The part of `Deno.NetworkInterfaceInfo` used here. */
export interface InterfaceAddress {
  /** `"IPv4"` or `"IPv6"`. */
  family: "IPv4" | "IPv6";
  /** The address. */
  address: string;
}

/** How to pick candidates. */
export interface LocalCandidateOptions {
  /** The address the socket is bound to (`0.0.0.0` / `::` for all). */
  bindHost: string;
  /** The socket's port. */
  port: number;
  /** Include loopback addresses (when the server itself is on loopback). */
  includeLoopback: boolean;
  /** Most candidates (default 8; the server accepts 16). */
  max?: number;
}

/**
 * True for a loopback address (`127.0.0.0/8`, `::1`).
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * ```
 */
export function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1" || host === "localhost";
}

function isLinkLocal(address: string): boolean {
  return address.startsWith("169.254.") || /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * Picks the local candidates from the interface list.
 *
 * @example
 * ```ts
 * localCandidates(
 *   [{ family: "IPv4", address: "127.0.0.1" }, { family: "IPv4", address: "10.0.0.5" }],
 *   { bindHost: "0.0.0.0", port: 4000, includeLoopback: false },
 * ); // [{ host: "10.0.0.5", port: 4000 }]
 * ```
 */
export function localCandidates(
  interfaces: readonly InterfaceAddress[],
  options: LocalCandidateOptions,
): UdpAddress[] {
  const wildcard4 = options.bindHost === "0.0.0.0";
  const wildcard6 = options.bindHost === "::";
  const bindFamily = options.bindHost.includes(":") ? "IPv6" : "IPv4";
  if (!wildcard4 && !wildcard6) return [{ host: options.bindHost, port: options.port }];
  const seen = new Set<string>();
  const result: UdpAddress[] = [];
  for (const entry of interfaces) {
    if (entry.family !== bindFamily) continue;
    const host = entry.address.split("%")[0];
    if (isLinkLocal(host)) continue;
    if (isLoopback(host) && !options.includeLoopback) continue;
    if (seen.has(host)) continue;
    seen.add(host);
    result.push({ host, port: options.port });
  }
  // Loopback first when wanted: it is the path that works on one machine.
  result.sort((a, b) => Number(isLoopback(b.host)) - Number(isLoopback(a.host)));
  return result.slice(0, options.max ?? 8);
}
