/**
 * Port mapping: NAT-PMP (RFC 6886), PCP (RFC 6887) and UPnP-IGD codecs, the default gateway
 * from the routing table, and {@linkcode PortMapper}, which probes all three at once, maps the
 * client's UDP port with the best, renews it and deletes it on exit.
 *
 * @example
 * ```ts
 * import { PortMapper } from "./mod.ts";
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const mapper = new PortMapper({
 *   runtime: systemRuntime, gateway: "10.0.1.1", localAddress: "10.0.1.2", internalPort: 40000,
 * });
 * await mapper.close();
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./gateway.ts";
export * from "./natpmp_codec.ts";
export * from "./pcp_codec.ts";
export * from "./upnp_codec.ts";
export * from "./upnp_http.ts";
export * from "./port_mapper.ts";
export * from "./service.ts";
