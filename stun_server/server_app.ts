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
}

/** What the server needs of a running STUN service. */
export interface StunServiceHandle {
  /** The bound UDP addresses. */
  readonly addresses: Deno.NetAddr[];
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
  const stun = listenStun({
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
    throw error;
  }
  const announcement: ListeningAnnouncement = {
    event: "listening",
    pid: Deno.pid,
    version: SERVER_VERSION,
    tcp: { hostname: signaling.address.hostname, port: signaling.address.port },
    stun: stun.addresses.map((a) => ({ hostname: a.hostname, port: a.port })),
  };
  let stopping: Promise<void> | null = null;
  return {
    signaling,
    stun,
    announcement,
    shutdown() {
      stopping ??= (async () => {
        await signaling.shutdown();
        await stun.close();
      })();
      return stopping;
    },
  };
}
