/**
 * From two NAT reports to a plan and to words: which way to try a direct path (plain punching,
 * a port mapping, birthday punching, or none), why a peer stays relayed, and the `nat` command's
 * text. Pure functions, so the path module and the prompt share one answer.
 *
 * @module
 */
import type { NatClassification } from "./classify.ts";
import type { NatReport } from "./nat_probe.ts";

/**
 * How a direct path was found (the `peer` event's and `list`'s `how`): the kind of the peer's
 * address that answered, as ICE names candidates (RFC 8445, 5.1.1): `host` (an interface
 * address), `server-reflexive` (the public endpoint the server saw), `port-mapped` (a mapping on
 * a gateway: PCP, NAT-PMP or UPnP-IGD, on either side), `birthday` (birthday punching),
 * `peer-reflexive` (an address learned from the peer's own packets).
 */
export type DirectMethod =
  | "host"
  | "server-reflexive"
  | "port-mapped"
  | "birthday"
  | "peer-reflexive";

/** Why a peer is relayed (the `peer` event's and `list`'s `why`). */
export type RelayReason =
  | "udp blocked here"
  | "both sides map per destination"
  | "peer unreachable over UDP"
  | "relay-only"
  | "birthday punching found no port"
  | "no answer from candidates"
  | "no direct candidates";

/** What one side knows of itself or learned of its peer. */
export interface SideFacts {
  /** NAT behaviour, if measured. */
  nat: Pick<NatClassification, "udpReachable" | "mapping" | "filtering"> | undefined;
  /** Holds a port mapping on its gateway. */
  portMapped: boolean;
}

/** The direct-path plan for a pair. */
export type PunchPlan =
  | { kind: "plain" }
  | { kind: "port-mapping" }
  | { kind: "birthday"; role: "easy" | "hard" }
  | { kind: "relay"; why: RelayReason };

function dependent(facts: SideFacts): boolean {
  const mapping = facts.nat?.mapping;
  return mapping !== undefined && mapping !== "endpoint-independent" && mapping !== "unknown";
}

/**
 * Chooses how to try a direct path with a peer.
 *
 * - Either side unable to use UDP: relay (`udp blocked here` / `peer unreachable over UDP`).
 * - A port mapping on either side: the mapped address is a candidate anyone can reach. The side
 *   without the mapping sends first; the mapped side only answers what arrives through the
 *   mapping. Behind a per-destination NAT, a packet the mapped side sends to the peer first
 *   opens a flow with another public port, and its answers then leave from that port, which
 *   the peer's port-filtering NAT drops (`natlab/port_mapping_test.ts` shows both orders).
 * - Both map per destination: relay (`both sides map per destination`).
 * - One maps per destination and the other filters by sender port: birthday punching.
 * - Otherwise: plain simultaneous punching.
 *
 * @example
 * ```ts
 * const easy = { nat: { udpReachable: true, mapping: "endpoint-independent", filtering: "address-and-port-dependent" }, portMapped: false } as const;
 * const hard = { nat: { udpReachable: true, mapping: "address-and-port-dependent", filtering: "address-and-port-dependent" }, portMapped: false } as const;
 * console.log(planDirect(hard, easy)); // { kind: "birthday", role: "hard" }
 * ```
 */
export function planDirect(local: SideFacts, peer: SideFacts, relayOnly = false): PunchPlan {
  if (relayOnly) return { kind: "relay", why: "relay-only" };
  if (local.nat?.udpReachable === false) return { kind: "relay", why: "udp blocked here" };
  if (peer.nat?.udpReachable === false) return { kind: "relay", why: "peer unreachable over UDP" };
  if (local.portMapped || peer.portMapped) return { kind: "port-mapping" };
  if (dependent(local) && dependent(peer)) {
    return { kind: "relay", why: "both sides map per destination" };
  }
  if (dependent(local) && peer.nat?.filtering === "address-and-port-dependent") {
    return { kind: "birthday", role: "hard" };
  }
  if (dependent(peer) && local.nat?.filtering === "address-and-port-dependent") {
    return { kind: "birthday", role: "easy" };
  }
  return { kind: "plain" };
}

/**
 * The `nat` command's lines for a report.
 *
 * @example
 * ```ts
 * const lines = formatNatReport({
 *   udpReachable: false, behindNat: undefined, mapping: "unknown", filtering: "unknown",
 *   portPreserved: undefined, ipv4: undefined, ipv6: undefined, rfc5780: false,
 *   latency: [{ server: "198.18.0.1:3478", rttMs: undefined }], portMapping: undefined,
 * });
 * console.log(lines[0]); // "UDP: blocked (no STUN answer)"
 * ```
 */
export function formatNatReport(report: NatReport): string[] {
  const lines: string[] = [];
  lines.push(report.udpReachable ? "UDP: reachable" : "UDP: blocked (no STUN answer)");
  lines.push(`public IPv4: ${report.ipv4 ?? "none"}`);
  lines.push(`public IPv6: ${report.ipv6 ?? "none"}`);
  if (report.udpReachable) {
    lines.push(`behind a NAT: ${report.behindNat ? "yes" : "no"}`);
    lines.push(
      `mapping: ${report.mapping}${report.rfc5780 ? "" : " (no RFC 5780 server: partial test)"}`,
    );
    lines.push(`filtering: ${report.filtering}`);
    lines.push(`port preserved: ${report.portPreserved ? "yes" : "no"}`);
  }
  const offer = report.portMapping;
  const protocols = offer
    ? [offer.pcp && "PCP", offer.natPmp && "NAT-PMP", offer.upnp && "UPnP-IGD"].filter(Boolean)
    : [];
  lines.push(
    `port mapping: ${
      offer === undefined ? "not probed" : protocols.length ? protocols.join(", ") : "none offered"
    }`,
  );
  for (const { server, rttMs } of report.latency) {
    lines.push(
      `latency ${server}: ${rttMs === undefined ? "no answer" : `${Math.round(rttMs)} ms`}`,
    );
  }
  return lines;
}
