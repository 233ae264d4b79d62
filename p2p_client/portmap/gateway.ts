/**
 * The default gateway (where NAT-PMP, PCP and SSDP requests go) from the system's routing table,
 * and this host's address on the gateway's network (what PCP's client-address field must
 * carry). Linux's `/proc/net/route` is read through an injected reader, so the parser is pure
 * and tested on fixed text; other systems pass the gateway in.
 *
 * @module
 */

/** Reads a text file (injected: `Deno.readTextFile` in a real process). */
export type TextFileReader = (path: string) => Promise<string>;

/** The default IPv4 route. */
export interface DefaultRoute {
  /** Interface name. */
  iface: string;
  /** Gateway address. */
  gateway: string;
}

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;

/** `/proc/net/route` stores addresses as little-endian hex. */
function hexToIpv4(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const value = parseInt(hex, 16);
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join(".");
}

/**
 * The default route of a `/proc/net/route` text (lowest metric first), or `undefined`.
 *
 * @example
 * ```ts
 * const table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
 *   "eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
 * console.log(parseDefaultRoute(table)); // { iface: "eth0", gateway: "10.0.1.1" }
 * ```
 */
export function parseDefaultRoute(text: string): DefaultRoute | undefined {
  let best: { route: DefaultRoute; metric: number } | undefined;
  const lines = text.split("\n").slice(1, 1025);
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [iface, destination, gatewayHex, flagsHex, , , metricText, mask] = fields;
    const flags = parseInt(flagsHex, 16);
    if (destination !== "00000000" || mask !== "00000000") continue;
    if (!(flags & RTF_UP) || !(flags & RTF_GATEWAY)) continue;
    const gateway = hexToIpv4(gatewayHex);
    if (gateway === undefined || gateway === "0.0.0.0") continue;
    const metric = Number(metricText);
    if (best === undefined || metric < best.metric) best = { route: { iface, gateway }, metric };
  }
  return best?.route;
}

/**
 * Reads the default IPv4 gateway from `/proc/net/route` (Linux); `undefined` when there is none
 * or the file cannot be read.
 *
 * @example
 * ```ts
 * const route = await readDefaultRoute((path) => Deno.readTextFile(path));
 * console.log(route?.gateway);
 * ```
 */
export async function readDefaultRoute(read: TextFileReader): Promise<DefaultRoute | undefined> {
  try {
    return parseDefaultRoute(await read("/proc/net/route"));
  } catch {
    return undefined;
  }
}

/** One interface address, as `Deno.networkInterfaces()` lists it. */
export interface InterfaceAddress {
  /** Interface name. */
  name: string;
  /** `IPv4` or `IPv6`. */
  family: string;
  /** The address. */
  address: string;
  /** The netmask (`255.255.255.0`). */
  netmask: string;
}

function ipv4Number(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    const n = Number(part);
    if (!/^\d{1,3}$/.test(part) || n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

/**
 * This host's IPv4 address on the gateway's subnet (preferring the route's interface), or
 * `undefined`.
 *
 * @example
 * ```ts
 * const local = localAddressToward("10.0.1.1", [
 *   { name: "lo", family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
 *   { name: "eth0", family: "IPv4", address: "10.0.1.2", netmask: "255.255.255.0" },
 * ]);
 * console.log(local); // "10.0.1.2"
 * ```
 */
export function localAddressToward(
  gateway: string,
  interfaces: readonly InterfaceAddress[],
  iface?: string,
): string | undefined {
  const target = ipv4Number(gateway);
  if (target === undefined) return undefined;
  const matches = interfaces.filter((entry) => {
    if (entry.family !== "IPv4") return false;
    const address = ipv4Number(entry.address);
    const mask = ipv4Number(entry.netmask);
    if (address === undefined || mask === undefined || address === target) return false;
    return ((address & mask) >>> 0) === ((target & mask) >>> 0);
  });
  return (matches.find((entry) => entry.name === iface) ?? matches[0])?.address;
}

function isPrivateIpv4(value: number): boolean {
  const a = value >>> 24;
  const b = (value >>> 16) & 0xff;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127);
}

/**
 * A likely gateway when the routing table cannot be read (Deno 2 grants `/proc/net/route` only
 * with `--allow-all`): the first host address (`.1` of a /24) of the first private IPv4 network
 * this host is on, as home routers number themselves. Only a guess: a port-mapping request to it
 * that gets no answer costs one probe's retransmissions and nothing else.
 *
 * @example
 * ```ts
 * guessGateway([
 *   { name: "lo", family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
 *   { name: "eth0", family: "IPv4", address: "10.0.1.2", netmask: "255.255.255.0" },
 * ]); // { iface: "eth0", gateway: "10.0.1.1" }
 * ```
 */
export function guessGateway(interfaces: readonly InterfaceAddress[]): DefaultRoute | undefined {
  for (const entry of interfaces) {
    if (entry.family !== "IPv4") continue;
    const address = ipv4Number(entry.address);
    const mask = ipv4Number(entry.netmask);
    if (address === undefined || mask === undefined || !isPrivateIpv4(address)) continue;
    if (mask === 0xffffffff || mask === 0xfffffffe) continue;
    const first = (((address & mask) >>> 0) + 1) >>> 0;
    if (first === address) continue;
    const gateway = [first >>> 24, (first >>> 16) & 0xff, (first >>> 8) & 0xff, first & 0xff]
      .join(".");
    return { iface: entry.name, gateway };
  }
  return undefined;
}
