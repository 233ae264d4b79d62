/**
 * Starts the whole server from its settings: the registry shared by both services, the STUN
 * service on UDP and the signaling service on TCP, and the listening announcement.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { ServerConfig } from "./cli.ts";
import { Registry, type StunEndpoint } from "./registry.ts";
import type { Session } from "./session.ts";
import { SignalingServer } from "./signaling_server.ts";
import { SERVER_VERSION } from "./version.ts";
import { batchedDatagramRuntime, type Runtime, systemRuntime } from "../shared/runtime/mod.ts";
import { systemAddresses } from "./local_addresses.ts";
import type { AlternateAddress } from "./stun_service.ts";
import {
  CombinedCredentials,
  parseCidr,
  parseUserFile,
  PeerPolicy,
  SharedSecretCredentials,
  StaticUsers,
  type TurnCredentialSource,
  TurnServer,
} from "./turn/mod.ts";
import { type StunTurnConfig, turnEnabled } from "./turn_flags.ts";

/** The user directory the STUN service consults for authenticated Bindings. */
export interface StunUserDirectory {
  /** The short-term key of `username` (UTF-8 of its password), if known. */
  keyFor(username: string): Uint8Array | undefined;
  /** An authenticated Binding from `username` came from `address`. */
  onAuthenticatedBinding(username: string, address: StunEndpoint): void;
}

/** Options the server passes to the STUN service. */
export interface StunListenOptions {
  /** Address to listen on (undefined: all interfaces). */
  hostname?: string;
  /** UDP port (0 picks a free one). */
  port?: number;
  /** SOFTWARE attribute value. */
  software?: string;
  /** Directory of registered clients' STUN credentials. */
  users?: StunUserDirectory;
  /** Rare events of the STUN service (listening, failures, close), for the logs. */
  onEvent?: (event: { type: string; error?: string }) => void;
  /** The TURN server (when TURN credentials are configured). */
  turn?: TurnServer;
  /** RFC 5780 alternate address/port. */
  alternate?: AlternateAddress;
  /** Serve STUN/TURN over TCP on the STUN port. */
  tcp?: boolean;
  /** Clock, timers and sockets (batched UDP when asked for). */
  runtime?: Runtime;
}

/** What the server needs of a running STUN service. */
export interface StunServiceHandle {
  /** The bound UDP addresses. */
  readonly addresses: Deno.NetAddr[];
  /** The TCP address STUN/TURN is served on, if any. */
  readonly tcpAddress?: Deno.NetAddr;
  /** Stops the service. */
  close(): Promise<void>;
}

/** How to start the STUN service (injected so the signaling side can be run on its own). */
export type StunListen = (options: StunListenOptions) => StunServiceHandle;

/**
 * The one JSON line the server prints on stdout once both services listen. Test harnesses and
 * scripts read the real ports from it (useful with port 0).
 */
export interface ListeningAnnouncement {
  /** Always `"listening"`. */
  event: "listening";
  /** The server's process ID. */
  pid: number;
  /** The server's version. */
  version: string;
  /** The signaling service's TCP address. */
  tcp: { hostname: string; port: number };
  /** The STUN service's UDP addresses. */
  stun: { hostname: string; port: number }[];
  /** STUN/TURN over TCP on the STUN port, if served. */
  stunTcp?: { hostname: string; port: number };
  /** Whether TURN is served. */
  turn?: boolean;
}

/** A started server. */
export interface RunningServer {
  /** The signaling service. */
  readonly signaling: SignalingServer;
  /** The STUN service. */
  readonly stun: StunServiceHandle;
  /** What to announce on stdout. */
  readonly announcement: ListeningAnnouncement;
  /** Graceful shutdown of both services (byes to every client first). */
  shutdown(): Promise<void>;
}

/**
 * Starts both services. Throws when a port cannot be bound (the STUN service is closed again if
 * the signaling service fails).
 *
 * @example
 * ```ts
 * import { StunService } from "./stun_service.ts";
 * import { parseServerArgs } from "./cli.ts";
 * const parsed = parseServerArgs(["--tcp-port", "0", "--stun-port", "0"], {
 *   writeOut: () => {},
 *   writeErr: () => {},
 * });
 * if ("config" in parsed) {
 *   const server = startServer(parsed.config, (options) => StunService.listen(options));
 *   console.log(server.announcement.tcp.port);
 *   await server.shutdown();
 * }
 * ```
 */
export function startServer(config: ServerConfig, listenStun: StunListen): RunningServer {
  const stunLog = getLogger(["stun-server", "stun"]);
  const registry = new Registry<Session>();
  const runtime = config.stun.batchedUdp ? batchedDatagramRuntime(systemRuntime) : systemRuntime;
  const turn = makeTurnServer(config.stun, `p2p-rendezvous ${SERVER_VERSION}`, runtime);
  const stun = listenStun({
    runtime,
    turn,
    tcp: config.stun.stunTcp,
    alternate: config.stun.altHost !== undefined || config.stun.altPort !== undefined
      ? { hostname: config.stun.altHost, port: config.stun.altPort }
      : undefined,
    hostname: config.host,
    port: config.stunPort,
    software: `p2p-rendezvous ${SERVER_VERSION}`,
    users: registry,
    onEvent: (event) => {
      if (event.error === undefined) stunLog.debug("STUN service: {type}", { type: event.type });
      else stunLog.warn("STUN service: {type}: {error}", { type: event.type, error: event.error });
    },
  });
  let signaling: SignalingServer;
  try {
    signaling = SignalingServer.listen({
      hostname: config.host,
      port: config.tcpPort,
      stunPort: stun.addresses[0]?.port ?? config.stunPort,
      registry,
      maxClients: config.maxClients,
      maxConnectionsPerAddress: config.maxConnsPerIp,
      relayBytesPerSecond: config.relayRate,
      relayQueueBytes: config.relayQueue,
      heartbeatMs: config.heartbeatMs,
      registrationTimeoutMs: config.registrationTimeoutMs,
    });
  } catch (error) {
    stun.close().catch(() => {});
    turn?.close().catch(() => {});
    throw error;
  }
  const announcement: ListeningAnnouncement = {
    event: "listening",
    pid: Deno.pid,
    version: SERVER_VERSION,
    tcp: { hostname: signaling.address.hostname, port: signaling.address.port },
    stun: stun.addresses.map((a) => ({ hostname: a.hostname, port: a.port })),
    ...(stun.tcpAddress === undefined
      ? {}
      : { stunTcp: { hostname: stun.tcpAddress.hostname, port: stun.tcpAddress.port } }),
    turn: turn !== undefined,
  };
  let stopping: Promise<void> | null = null;
  return {
    signaling,
    stun,
    announcement,
    shutdown() {
      stopping ??= (async () => {
        turn?.drain();
        await signaling.shutdown();
        await stun.close();
        await turn?.close();
      })();
      return stopping;
    },
  };
}

/**
 * The TURN server the settings ask for, or undefined when no TURN credentials are configured.
 *
 * @throws when the user file cannot be read or parsed.
 *
 * @example
 * ```ts
 * import { stunTurnConfig } from "./turn_flags.ts";
 * console.log(makeTurnServer(stunTurnConfig({}), "demo")); // undefined
 * ```
 */
export function makeTurnServer(
  config: StunTurnConfig,
  software: string,
  runtime: Runtime = systemRuntime,
): TurnServer | undefined {
  if (!turnEnabled(config)) return undefined;
  const turnLog = getLogger(["stun-server", "turn"]);
  const sources: TurnCredentialSource[] = [];
  const users = [...config.users];
  if (config.userFile !== undefined) {
    users.push(...parseUserFile(Deno.readTextFileSync(config.userFile)));
  }
  if (users.length > 0) sources.push(new StaticUsers(users));
  if (config.secrets.length > 0) sources.push(new SharedSecretCredentials(config.secrets));
  const familyOf = (h: string) => (h.includes(":") ? "IPv6" : "IPv4");
  return new TurnServer({
    runtime,
    realm: config.realm,
    credentials: new CombinedCredentials(sources),
    peerPolicy: new PeerPolicy({
      allowLoopback: config.allowLoopbackPeers,
      allowed: config.allowPeers.map(parseCidr),
      denied: config.denyPeers.map(parseCidr),
    }),
    relayPorts: config.relayPorts,
    relayAddressFor: (link, family) => {
      if (config.relayHost !== undefined) {
        return familyOf(config.relayHost) === family ? config.relayHost : undefined;
      }
      const local = link.server.hostname;
      if (familyOf(local) === family && local !== "::" && local !== "0.0.0.0") return local;
      return systemAddresses().find((a) =>
        familyOf(a) === family && a !== "::1" && !a.startsWith("127.")
      );
    },
    userQuota: config.userQuota,
    totalQuota: config.totalQuota,
    allocationBytesPerSecond: config.maxBps,
    totalBytesPerSecond: config.totalBps,
    alternateServer: config.alternateServer,
    software,
    onRefused: (event) => turnLog.debug("TURN request refused: {method} {code} {reason}", event),
  });
}
