/**
 * Asks the gateway for a port mapping of the client's UDP port: PCP (RFC 6887), NAT-PMP
 * (RFC 6886) and UPnP-IGD are probed all at once, the best protocol that answered (PCP, then
 * NAT-PMP, then UPnP, as Tailscale's portmapper prefers) makes the mapping, it is renewed at half
 * its lifetime, and deleted on {@linkcode PortMapper.close}. The mapped external address and port
 * are reported through `onChange`.
 *
 * Why: with a mapping, even an endpoint-dependent (symmetric) NAT has one fixed public port that
 * lets anyone in, so a pair that plain hole punching leaves relayed becomes direct. In the NAT
 * lab (miniupnpd 2.3.1) all three protocols answer within one round trip (< 5 ms); the probe
 * waits at most {@linkcode DEFAULT_PROBE} (250 ms first retransmission, 4 sends: 3.75 s) for a
 * gateway that answers nothing.
 *
 * Every timer, socket and random byte comes from the injected {@linkcode Runtime}; HTTP goes
 * through the injected `fetch`, bounded in time and size (see `upnp_http.ts`).
 *
 * @module
 */
import type { NetAddress, Runtime } from "../../shared/runtime/runtime.ts";
import { PortMapDecodeError } from "./errors.ts";
import {
  decodeNatPmpResponse,
  encodeNatPmpExternalAddressRequest,
  encodeNatPmpMapRequest,
  NATPMP_PORT,
  natPmpResultText,
} from "./natpmp_codec.ts";
import {
  decodePcpResponse,
  encodePcpAnnounceRequest,
  encodePcpMapRequest,
  pcpResultText,
} from "./pcp_codec.ts";
import { type RetransmitOptions, UdpExchange } from "./udp_exchange.ts";
import {
  addPortMappingArgs,
  decodeSsdpAnswer,
  encodeSsdpSearch,
  SSDP_ADDRESS,
  SSDP_PORT,
  type WanService,
} from "./upnp_codec.ts";
import { fetchWanService, type HttpFetch, soapAction } from "./upnp_http.ts";

/** The port-mapping protocols, in order of preference. */
export const PORT_MAP_PROTOCOLS = ["pcp", "nat-pmp", "upnp"] as const;

/** One port-mapping protocol. */
export type PortMapProtocol = typeof PORT_MAP_PROTOCOLS[number];

/** A mapping the gateway granted. */
export interface PortMapping {
  /** The protocol that made it. */
  protocol: PortMapProtocol;
  /** The gateway's external address. */
  externalAddress: string;
  /** The external port that reaches {@linkcode internalPort}. */
  externalPort: number;
  /** The client's port. */
  internalPort: number;
  /** Lifetime granted, seconds (0: permanent, UPnP only). */
  lifetimeSeconds: number;
  /** When it was granted or last renewed ({@linkcode Runtime.now}, ms). */
  renewedAt: number;
}

/** What the gateway offers, from one round of probes. */
export interface GatewayOffer {
  /** PCP answered ANNOUNCE. */
  pcp: boolean;
  /** NAT-PMP answered the external-address request. */
  natPmp: boolean;
  /** A UPnP-IGD WAN connection service was found and answered GetExternalIPAddress. */
  upnp: boolean;
  /** The external address a protocol reported, if any. */
  externalAddress?: string;
}

/** Retransmission of NAT-PMP, PCP and SSDP probes. */
export const DEFAULT_PROBE: RetransmitOptions = { initialRtoMs: 250, sends: 4 };

/** Settings of a {@linkcode PortMapper}. */
export interface PortMapperOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** The gateway's IPv4 address (see `gateway.ts`). */
  gateway: string;
  /** This host's address on the gateway's network. */
  localAddress: string;
  /** The UDP port to map (the client's socket). */
  internalPort: number;
  /** HTTP for UPnP (default: the global `fetch`). */
  fetch?: HttpFetch;
  /** Which protocols to use (default all three). */
  protocols?: readonly PortMapProtocol[];
  /** Lifetime to request, seconds (default 7,200; RFC 6886 recommends 2 hours). */
  lifetimeSeconds?: number;
  /** Probe retransmission (default {@linkcode DEFAULT_PROBE}). */
  probe?: RetransmitOptions;
  /** HTTP timeout per UPnP request, ms (default 2,000). */
  httpTimeoutMs?: number;
  /** Wait before trying again after the mapping is lost or could not be made, ms (60,000). */
  retryMs?: number;
  /** Description shown in the router's UPnP table. */
  description?: string;
  /** The mapping was made, changed, or lost (`undefined`), with a reason. */
  onChange?: (mapping: PortMapping | undefined, reason: string) => void;
}

/** UPnP errors (UPnP IGD WANIPConnection:1 section 2.4.16). */
const UPNP_CONFLICT = 718;
const UPNP_ONLY_PERMANENT = 725;

interface UpnpState {
  service: WanService;
  externalAddress: string;
}

/**
 * Keeps one port mapping for the client's UDP port.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const mapper = new PortMapper({
 *   runtime: systemRuntime, gateway: "10.0.1.1", localAddress: "10.0.1.2", internalPort: 40000,
 *   onChange: (mapping, reason) => console.log(reason, mapping?.externalPort),
 * });
 * // const mapping = await mapper.start();
 * await mapper.close();
 * ```
 */
export class PortMapper {
  readonly #options: PortMapperOptions;
  readonly #runtime: Runtime;
  readonly #fetch: HttpFetch;
  readonly #protocols: readonly PortMapProtocol[];
  readonly #lifetime: number;
  readonly #probe: RetransmitOptions;
  readonly #httpTimeoutMs: number;
  #pmp: UdpExchange | undefined;
  #pcp: UdpExchange | undefined;
  #upnp: UpnpState | undefined;
  #pcpNonce: Uint8Array;
  #mapping: PortMapping | undefined;
  #offer: GatewayOffer | undefined;
  #timer: number | undefined;
  #closed = false;
  #busy: Promise<unknown> = Promise.resolve();

  /** @param options Gateway, addresses, port, hooks. */
  constructor(options: PortMapperOptions) {
    this.#options = options;
    this.#runtime = options.runtime;
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#protocols = options.protocols ?? PORT_MAP_PROTOCOLS;
    this.#lifetime = options.lifetimeSeconds ?? 7200;
    this.#probe = options.probe ?? DEFAULT_PROBE;
    this.#httpTimeoutMs = options.httpTimeoutMs ?? 2000;
    this.#pcpNonce = options.runtime.randomBytes(12);
  }

  /** The mapping held now, if any. */
  get mapping(): PortMapping | undefined {
    return this.#mapping;
  }

  /** What the last probe found, if one ran. */
  get offer(): GatewayOffer | undefined {
    return this.#offer;
  }

  #gatewayAt(port: number): NetAddress {
    return { transport: "udp", hostname: this.#options.gateway, port };
  }

  #exchange(which: "pmp" | "pcp"): UdpExchange {
    const existing = which === "pmp" ? this.#pmp : this.#pcp;
    if (existing) return existing;
    const socket = this.#runtime.net.listenDatagram({
      hostname: this.#options.localAddress,
      port: 0,
    });
    const created = new UdpExchange(this.#runtime, socket);
    if (which === "pmp") this.#pmp = created;
    else this.#pcp = created;
    return created;
  }

  /**
   * Probes PCP, NAT-PMP and UPnP at once (only those enabled) and reports which answered.
   * Creates no mapping.
   */
  async probe(): Promise<GatewayOffer> {
    const offer: GatewayOffer = { pcp: false, natPmp: false, upnp: false };
    const tasks: Promise<void>[] = [];
    if (this.#protocols.includes("pcp")) {
      tasks.push(
        this.#probePcp().then((ok) => {
          offer.pcp = ok;
        }),
      );
    }
    if (this.#protocols.includes("nat-pmp")) {
      tasks.push(
        this.#natPmpExternalAddress().then((address) => {
          offer.natPmp = address !== undefined;
          if (address !== undefined) offer.externalAddress ??= address;
        }),
      );
    }
    if (this.#protocols.includes("upnp")) {
      tasks.push(
        this.#discoverUpnp().then((state) => {
          offer.upnp = state !== undefined;
          if (state !== undefined) offer.externalAddress ??= state.externalAddress;
        }),
      );
    }
    await Promise.all(tasks);
    this.#offer = offer;
    return offer;
  }

  async #probePcp(): Promise<boolean> {
    const answer = await this.#exchange("pcp").request(
      [this.#gatewayAt(NATPMP_PORT)],
      encodePcpAnnounceRequest(this.#options.localAddress),
      this.#options.gateway,
      (bytes) => {
        try {
          const decoded = decodePcpResponse(bytes);
          return decoded.kind === "announce" || decoded.kind === "natpmp-only"
            ? decoded
            : undefined;
        } catch (error) {
          if (error instanceof PortMapDecodeError) return undefined;
          throw error;
        }
      },
      this.#probe,
    );
    return answer?.kind === "announce" && answer.resultCode === 0;
  }

  async #natPmpExternalAddress(): Promise<string | undefined> {
    const answer = await this.#exchange("pmp").request(
      [this.#gatewayAt(NATPMP_PORT)],
      encodeNatPmpExternalAddressRequest(),
      this.#options.gateway,
      (bytes) => {
        try {
          const decoded = decodeNatPmpResponse(bytes);
          return decoded.kind === "external-address" ? decoded : undefined;
        } catch (error) {
          if (error instanceof PortMapDecodeError) return undefined;
          throw error;
        }
      },
      this.#probe,
    );
    if (answer === undefined || answer.resultCode !== 0) return undefined;
    if (answer.externalAddress === "0.0.0.0") return undefined;
    return answer.externalAddress;
  }

  async #discoverUpnp(): Promise<UpnpState | undefined> {
    const socket = this.#runtime.net.listenDatagram({
      hostname: this.#options.localAddress,
      port: 0,
    });
    const ssdp = new UdpExchange(this.#runtime, socket);
    try {
      // Unicast to the gateway and multicast to the group: routers answer one or the other.
      const answer = await ssdp.request(
        [this.#gatewayAt(SSDP_PORT), { transport: "udp", hostname: SSDP_ADDRESS, port: SSDP_PORT }],
        encodeSsdpSearch(),
        this.#options.gateway,
        (bytes) => {
          try {
            const decoded = decodeSsdpAnswer(bytes);
            // Only a description served by the gateway itself is trusted.
            return new URL(decoded.location).hostname === this.#options.gateway
              ? decoded
              : undefined;
          } catch (error) {
            if (error instanceof PortMapDecodeError) return undefined;
            throw error;
          }
        },
        this.#probe,
      );
      if (answer === undefined) return undefined;
      const service = await fetchWanService(
        this.#runtime,
        this.#fetch,
        answer.location,
        this.#httpTimeoutMs,
      );
      const external = await soapAction(
        this.#runtime,
        this.#fetch,
        service,
        "GetExternalIPAddress",
        {},
        this.#httpTimeoutMs,
      );
      const address = external.ok ? external.values.NewExternalIPAddress : undefined;
      if (address === undefined || address === "" || address === "0.0.0.0") return undefined;
      this.#upnp = { service, externalAddress: address };
      return this.#upnp;
    } catch {
      // Any failure (HTTP, timeout, malformed description) means no usable UPnP here.
      return undefined;
    } finally {
      ssdp.close();
    }
  }

  /**
   * Probes, then maps the port with the best protocol that answered, and keeps it renewed.
   * Resolves with the mapping, or `undefined` if no protocol gave one (another attempt follows
   * after `retryMs`).
   */
  start(): Promise<PortMapping | undefined> {
    const run = this.#busy.then(() => this.#start());
    this.#busy = run.catch(() => {});
    return run;
  }

  async #start(): Promise<PortMapping | undefined> {
    if (this.#closed) return undefined;
    const offer = await this.probe();
    for (const protocol of this.#protocols) {
      if (this.#closed) return undefined;
      const available = protocol === "pcp"
        ? offer.pcp
        : protocol === "nat-pmp"
        ? offer.natPmp
        : offer.upnp;
      if (!available) continue;
      const mapping = await this.#map(protocol, undefined).catch(() => undefined);
      if (mapping !== undefined) {
        this.#set(mapping, `mapped with ${protocol}`);
        return mapping;
      }
    }
    this.#schedule(this.#options.retryMs ?? 60_000, () => void this.start());
    return undefined;
  }

  #set(mapping: PortMapping | undefined, reason: string): void {
    const before = this.#mapping;
    this.#mapping = mapping;
    if (mapping !== undefined) {
      const renewIn = mapping.lifetimeSeconds === 0
        ? 3600_000
        : Math.max(1000, (mapping.lifetimeSeconds * 1000) / 2);
      this.#schedule(renewIn, () => void this.#renew());
    }
    const changed = before?.externalAddress !== mapping?.externalAddress ||
      before?.externalPort !== mapping?.externalPort || before?.protocol !== mapping?.protocol;
    if (changed) this.#options.onChange?.(mapping, reason);
  }

  #schedule(delayMs: number, callback: () => void): void {
    this.#runtime.clearTimer(this.#timer);
    if (this.#closed) return;
    this.#timer = this.#runtime.setTimer(callback, delayMs);
  }

  async #renew(): Promise<void> {
    const current = this.#mapping;
    if (current === undefined || this.#closed) return;
    const run = this.#busy.then(() => this.#map(current.protocol, current));
    this.#busy = run.catch(() => {});
    const renewed = await run.catch(() => undefined);
    if (this.#closed) return;
    if (renewed !== undefined) {
      this.#set(renewed, `renewed with ${current.protocol}`);
      return;
    }
    const expiresAt = current.renewedAt + current.lifetimeSeconds * 1000;
    const left = expiresAt - this.#runtime.now();
    if (current.lifetimeSeconds !== 0 && left <= 1000) {
      this.#set(undefined, `${current.protocol} mapping expired without renewal`);
      this.#schedule(this.#options.retryMs ?? 60_000, () => void this.start());
      return;
    }
    // Retry at half the time left (RFC 6886 section 3.7's schedule, halving toward expiry).
    this.#schedule(Math.max(1000, left / 2), () => void this.#renew());
  }

  /** Makes or renews a mapping with one protocol; `undefined` when refused or unanswered. */
  #map(
    protocol: PortMapProtocol,
    previous: PortMapping | undefined,
  ): Promise<PortMapping | undefined> {
    switch (protocol) {
      case "pcp":
        return this.#mapPcp(previous, this.#lifetime);
      case "nat-pmp":
        return this.#mapNatPmp(previous, this.#lifetime);
      case "upnp":
        return this.#mapUpnp(previous);
    }
  }

  async #mapPcp(previous: PortMapping | undefined, lifetime: number) {
    const port = this.#options.internalPort;
    const answer = await this.#exchange("pcp").request(
      [this.#gatewayAt(NATPMP_PORT)],
      encodePcpMapRequest({
        clientAddress: this.#options.localAddress,
        nonce: this.#pcpNonce,
        protocol: "udp",
        internalPort: port,
        suggestedExternalPort: previous?.externalPort ?? port,
        suggestedExternalAddress: previous?.externalAddress,
        lifetimeSeconds: lifetime,
      }),
      this.#options.gateway,
      (bytes) => {
        try {
          const decoded = decodePcpResponse(bytes);
          if (decoded.kind !== "map") return undefined;
          if (decoded.internalPort !== port || decoded.protocol !== "udp") return undefined;
          return decoded.nonce.every((b, i) => b === this.#pcpNonce[i]) ? decoded : undefined;
        } catch (error) {
          if (error instanceof PortMapDecodeError) return undefined;
          throw error;
        }
      },
      this.#probe,
    );
    if (answer === undefined) return undefined;
    if (answer.resultCode !== 0) {
      throw new Error(`PCP MAP refused: ${pcpResultText(answer.resultCode)}`);
    }
    return {
      protocol: "pcp" as const,
      externalAddress: answer.externalAddress,
      externalPort: answer.externalPort,
      internalPort: port,
      lifetimeSeconds: answer.lifetimeSeconds,
      renewedAt: this.#runtime.now(),
    };
  }

  async #mapNatPmp(previous: PortMapping | undefined, lifetime: number) {
    const port = this.#options.internalPort;
    const external = previous?.externalAddress ?? this.#offer?.externalAddress ??
      await this.#natPmpExternalAddress();
    if (external === undefined) return undefined;
    const answer = await this.#exchange("pmp").request(
      [this.#gatewayAt(NATPMP_PORT)],
      encodeNatPmpMapRequest({
        protocol: "udp",
        internalPort: port,
        suggestedExternalPort: lifetime === 0 ? 0 : previous?.externalPort ?? port,
        lifetimeSeconds: lifetime,
      }),
      this.#options.gateway,
      (bytes) => {
        try {
          const decoded = decodeNatPmpResponse(bytes);
          if (decoded.kind === "error" && decoded.opcode === 129) return decoded;
          if (decoded.kind !== "map" || decoded.protocol !== "udp") return undefined;
          return decoded.internalPort === port ? decoded : undefined;
        } catch (error) {
          if (error instanceof PortMapDecodeError) return undefined;
          throw error;
        }
      },
      this.#probe,
    );
    if (answer === undefined) return undefined;
    if (answer.resultCode !== 0 || answer.kind !== "map") {
      throw new Error(`NAT-PMP mapping refused: ${natPmpResultText(answer.resultCode)}`);
    }
    return {
      protocol: "nat-pmp" as const,
      externalAddress: external,
      externalPort: answer.externalPort,
      internalPort: port,
      lifetimeSeconds: answer.lifetimeSeconds,
      renewedAt: this.#runtime.now(),
    };
  }

  async #mapUpnp(previous: PortMapping | undefined): Promise<PortMapping | undefined> {
    const state = this.#upnp ?? await this.#discoverUpnp();
    if (state === undefined) return undefined;
    const port = this.#options.internalPort;
    let lease = Math.min(this.#lifetime, 3600);
    let externalPort = previous?.externalPort ?? port;
    // A taken port is retried with random ones; a router that wants permanent leases gets one.
    for (let attempt = 0; attempt < 4; attempt++) {
      const answer = await soapAction(
        this.#runtime,
        this.#fetch,
        state.service,
        "AddPortMapping",
        addPortMappingArgs({
          externalPort,
          protocol: "UDP",
          internalPort: port,
          internalClient: this.#options.localAddress,
          description: this.#options.description ?? "p2p_client",
          leaseSeconds: lease,
        }),
        this.#httpTimeoutMs,
      );
      if (answer.ok) {
        return {
          protocol: "upnp",
          externalAddress: state.externalAddress,
          externalPort,
          internalPort: port,
          lifetimeSeconds: lease,
          renewedAt: this.#runtime.now(),
        };
      }
      if (answer.errorCode === UPNP_ONLY_PERMANENT && lease !== 0) lease = 0;
      else if (answer.errorCode === UPNP_CONFLICT) {
        externalPort = 1024 + Math.floor(this.#runtime.random() * (65536 - 1024));
      } else {throw new Error(
          `UPnP AddPortMapping refused: ${answer.errorCode} ${answer.description}`,
        );}
    }
    return undefined;
  }

  async #delete(mapping: PortMapping): Promise<void> {
    switch (mapping.protocol) {
      case "pcp":
        await this.#mapPcp(mapping, 0);
        return;
      case "nat-pmp":
        await this.#mapNatPmp(mapping, 0);
        return;
      case "upnp": {
        const state = this.#upnp;
        if (state === undefined) return;
        await soapAction(this.#runtime, this.#fetch, state.service, "DeletePortMapping", {
          NewRemoteHost: "",
          NewExternalPort: mapping.externalPort,
          NewProtocol: "UDP",
        }, this.#httpTimeoutMs);
      }
    }
  }

  /**
   * Stops renewing, deletes the mapping at the gateway (best effort, one probe's worth of
   * retransmissions), and closes the sockets.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#runtime.clearTimer(this.#timer);
    await this.#busy;
    const mapping = this.#mapping;
    this.#mapping = undefined;
    if (mapping !== undefined) {
      await this.#delete(mapping).catch(() => {});
      this.#options.onChange?.(undefined, "deleted on exit");
    }
    this.#pmp?.close();
    this.#pcp?.close();
  }
}
