/**
 * What the `nat` command runs: the STUN tests of {@linkcode probeNat} against the configured
 * servers and, at the same time, a probe of the gateway's port-mapping protocols (gateway from
 * the routing table, or guessed; see `portmap/service.ts`). One function so the prompt, the
 * `--json` event and the lab tool give the same report.
 *
 * @module
 */
import type { HostPort, Runtime } from "../../shared/runtime/runtime.ts";
import {
  guessGateway,
  type InterfaceAddress,
  localAddressToward,
  readDefaultRoute,
  type TextFileReader,
} from "../portmap/gateway.ts";
import { PortMapper } from "../portmap/port_mapper.ts";
import type { HttpFetch } from "../portmap/upnp_http.ts";
import { type NatReport, probeNat } from "./nat_probe.ts";

/** Settings of {@linkcode diagnoseNat}. */
export interface DiagnoseNatOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** STUN servers to test against (IPv4 and IPv6 literals). */
  servers: readonly HostPort[];
  /** This host's interface addresses (`Deno.networkInterfaces()`). */
  interfaces: readonly InterfaceAddress[];
  /** Reads `/proc/net/route`; without it (or when refused) the gateway is guessed. */
  readFile?: TextFileReader;
  /** The gateway, when known. */
  gateway?: string;
  /** HTTP for UPnP. */
  fetch?: HttpFetch;
  /** Skip the port-mapping probe. */
  skipPortMapping?: boolean;
}

/**
 * Runs the NAT tests and the port-mapping probe together.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const report = await diagnoseNat({
 *   runtime: systemRuntime, servers: [], interfaces: [], skipPortMapping: true,
 * });
 * console.log(report.udpReachable); // false
 * ```
 */
export async function diagnoseNat(options: DiagnoseNatOptions): Promise<NatReport> {
  const portMappingProbe = options.skipPortMapping ? undefined : async () => {
    let route = options.gateway === undefined ? undefined : { gateway: options.gateway, iface: "" };
    if (route === undefined && options.readFile !== undefined) {
      route = await readDefaultRoute(options.readFile);
    }
    route ??= guessGateway(options.interfaces);
    if (route === undefined) return undefined;
    const local = localAddressToward(route.gateway, options.interfaces, route.iface);
    if (local === undefined) return undefined;
    // Probing creates no mapping; port 1 is only a placeholder for the mapper.
    const mapper = new PortMapper({
      runtime: options.runtime,
      gateway: route.gateway,
      localAddress: local,
      internalPort: 1,
      fetch: options.fetch,
    });
    try {
      return await mapper.probe();
    } finally {
      await mapper.close();
    }
  };
  return await probeNat({
    runtime: options.runtime,
    servers: options.servers,
    localAddresses: options.interfaces.map((entry) => entry.address),
    portMappingProbe,
  });
}
