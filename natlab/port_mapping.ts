/**
 * NAT routers that offer port mapping: Debian's `miniupnpd-nftables` (2.3.1) in a NAT namespace
 * with NAT-PMP, PCP and UPnP-IGD enabled, and coturn as the RFC 5780 STUN server on the public
 * segment.
 *
 * Why coturn is needed here too: miniupnpd 2.3.1 refuses to map anything when its external
 * interface has a reserved address, and the lab's public segment is 198.18.0.0/15 (RFC 2544
 * benchmarking, on its reserved list). With `ext_perform_stun=yes` it asks a STUN server
 * instead; four Binding requests (with and without CHANGE-REQUEST) that all come back with the
 * router's own address and ports prove the router is not behind another NAT, and mapping is
 * enabled. The router's input chain lets those answers in from the two STUN addresses.
 *
 * The NAT-PMP/PCP listener is on the router's LAN address port 5351, the UPnP description on
 * port {@linkcode MINIUPNPD_HTTP_PORT}; the DNAT rules miniupnpd adds go into its own
 * `inet miniupnpd` table, which hooks prerouting before the lab's own NAT rules.
 *
 * @module
 */

/** The UDP (and TCP) port of the RFC 5780 STUN server (coturn) in the public namespace. */
export const RFC5780_PORT = 3578;

/** coturn's alternate port (RFC 5780 CHANGE-REQUEST "change port"). */
export const RFC5780_ALT_PORT = 3579;

/**
 * The primary and alternate addresses of the RFC 5780 server: the lab's `SERVER_ADDRESS` and
 * first `OBSERVER_ADDRESSES` entry (literals here, as `lab.ts` imports this module).
 */
export const RFC5780_ADDRESSES = ["198.18.0.1", "198.18.0.200"] as const;

/** The HTTP port of miniupnpd's UPnP description and control URLs. */
export const MINIUPNPD_HTTP_PORT = 5000;

/** The nftables table miniupnpd adds its rules to. */
export const MINIUPNPD_TABLE = "miniupnpd";

/** Settings of one miniupnpd. */
export interface MiniupnpdConfigOptions {
  /** External (public) interface. */
  wan: string;
  /** LAN interface it listens on. */
  lan: string;
  /** The LAN network, CIDR, that may map (e.g. `10.0.1.0/24`). */
  lanNetwork: string;
  /** A UUID for the device. */
  uuid: string;
}

/**
 * The miniupnpd configuration file.
 *
 * @example
 * ```ts
 * const text = miniupnpdConfig({
 *   wan: "wan", lan: "lan", lanNetwork: "10.0.1.0/24", uuid: "00000000-0000-4000-8000-000000000001",
 * });
 * console.log(text.includes("enable_natpmp=yes")); // true
 * ```
 */
export function miniupnpdConfig(options: MiniupnpdConfigOptions): string {
  return [
    `ext_ifname=${options.wan}`,
    `listening_ip=${options.lan}`,
    `http_port=${MINIUPNPD_HTTP_PORT}`,
    // NAT-PMP and PCP (one switch for both in 2.x) and UPnP-IGD.
    "enable_natpmp=yes",
    "enable_upnp=yes",
    "secure_mode=yes",
    "system_uptime=yes",
    "min_lifetime=60",
    "max_lifetime=86400",
    `uuid=${options.uuid}`,
    "ext_perform_stun=yes",
    `ext_stun_host=${RFC5780_ADDRESSES[0]}`,
    `ext_stun_port=${RFC5780_PORT}`,
    `upnp_table_name=${MINIUPNPD_TABLE}`,
    `upnp_nat_table_name=${MINIUPNPD_TABLE}`,
    "upnp_forward_chain=forward_miniupnpd",
    "upnp_nat_chain=prerouting_miniupnpd",
    "upnp_nat_postrouting_chain=postrouting_miniupnpd",
    `allow 1024-65535 ${options.lanNetwork} 1024-65535`,
    "deny 0-65535 0.0.0.0/0 0-65535",
    "",
  ].join("\n");
}

/**
 * The nftables table and chains miniupnpd fills (what Debian's `nft_init.sh` creates), with
 * accepting policies: the lab's own table keeps filtering, and lets DNATed flows through.
 *
 * @example
 * ```ts
 * console.log(miniupnpdRuleset().includes("chain prerouting_miniupnpd")); // true
 * ```
 */
export function miniupnpdRuleset(): string {
  return [
    `table inet ${MINIUPNPD_TABLE} {`,
    "  chain forward {",
    "    type filter hook forward priority filter - 1; policy accept;",
    "    jump forward_miniupnpd",
    "  }",
    "  chain forward_miniupnpd {",
    "  }",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat - 1; policy accept;",
    "    jump prerouting_miniupnpd",
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat - 1; policy accept;",
    "    jump postrouting_miniupnpd",
    "  }",
    "  chain prerouting_miniupnpd {",
    "  }",
    "  chain postrouting_miniupnpd {",
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * The rule (for `nft insert rule ip natlab input ...`) that lets the RFC 5780 server's answers
 * reach the router itself, for miniupnpd's STUN check.
 *
 * @example
 * ```ts
 * console.log(stunAnswersRule("wan").join(" ").includes("3578")); // true
 * ```
 */
export function stunAnswersRule(wan: string): string[] {
  return [
    "iifname",
    wan,
    "ip",
    "saddr",
    `{ ${RFC5780_ADDRESSES.join(", ")} }`,
    "udp",
    "sport",
    `{ ${RFC5780_PORT}, ${RFC5780_ALT_PORT} }`,
    "accept",
  ];
}

/**
 * The coturn command line of the RFC 5780 server: STUN only, no authentication, two addresses
 * and two ports.
 *
 * @example
 * ```ts
 * console.log(coturnArgs("/tmp/turn.log")[0]); // "turnserver"
 * ```
 */
export function coturnArgs(logFile: string): string[] {
  return [
    "turnserver",
    "--stun-only",
    "--no-auth",
    "--no-cli",
    "--no-tls",
    "--no-dtls",
    "-n",
    ...RFC5780_ADDRESSES.flatMap((address) => ["--listening-ip", address]),
    "--listening-port",
    String(RFC5780_PORT),
    "--alt-listening-port",
    String(RFC5780_ALT_PORT),
    "--no-stdout-log",
    "--simple-log",
    "--log-file",
    logFile,
    "--pidfile",
    `${logFile}.pid`,
  ];
}

/** Lines in miniupnpd's log that mean port mapping will not work. */
export const MINIUPNPD_FATAL = [
  "Port forwarding is impossible",
  "does not support port forwarding",
  "Performing STUN failed",
  "firewall filters incoming connections",
] as const;

/** The line miniupnpd logs once its NAT-PMP/PCP socket is open (its last start-up step). */
export const MINIUPNPD_READY = "Listening for NAT-PMP/PCP traffic";

/**
 * The rules miniupnpd holds in a lab router's prerouting chain (`nft list chain`), one `dnat`
 * per live mapping: how a test sees a mapping made or deleted. Rejects when the chain cannot be
 * listed.
 *
 * @example
 * ```ts
 * // const rules = await miniupnpdRules(lab, lab.host("a").natNamespace!);
 * ```
 */
export function miniupnpdRules(
  lab: { exec(namespace: string, argv: readonly string[]): Promise<string> },
  natNamespace: string,
): Promise<string> {
  return lab.exec(natNamespace, [
    "nft",
    "list",
    "chain",
    "inet",
    MINIUPNPD_TABLE,
    "prerouting_miniupnpd",
  ]);
}
