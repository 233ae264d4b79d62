/**
 * NAT behaviour from STUN observations (RFC 5780 sections 4.3 and 4.4), as a pure function: the
 * mapping behaviour from the mapped addresses seen by a server's primary address, its alternate
 * address, and its alternate address and port; the filtering behaviour from which CHANGE-REQUEST
 * answers arrived. Without a server offering OTHER-ADDRESS, mapping is judged from two
 * configured servers (only "independent" or "dependent" can be told then) and filtering stays
 * unknown.
 *
 * Why: "why is my connection relayed?" has an answer only when the client knows its NAT. A
 * mapping that depends on the destination defeats plain hole punching with any peer whose
 * filtering depends on the sender's port; the report says so.
 *
 * @module
 */

/** How the NAT chooses the public endpoint (RFC 4787 section 4.1). */
export type MappingBehaviour =
  | "endpoint-independent"
  | "address-dependent"
  | "address-and-port-dependent"
  /** It depends on the destination; which part could not be told (no RFC 5780 server). */
  | "endpoint-dependent"
  | "unknown";

/** Which senders may reach a mapping (RFC 4787 section 5). */
export type FilteringBehaviour =
  | "endpoint-independent"
  | "address-dependent"
  | "address-and-port-dependent"
  | "unknown";

/** An address and port as text parts. */
export interface Endpoint {
  /** Literal IP address. */
  hostname: string;
  /** Port. */
  port: number;
}

/** What the probes saw. */
export interface NatObservations {
  /** The local port of the probing socket. */
  localPort: number;
  /** This host's own addresses (to tell "no NAT"). */
  localAddresses: readonly string[];
  /** Mapped address from the primary server address (test I); `undefined` if no answer. */
  primary: Endpoint | undefined;
  /** Mapped address from the alternate address, primary port (test II). */
  alternateAddress?: Endpoint;
  /** Mapped address from the alternate address and port (test III). */
  alternateAddressAndPort?: Endpoint;
  /** Mapped addresses from other configured servers (different IPs), when no RFC 5780. */
  otherServers?: readonly Endpoint[];
  /** Did an answer with CHANGE-REQUEST (change IP and port) arrive? `undefined`: not tried. */
  changeIpAndPortAnswered?: boolean;
  /** Did an answer with CHANGE-REQUEST (change port) arrive? */
  changePortAnswered?: boolean;
}

/** The classification. */
export interface NatClassification {
  /** Any STUN answer came back over UDP. */
  udpReachable: boolean;
  /** The public endpoint equals a local one. */
  behindNat: boolean | undefined;
  /** Mapping behaviour. */
  mapping: MappingBehaviour;
  /** Filtering behaviour. */
  filtering: FilteringBehaviour;
  /** Public port equals local port. */
  portPreserved: boolean | undefined;
}

function same(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  return a !== undefined && b !== undefined && a.hostname === b.hostname && a.port === b.port;
}

/**
 * Classifies NAT behaviour per RFC 5780.
 *
 * @example
 * ```ts
 * const report = classifyNat({
 *   localPort: 40000,
 *   localAddresses: ["10.0.1.2"],
 *   primary: { hostname: "198.18.0.2", port: 40000 },
 *   alternateAddress: { hostname: "198.18.0.2", port: 40000 },
 *   changeIpAndPortAnswered: false,
 *   changePortAnswered: false,
 * });
 * console.log(report.mapping, report.filtering);
 * // "endpoint-independent" "address-and-port-dependent"
 * ```
 */
export function classifyNat(observations: NatObservations): NatClassification {
  const { primary } = observations;
  if (primary === undefined) {
    return {
      udpReachable: false,
      behindNat: undefined,
      mapping: "unknown",
      filtering: "unknown",
      portPreserved: undefined,
    };
  }
  const behindNat = !observations.localAddresses.includes(primary.hostname);
  let mapping: MappingBehaviour = "unknown";
  if (!behindNat && primary.port === observations.localPort) {
    mapping = "endpoint-independent";
  } else if (observations.alternateAddress !== undefined) {
    if (same(primary, observations.alternateAddress)) mapping = "endpoint-independent";
    else if (observations.alternateAddressAndPort === undefined) mapping = "endpoint-dependent";
    else if (same(observations.alternateAddress, observations.alternateAddressAndPort)) {
      mapping = "address-dependent";
    } else mapping = "address-and-port-dependent";
  } else if (observations.otherServers !== undefined && observations.otherServers.length > 0) {
    mapping = observations.otherServers.every((other) => same(other, primary))
      ? "endpoint-independent"
      : "endpoint-dependent";
  }
  let filtering: FilteringBehaviour = "unknown";
  if (observations.changeIpAndPortAnswered === true) filtering = "endpoint-independent";
  else if (observations.changeIpAndPortAnswered === false) {
    if (observations.changePortAnswered === true) filtering = "address-dependent";
    else if (observations.changePortAnswered === false) filtering = "address-and-port-dependent";
  }
  return {
    udpReachable: true,
    behindNat,
    mapping,
    filtering,
    portPreserved: primary.port === observations.localPort,
  };
}

/**
 * Can plain simultaneous hole punching connect two NATs with these behaviours? Not when either
 * maps per destination while the other filters by sender port (the port to punch toward is
 * unknown and only that exact port is let in), nor when both map per destination.
 *
 * @example
 * ```ts
 * punchable(
 *   { mapping: "address-and-port-dependent", filtering: "address-and-port-dependent" },
 *   { mapping: "endpoint-independent", filtering: "address-and-port-dependent" },
 * ); // false
 * ```
 */
export function punchable(
  a: Pick<NatClassification, "mapping" | "filtering">,
  b: Pick<NatClassification, "mapping" | "filtering">,
): boolean {
  const dependent = (m: MappingBehaviour) => m !== "endpoint-independent" && m !== "unknown";
  if (dependent(a.mapping) && dependent(b.mapping)) return false;
  if (dependent(a.mapping) && b.filtering === "address-and-port-dependent") return false;
  if (dependent(b.mapping) && a.filtering === "address-and-port-dependent") return false;
  return true;
}
