/**
 * Parsing of `host:port` server addresses in the forms the configuration file and the command
 * line accept: `host:port`, `stun:host:port`, `stun://host:port`, bracketed IPv6 `[::1]:3478`,
 * and (where a default port exists) a bare `host` or `[::1]`.
 *
 * @module
 */

/** A server address: a host name or literal IP address (IPv6 without brackets) and a port. */
export interface ServerAddress {
  /** Host name, IPv4 literal, or IPv6 literal without brackets. */
  host: string;
  /** Port, 1..65535. */
  port: number;
}

const HOSTNAME_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV6_PATTERN = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses a server address. Returns the address, or a string saying why it is not one.
 *
 * `defaultPort` is used when the text names no port; without it a port is required.
 *
 * @example
 * ```ts
 * parseServerAddress("stun://[::1]:3478"); // { host: "::1", port: 3478 }
 * parseServerAddress("example.org", 3478); // { host: "example.org", port: 3478 }
 * parseServerAddress("nope:99999"); // "port must be an integer from 1 to 65535, got \"99999\""
 * ```
 */
export function parseServerAddress(text: string, defaultPort?: number): ServerAddress | string {
  let rest = text.trim();
  if (rest.startsWith("stun://")) rest = rest.slice("stun://".length);
  else if (rest.startsWith("stun:")) rest = rest.slice("stun:".length);
  if (rest.endsWith("/")) rest = rest.slice(0, -1);
  if (rest === "") return "empty address";
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return `unclosed "[" in IPv6 address "${text}"`;
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) return `unexpected "${after}" after "]" in "${text}"`;
      portText = after.slice(1);
    }
    if (!host.includes(":") || !IPV6_PATTERN.test(host)) {
      return `"${host}" is not an IPv6 address`;
    }
  } else {
    const colons = rest.split(":").length - 1;
    if (colons > 1) return `IPv6 addresses need brackets, as in "[::1]:3478" (got "${text}")`;
    if (colons === 1) {
      const at = rest.indexOf(":");
      host = rest.slice(0, at);
      portText = rest.slice(at + 1);
    } else {
      host = rest;
    }
    if (!HOSTNAME_PATTERN.test(host)) return `"${host}" is not a host name or IP address`;
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return `missing port in "${text}" (expected "host:port")`;
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return `port must be an integer from 1 to 65535, got "${portText}"`;
    }
    port = Number(portText);
  }
  return { host, port };
}

/**
 * Formats an address as `host:port`, bracketing IPv6 hosts.
 *
 * @example
 * ```ts
 * formatServerAddress({ host: "::1", port: 3478 }); // "[::1]:3478"
 * ```
 */
export function formatServerAddress(address: ServerAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
