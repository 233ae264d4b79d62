/**
 * The client side of a TURN five-tuple (RFC 8656 section 2): how the TURN server answers a client
 * and how it recognizes the client's allocation. A UDP link is (client address, server address)
 * on one listening socket; a TCP link is one connection, so the allocation dies with it.
 *
 * @module
 */
import type { NetAddress } from "../../shared/runtime/mod.ts";

/** One client's transport to the server. */
export interface ClientLink {
  /** The client's transport: UDP datagrams or one TCP connection (frames padded to 4 bytes). */
  readonly transport: "udp" | "tcp";
  /** The client's address as the server sees it (IPv4-mapped IPv6 already unmapped). */
  readonly client: NetAddress;
  /** The server address the client's packets arrive at (the reply source). */
  readonly server: NetAddress;
  /** The five-tuple's identity (see {@linkcode fiveTupleKey}). */
  readonly key: string;
  /** Sends one STUN or ChannelData message to the client; `bytes` may be reused afterwards. */
  send(bytes: Uint8Array): void;
}

/**
 * The identity of a five-tuple: transport, client address and port, server address and port.
 *
 * @example
 * ```ts
 * import { fiveTupleKey } from "./client_link.ts";
 * const key = fiveTupleKey("udp", { hostname: "192.0.2.1", port: 5000 }, { hostname: "198.51.100.1", port: 3478 });
 * console.log(key); // "udp 192.0.2.1 5000 198.51.100.1 3478"
 * ```
 */
export function fiveTupleKey(
  transport: "udp" | "tcp",
  client: { hostname: string; port: number },
  server: { hostname: string; port: number },
): string {
  return `${transport} ${client.hostname} ${client.port} ${server.hostname} ${server.port}`;
}
