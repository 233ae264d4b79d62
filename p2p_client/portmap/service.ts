/**
 * The client's port-mapping service: finds the default gateway (the system's routing table
 * through an injected reader) and this host's address toward it, then keeps a
 * {@linkcode PortMapper} for the client's UDP port and reports the mapped address as a
 * candidate. One call at start-up, one at exit.
 *
 * Reading `/proc/net/route` needs `--allow-all` under Deno 2 (it refuses `/proc/net` to
 * `--allow-read`); without it, or off Linux, pass `gateway`, or `guessGateway` (the first host
 * of the private network), or the service reports `no-gateway` and the client goes on without
 * a mapping.
 *
 * @module
 */
import type { Runtime } from "../../shared/runtime/runtime.ts";
import {
  guessGateway,
  type InterfaceAddress,
  localAddressToward,
  readDefaultRoute,
  type TextFileReader,
} from "./gateway.ts";
import {
  type GatewayOffer,
  PortMapper,
  type PortMapping,
  type PortMapProtocol,
} from "./port_mapper.ts";
import type { HttpFetch } from "./upnp_http.ts";

/** Settings of {@linkcode startPortMapping}. */
export interface PortMappingServiceOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** The client's UDP port. */
  internalPort: number;
  /** Reads `/proc/net/route` (omit when `gateway` is given). */
  readFile?: TextFileReader;
  /** This host's interface addresses (`Deno.networkInterfaces()`). */
  interfaces: readonly InterfaceAddress[];
  /** The gateway, when known (skips the routing table). */
  gateway?: string;
  /** When the routing table gives no gateway, try the `.1` of the private network (guessGateway). */
  guessGateway?: boolean;
  /** HTTP for UPnP. */
  fetch?: HttpFetch;
  /** Protocols to use (default all). */
  protocols?: readonly PortMapProtocol[];
  /** The mapped candidate appeared, moved or went away. */
  onCandidate?: (mapping: PortMapping | undefined, reason: string) => void;
}

/** A running service, or why there is none. */
export type PortMappingService =
  | {
    ok: true;
    /** The gateway asked. */
    gateway: string;
    /** This host's address toward it. */
    localAddress: string;
    /** The mapping now, if any. */
    readonly mapping: PortMapping | undefined;
    /** What the gateway offered at the last probe. */
    readonly offer: GatewayOffer | undefined;
    /** Deletes the mapping and stops. */
    close(): Promise<void>;
  }
  | { ok: false; reason: "no-gateway" | "no-local-address" };

/**
 * Starts mapping the client's port; resolves once the first attempt ended (mapped or not;
 * later attempts and renewals go on in the background).
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const service = await startPortMapping({
 *   runtime: systemRuntime, internalPort: 40000, interfaces: [], gateway: "10.0.1.1",
 * });
 * console.log(service.ok); // false: no local address on 10.0.1.0/24 here
 * ```
 */
export async function startPortMapping(
  options: PortMappingServiceOptions,
): Promise<PortMappingService> {
  let gateway = options.gateway;
  let iface: string | undefined;
  if (gateway === undefined && options.readFile !== undefined) {
    const route = await readDefaultRoute(options.readFile);
    gateway = route?.gateway;
    iface = route?.iface;
  }
  if (gateway === undefined && options.guessGateway) {
    const guess = guessGateway(options.interfaces);
    gateway = guess?.gateway;
    iface = guess?.iface;
  }
  if (gateway === undefined) return { ok: false, reason: "no-gateway" };
  const localAddress = localAddressToward(gateway, options.interfaces, iface);
  if (localAddress === undefined) return { ok: false, reason: "no-local-address" };
  const mapper = new PortMapper({
    runtime: options.runtime,
    gateway,
    localAddress,
    internalPort: options.internalPort,
    fetch: options.fetch,
    protocols: options.protocols,
    onChange: options.onCandidate,
  });
  await mapper.start();
  return {
    ok: true,
    gateway,
    localAddress,
    get mapping() {
      return mapper.mapping;
    },
    get offer() {
      return mapper.offer;
    },
    close: () => mapper.close(),
  };
}
