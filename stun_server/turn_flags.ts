/**
 * The STUN/TURN flags of the server's command line (issue 12): TURN credentials (static users,
 * a user file, the REST API shared secret), realm, relay ports and address, quotas, bandwidth
 * limits, the peer address policy, RFC 5780's alternate address and port, and the alternate
 * server for 300 answers. Kept apart from `cli.ts` so the signaling flags and these evolve
 * independently.
 *
 * @module
 */
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { parseUserSpec } from "./turn/credentials.ts";
import { parseCidr } from "./turn/peer_policy.ts";
import { DEFAULT_RELAY_PORTS, parsePortRange, type PortRange } from "./turn/relay_ports.ts";
import { parseIpAddress } from "../shared/stun/mod.ts";

/** STUN/TURN settings from the command line. */
export interface StunTurnConfig {
  /** TURN realm. */
  realm: string;
  /** Shared secrets for TURN REST API credentials (the first signs). */
  secrets: string[];
  /** Static users. */
  users: { name: string; password: string }[];
  /** A file of `NAME:PASSWORD` lines. */
  userFile: string | undefined;
  /** Relay port range. */
  relayPorts: PortRange;
  /** Address relays are bound to (default: the address the client's request arrived at). */
  relayHost: string | undefined;
  /** Public addresses advertised for relays bound to private ones (`PUBLIC[/PRIVATE]`). */
  externalIps: { public: string; private: string | undefined }[];
  /** Most allocations per user. */
  userQuota: number;
  /** Most allocations in total. */
  totalQuota: number;
  /** Relayed bytes per second per allocation (undefined: no limit). */
  maxBps: number | undefined;
  /** Relayed bytes per second over the whole server, TURN and signaling relay (undefined: no limit). */
  relayTotalBps: number | undefined;
  /** Allow loopback peers. */
  allowLoopbackPeers: boolean;
  /** Peer ranges allowed although denied by default. */
  allowPeers: string[];
  /** More peer ranges to deny. */
  denyPeers: string[];
  /** RFC 5780 alternate address. */
  altHost: string | undefined;
  /** RFC 5780 alternate port. */
  altPort: number | undefined;
  /** Where to send clients (300 ALTERNATE-SERVER) when full or draining. */
  alternateServer: { hostname: string; port: number } | undefined;
  /** Serve STUN/TURN over TCP on the STUN port too. */
  stunTcp: boolean;
  /** UDP through recvmmsg/sendmmsg batches (FFI; the server must run with --allow-ffi). */
  batchedUdp: boolean;
}

/** Whether TURN is on (some credentials configured). */
export function turnEnabled(config: StunTurnConfig): boolean {
  return config.secrets.length > 0 || config.users.length > 0 || config.userFile !== undefined;
}

function collect<T>(parse: (value: string) => T) {
  return (value: string, previous: T[] | undefined): T[] => {
    try {
      return [...(previous ?? []), parse(value)];
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function checked<T>(parse: (value: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function count(max: number) {
  return checked((value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new RangeError(`expected an integer 1..${max}, got "${value}"`);
    }
    return Number(value);
  });
}

function address(value: string): string {
  if (parseIpAddress(value) === undefined) throw new RangeError(`"${value}" is not an IP address`);
  return value;
}

function externalIp(value: string): { public: string; private: string | undefined } {
  const [publicIp, privateIp, extra] = value.split("/");
  if (
    extra !== undefined || parseIpAddress(publicIp) === undefined ||
    (privateIp !== undefined && parseIpAddress(privateIp) === undefined)
  ) {
    throw new RangeError(`expected PUBLIC or PUBLIC/PRIVATE IP addresses, got "${value}"`);
  }
  return { public: publicIp, private: privateIp };
}

function hostPort(value: string): { hostname: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
  if (match === null || parseIpAddress(match[1]) === undefined || Number(match[2]) > 65535) {
    throw new RangeError(`expected IP:PORT (IPv6 as [IP]:PORT), got "${value}"`);
  }
  return { hostname: match[1], port: Number(match[2]) };
}

/** The subset of a commander Command this module uses. */
interface OptionTarget {
  option(
    flags: string,
    description: string,
    parse?: (value: string, previous: never) => unknown,
    defaultValue?: unknown,
  ): unknown;
}

/**
 * Adds the STUN/TURN options to a commander program.
 *
 * @example
 * ```ts
 * import { Command } from "@commander-js/extra-typings";
 * import { addStunTurnOptions, stunTurnConfig } from "./turn_flags.ts";
 * const program = new Command().exitOverride();
 * addStunTurnOptions(program as never);
 * program.parse(["--turn-user", "alice:pw"], { from: "user" });
 * console.log(stunTurnConfig(program.opts()).users[0].name); // "alice"
 * ```
 */
export function addStunTurnOptions(program: OptionTarget): void {
  const add = (...args: Parameters<OptionTarget["option"]>) => program.option(...args);
  add("--turn-realm <realm>", "TURN realm (long-term credentials)", undefined, "p2p");
  add(
    "--turn-secret <secret>",
    "TURN REST API shared secret (time-limited credentials, coturn's use-auth-secret); repeatable, the first signs",
    collect(String) as never,
  );
  add(
    "--turn-user <name:password>",
    "a static TURN user; repeatable",
    collect(parseUserSpec) as never,
  );
  add("--turn-user-file <path>", "a file of NAME:PASSWORD lines (TURN users)");
  add(
    "--turn-relay-ports <min-max>",
    "UDP port range of relayed addresses",
    checked(parsePortRange) as never,
  );
  add(
    "--turn-relay-host <address>",
    "address relays are bound to (default: the address the client reached)",
    checked(address) as never,
  );
  add(
    "--turn-external-ip <public[/private]>",
    "behind a 1:1 NAT: advertise PUBLIC for relays bound to PRIVATE (or to any address); repeatable",
    collect(checked(externalIp)) as never,
  );
  add("--turn-user-quota <count>", "most TURN allocations per user", count(1_000_000) as never, 64);
  add(
    "--turn-total-quota <count>",
    "most TURN allocations in total",
    count(1_000_000) as never,
    10_000,
  );
  add(
    "--turn-max-bps <bytes>",
    "relayed bytes per second per TURN allocation (default: no limit)",
    count(Number.MAX_SAFE_INTEGER) as never,
  );
  add(
    "--relay-total-bps <bytes>",
    "relayed payload bytes per second over the whole server, TURN and the signaling relay together (default: no limit)",
    count(Number.MAX_SAFE_INTEGER) as never,
  );
  add("--allow-loopback-peers", "let TURN relay to loopback addresses (tests)");
  add(
    "--turn-allow-peer <cidr>",
    "let TURN relay to this range although denied by default (private, link-local); repeatable",
    collect(checked((v: string) => (parseCidr(v), v))) as never,
  );
  add(
    "--turn-deny-peer <cidr>",
    "never relay to this range; repeatable",
    collect(checked((v: string) => (parseCidr(v), v))) as never,
  );
  add(
    "--alt-host <address>",
    "RFC 5780: a second local address (needs --host) for NAT behaviour discovery",
    checked(address) as never,
  );
  add(
    "--alt-port <port>",
    "RFC 5780: a second STUN port for NAT behaviour discovery",
    checked((v: string) => {
      if (!/^\d+$/.test(v) || Number(v) > 65535) throw new RangeError("port 0..65535");
      return Number(v);
    }) as never,
  );
  add(
    "--alternate-server <ip:port>",
    "answer new TURN allocations with 300 ALTERNATE-SERVER when full or draining",
    checked(hostPort) as never,
  );
  add("--no-stun-tcp", "do not serve STUN/TURN over TCP on the STUN port");
  add(
    "--batched-udp",
    "STUN/TURN UDP in recvmmsg/sendmmsg batches through FFI (Linux; run deno with --allow-ffi)",
  );
}

/**
 * The STUN/TURN settings from parsed options.
 *
 * @example
 * ```ts
 * import { stunTurnConfig } from "./turn_flags.ts";
 * console.log(stunTurnConfig({}).realm); // "p2p"
 * ```
 */
export function stunTurnConfig(options: Record<string, unknown>): StunTurnConfig {
  return {
    realm: (options.turnRealm as string | undefined) ?? "p2p",
    secrets: (options.turnSecret as string[] | undefined) ?? [],
    users: (options.turnUser as { name: string; password: string }[] | undefined) ?? [],
    userFile: options.turnUserFile as string | undefined,
    relayPorts: (options.turnRelayPorts as PortRange | undefined) ?? DEFAULT_RELAY_PORTS,
    relayHost: options.turnRelayHost as string | undefined,
    externalIps: (options.turnExternalIp as StunTurnConfig["externalIps"] | undefined) ?? [],
    userQuota: (options.turnUserQuota as number | undefined) ?? 64,
    totalQuota: (options.turnTotalQuota as number | undefined) ?? 10_000,
    maxBps: options.turnMaxBps as number | undefined,
    relayTotalBps: options.relayTotalBps as number | undefined,
    allowLoopbackPeers: options.allowLoopbackPeers === true,
    allowPeers: (options.turnAllowPeer as string[] | undefined) ?? [],
    denyPeers: (options.turnDenyPeer as string[] | undefined) ?? [],
    altHost: options.altHost as string | undefined,
    altPort: options.altPort as number | undefined,
    alternateServer: options.alternateServer as { hostname: string; port: number } | undefined,
    stunTcp: options.stunTcp !== false,
    batchedUdp: options.batchedUdp === true,
  };
}
