/**
 * NAT kinds and the nftables rulesets that make them.
 *
 * Linux's own `snat` is port-preserving and keeps a conntrack entry per 5-tuple, so a reply is
 * let in only from the exact remote address and port that was contacted: that is the
 * endpoint-independent mapping with address-and-port-dependent filtering of a port-restricted
 * cone. The other kinds are built on top of it:
 *
 * - `full-cone` and `restricted-cone` record every mapping in a dynamic map
 *   (`mapped`: public port -> private address . port) as packets leave, and let a new inbound
 *   packet to a mapped port in with a DNAT from that map. `restricted-cone` also records each
 *   contacted remote address in a dynamic set (`contacted`: remote address . public port) and
 *   requires the sender's address to be in it.
 * - `symmetric` gives every new UDP flow a random public port (`snat ... fully-random`).
 * - `udp-blocked` drops all UDP leaving the LAN; TCP is translated as usual.
 * - With `remap`, UDP source ports 40000-40999 leave as ports 50000-50999 (a static map), so the
 *   public port differs from the private one while the mapping stays endpoint-independent.
 *
 * Every kind drops what reaches the router itself from the public side and counts it in the
 * named counter `unsolicited`; `udp-blocked` counts its drops in `udp_blocked`. A random-drop
 * rule (`numgen random mod 100 < loss`) on the public interface, both ways, simulates loss;
 * {@linkcode delayRuleCommands} hand packets to a user-space holder that releases them later.
 *
 * @module
 */

/** The NAT behaviours the lab can build. */
export const NAT_KINDS = [
  "none",
  "full-cone",
  "restricted-cone",
  "port-restricted",
  "symmetric",
  "udp-blocked",
] as const;

/** One NAT behaviour: see {@linkcode NAT_KINDS}. */
export type NatKind = typeof NAT_KINDS[number];

/** Private UDP ports that the remapping variant translates (the hosts' ephemeral range). */
export const REMAP_PRIVATE_PORTS = { first: 40000, last: 40999 } as const;

/** What a remapped private port becomes: private port + this offset. */
export const REMAP_OFFSET = 10000;

/** How long an idle mapping of the cone kinds lives, in seconds. */
export const MAPPING_TIMEOUT_S = 120;

/** Name of the nftables table the lab creates in each router and host. */
export const LAB_TABLE = "natlab";

/**
 * Tells whether a string names a NAT kind.
 *
 * @example
 * ```ts
 * isNatKind("symmetric"); // true
 * isNatKind("carrier-grade"); // false
 * ```
 */
export function isNatKind(value: string): value is NatKind {
  return (NAT_KINDS as readonly string[]).includes(value);
}

/** Thrown for a NAT configuration the lab cannot build. */
export class NatConfigError extends Error {
  /** @param message What is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "NatConfigError";
  }
}

/** The settings of one NAT router's ruleset. */
export interface NatRulesetOptions {
  /** Which behaviour to build. Not `none`: that kind has no router. */
  kind: Exclude<NatKind, "none">;
  /** The router's address on the public segment. */
  publicAddress: string;
  /** Name of the router's public interface. */
  wan: string;
  /** Name of the router's LAN interface. */
  lan: string;
  /** Remap UDP ports (public port != private port); only for the cone kinds. */
  remap?: boolean;
  /** Percentage (0-99) of packets dropped at random on the public interface, each way. */
  lossPercent?: number;
}

/**
 * Checks a loss percentage and returns it as an integer.
 *
 * @example
 * ```ts
 * validLossPercent(5); // 5
 * ```
 */
export function validLossPercent(lossPercent: number | undefined): number {
  const loss = lossPercent ?? 0;
  if (!Number.isInteger(loss) || loss < 0 || loss > 99) {
    throw new NatConfigError(`loss must be an integer percentage 0-99, got ${lossPercent}`);
  }
  return loss;
}

/** The NFQUEUE queue number the delay holder binds (queues are per network namespace). */
export const DELAY_QUEUE = 0;

/** The longest delay the lab applies, in milliseconds. */
export const MAX_DELAY_MS = 5000;

/**
 * Checks a delay and returns it as an integer.
 *
 * @example
 * ```ts
 * validDelayMs(50); // 50
 * ```
 */
export function validDelayMs(delayMs: number | undefined): number {
  const delay = delayMs ?? 0;
  if (!Number.isInteger(delay) || delay < 0 || delay > MAX_DELAY_MS) {
    throw new NatConfigError(`delay must be an integer 0-${MAX_DELAY_MS} ms, got ${delayMs}`);
  }
  return delay;
}

/**
 * The iptables commands (nf_tables backend, `NFQUEUE` target: this kernel lacks nftables' own
 * `queue` expression) that send every packet on `iface`, both directions, to the delay holder's
 * queue. No netem here: a user-space holder gives each packet its verdict after the delay.
 *
 * @example
 * ```ts
 * delayRuleCommands("wan")[0]; // ["iptables", "-t", "mangle", "-A", "PREROUTING", ...]
 * ```
 */
export function delayRuleCommands(iface: string): string[][] {
  const queue = ["-j", "NFQUEUE", "--queue-num", String(DELAY_QUEUE)];
  return [
    ["iptables", "-w", "-t", "mangle", "-A", "PREROUTING", "-i", iface, ...queue],
    ["iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", iface, ...queue],
  ];
}

/** Rules dropping `loss` percent of packets on `iface`, both directions. */
function lossChains(iface: string, loss: number): string[] {
  if (loss === 0) return [];
  return [
    "  chain loss_in {",
    "    type filter hook prerouting priority raw - 10; policy accept;",
    `    iifname "${iface}" numgen random mod 100 < ${loss} counter drop`,
    "  }",
    "  chain loss_out {",
    "    type filter hook postrouting priority 300; policy accept;",
    `    oifname "${iface}" numgen random mod 100 < ${loss} counter drop`,
    "  }",
  ];
}

/**
 * The nftables ruleset (for `nft -f -`) of a NAT router.
 *
 * @example
 * ```ts
 * const rules = natRuleset({
 *   kind: "full-cone",
 *   publicAddress: "198.18.0.2",
 *   wan: "wan",
 *   lan: "lan",
 * });
 * console.log(rules.includes("dnat")); // true
 * ```
 */
export function natRuleset(options: NatRulesetOptions): string {
  const { kind, publicAddress: pub, wan, lan } = options;
  const remap = options.remap ?? false;
  const loss = validLossPercent(options.lossPercent);
  if (!isNatKind(kind) || (kind as NatKind) === "none") {
    throw new NatConfigError(`no NAT router for kind ${kind}`);
  }
  if (remap && (kind === "symmetric" || kind === "udp-blocked")) {
    throw new NatConfigError(`remapping applies to the cone kinds, not ${kind}`);
  }
  const cone = kind === "full-cone" || kind === "restricted-cone";
  const lines: string[] = [`table ip ${LAB_TABLE} {`];
  lines.push("  counter unsolicited {", "  }", "  counter udp_blocked {", "  }");
  if (cone) {
    lines.push(
      "  map mapped {",
      "    type inet_service : ipv4_addr . inet_service",
      `    flags dynamic,timeout; timeout ${MAPPING_TIMEOUT_S}s;`,
      "  }",
    );
  }
  if (kind === "restricted-cone") {
    lines.push(
      "  set contacted {",
      "    type ipv4_addr . inet_service",
      `    flags dynamic,timeout; timeout ${MAPPING_TIMEOUT_S}s;`,
      "  }",
    );
  }
  if (remap) {
    const elements: string[] = [];
    for (let port = REMAP_PRIVATE_PORTS.first; port <= REMAP_PRIVATE_PORTS.last; port++) {
      elements.push(`${port} : ${port + REMAP_OFFSET}`);
    }
    lines.push(
      "  map remap {",
      "    type inet_service : inet_service",
      `    elements = { ${elements.join(", ")} }`,
      "  }",
    );
  }
  // Inbound: a new flow to a mapped port of a cone NAT is sent to the private endpoint.
  lines.push(
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
  );
  if (kind === "full-cone") {
    lines.push(
      `    iifname "${wan}" ip daddr ${pub} udp dport @mapped dnat ip to udp dport map @mapped`,
    );
  } else if (kind === "restricted-cone") {
    lines.push(
      `    iifname "${wan}" ip daddr ${pub} udp dport @mapped ip saddr . udp dport @contacted ` +
        "dnat ip to udp dport map @mapped",
    );
  }
  lines.push("  }");
  // Outbound: source NAT.
  lines.push(
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
  );
  if (remap) {
    lines.push(
      `    oifname "${wan}" udp sport ${REMAP_PRIVATE_PORTS.first}-${REMAP_PRIVATE_PORTS.last} ` +
        `snat ip to ${pub} : udp sport map @remap`,
    );
  }
  if (kind === "symmetric") {
    // The router's own traffic (miniupnpd's STUN check) keeps its ports.
    lines.push(
      `    oifname "${wan}" ip saddr != ${pub} meta l4proto udp snat ip to ${pub} fully-random`,
    );
  }
  lines.push(`    oifname "${wan}" snat ip to ${pub}`, "  }");
  // After source NAT: remember the mappings (and contacted addresses) of the cone kinds.
  if (cone) {
    lines.push(
      "  chain record {",
      "    type filter hook postrouting priority srcnat + 10; policy accept;",
      `    oifname "${wan}" meta l4proto udp ct direction original ` +
        "update @mapped { udp sport : ct original ip saddr . ct original proto-src }",
      `    oifname "${wan}" meta l4proto udp ct direction reply ` +
        "update @mapped { udp sport : ct reply ip saddr . ct reply proto-src }",
    );
    if (kind === "restricted-cone") {
      lines.push(
        `    oifname "${wan}" meta l4proto udp update @contacted { ip daddr . udp sport }`,
      );
    }
    lines.push("  }");
  }
  lines.push(
    "  chain forward {",
    "    type filter hook forward priority filter; policy drop;",
  );
  if (kind === "udp-blocked") {
    lines.push(`    meta l4proto udp counter name "udp_blocked" drop`);
  }
  lines.push(
    "    ct state established,related accept",
    `    iifname "${lan}" oifname "${wan}" accept`,
    `    iifname "${wan}" oifname "${lan}" ct status dnat accept`,
    "  }",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    iifname "${wan}" ct state established,related accept`,
    `    iifname "${wan}" counter name "unsolicited" drop`,
    "  }",
  );
  lines.push(...lossChains(wan, loss));
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * The ruleset of a host on the public segment without a NAT (kind `none`): only the loss rule,
 * or nothing when there is no loss.
 *
 * @example
 * ```ts
 * hostLossRuleset("eth0", 0); // ""
 * ```
 */
export function hostLossRuleset(iface: string, lossPercent: number | undefined): string {
  const loss = validLossPercent(lossPercent);
  if (loss === 0) return "";
  return [`table ip ${LAB_TABLE} {`, ...lossChains(iface, loss), "}"].join("\n") + "\n";
}

/** What a NAT kind does, as a hole-punching peer sees it. */
export interface NatBehaviour {
  /** Is UDP let out at all? */
  udp: boolean;
  /** Is the public UDP port the same whatever the destination? */
  endpointIndependentMapping: boolean;
  /** Who may send to a mapping: anyone, contacted addresses, or contacted address+port. */
  filtering: "open" | "address" | "address-and-port" | "closed";
}

/**
 * The expected behaviour of a kind (what the lab self-tests check).
 *
 * @example
 * ```ts
 * natBehaviour("restricted-cone").filtering; // "address"
 * ```
 */
export function natBehaviour(kind: NatKind): NatBehaviour {
  switch (kind) {
    case "none":
      return { udp: true, endpointIndependentMapping: true, filtering: "open" };
    case "full-cone":
      return { udp: true, endpointIndependentMapping: true, filtering: "open" };
    case "restricted-cone":
      return { udp: true, endpointIndependentMapping: true, filtering: "address" };
    case "port-restricted":
      return { udp: true, endpointIndependentMapping: true, filtering: "address-and-port" };
    case "symmetric":
      return { udp: true, endpointIndependentMapping: false, filtering: "address-and-port" };
    case "udp-blocked":
      return { udp: false, endpointIndependentMapping: true, filtering: "closed" };
  }
}

/**
 * Can two peers behind these kinds make a direct UDP path by simultaneous hole punching,
 * provided each answers the peer at the address its packets really come from?
 *
 * No when either blocks UDP; no for symmetric with symmetric or with port-restricted (the
 * symmetric side's port toward the peer is unknown, and the other side only lets in the exact
 * address and port it sent to). Yes otherwise.
 *
 * @example
 * ```ts
 * directPossible("symmetric", "restricted-cone"); // true
 * directPossible("symmetric", "port-restricted"); // false
 * ```
 */
export function directPossible(a: NatKind, b: NatKind): boolean {
  if (a === "udp-blocked" || b === "udp-blocked") return false;
  const pair = new Set([a, b]);
  if (pair.has("symmetric") && (pair.size === 1 || pair.has("port-restricted"))) return false;
  return true;
}
