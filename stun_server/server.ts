/**
 * The whole server in one call: the registry shared by both services, the STUN service on UDP
 * and the signaling service on TCP, on an injected {@linkcode Runtime}. `main.ts` runs it on the
 * system runtime; a simulator runs the very same code on virtual time over an in-memory network:
 *
 * ```ts ignore
 * import { VirtualRuntime } from "../testing/virtual_runtime.ts";
 * const world = new VirtualRuntime({ seed: 1 });
 * const server = startServer({
 *   runtime: world.forHost("10.0.0.1"), // the server's host on the in-memory network
 *   tcpPort: 3478,
 *   stunPort: 54321,
 *   heartbeatMs: 1000, // any option of ServerOptions
 * });
 * // Clients dial 10.0.0.1:3478 (TCP) and send STUN to 10.0.0.1:54321 (UDP) through their own
 * // world.forHost("10.0.0.x") runtimes; the network's policy hook delays, drops, partitions.
 * server.metrics.snapshot(); // every counter and gauge, as /metrics shows them
 * server.stats; // connections, registered, relayed frames and bytes, refusals
 * await server.close(); // graceful: bye server-shutdown to everyone, then both services stop
 * await server.abort(); // or a crash: every socket closed at once, no bye
 * // Then startServer(...) again on the same host and ports is a server restart.
 * ```
 *
 * Everything the server does with time, timers, randomness and sockets goes through the runtime.
 * Registration verifies an Ed25519 signature and hashes the key with synchronous node:crypto
 * (`shared/identity`), so it is microtask-only and deterministic on virtual time too
 * (`VirtualRuntime.drive` still helps for host work that is not virtual).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import {
  type NetAddress,
  type Runtime,
  type StreamListener,
  systemRuntime,
} from "../shared/runtime/mod.ts";
import { DEFAULT_STUN_PORT, DEFAULT_TCP_PORT } from "../shared/signaling/mod.ts";
import { ServerMetrics } from "./metrics.ts";
import type { RelayBudget } from "./relay_budget.ts";
import { Registry, type StunEndpoint } from "./registry.ts";
import type { RegisteredClient } from "./signaling/registered_client.ts";
import { SignalingService, type SignalingStats } from "./signaling/service.ts";
import type { ClusterBus } from "./cluster/bus.ts";
import { StunFreshness } from "./stun_freshness.ts";
import { SourceRateLimiter } from "./stun_rate_limit.ts";
import { StunService } from "./stun_service.ts";
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
  /** The runtime whose sockets to use. */
  runtime: Runtime;
  /** The server's counters (STUN answered/dropped by reason). */
  metrics: ServerMetrics;
  /** The relay budget shared with the signaling relay, if any. */
  relayBudget?: RelayBudget;
}

/** What the server needs of a running STUN service. */
export interface StunServiceHandle {
  /** The bound UDP addresses. */
  readonly addresses: { hostname: string; port: number }[];
  /** STUN/TURN over TCP on the STUN port, if served. */
  readonly tcpAddress?: { hostname: string; port: number };
  /** Whether TURN is served. */
  readonly turn?: unknown;
  /** Stops taking new work (TURN: new allocations are sent to the alternate server). */
  drain?(): void;
  /** Stops the service. */
  close(): Promise<void>;
}

/** How to start the STUN service (injected so a TURN-capable service can take its place). */
export type StunListen = (options: StunListenOptions) => StunServiceHandle;

/**
 * The default STUN service: `StunService` on the runtime's UDP sockets, its counters copied
 * into the server's metrics at every read.
 */
export const listenStunService: StunListen = (options) => {
  const service = StunService.listen({
    hostname: options.hostname,
    port: options.port,
    software: options.software,
    users: options.users,
    onEvent: options.onEvent,
    runtime: options.runtime,
    rateLimit: new SourceRateLimiter(() => options.runtime.now()),
    freshness: new StunFreshness(),
  });
  options.metrics.addCollector(() => {
    const stats = service.stats;
    options.metrics.stunAnswered.set("success", stats.answered);
    options.metrics.stunAnswered.set("error", stats.errors);
    for (const [reason, count] of Object.entries(stats.dropped)) {
      options.metrics.stunDropped.set(reason, count);
    }
  });
  return service;
};

/** Options of {@linkcode startServer}; everything but `runtime` has a default. */
export interface ServerOptions {
  /** Clock, timers, randomness and sockets (default `systemRuntime`). */
  runtime?: Runtime;
  /** Address to listen on (default: all interfaces, IPv6 and IPv4). */
  hostname?: string;
  /** TCP port of the signaling service (default 3478; 0 picks a free one). */
  tcpPort?: number;
  /** UDP port of the STUN service (default 54321; 0 picks a free one). */
  stunPort?: number;
  /** Most registered clients (default 10,000). */
  maxClients?: number;
  /** Most open TCP connections from one source address (default 64). */
  maxConnectionsPerAddress?: number;
  /** Relayed payload bytes per second per sending client (default 4 MiB/s). */
  relayBytesPerSecond?: number;
  /** Bytes that may wait for one receiver (default 1 MiB). */
  relayQueueBytes?: number;
  /** Relay window of a `relay-credit` receiver (default 64 KiB; 0 grants no credit). */
  relayCreditBytes?: number;
  /** Heartbeat interval (default 10 s). */
  heartbeatMs?: number;
  /** Time to register (default 10 s). */
  registrationTimeoutMs?: number;
  /** Control messages per second per connection (default 50). */
  controlMessagesPerSecond?: number;
  /** Control message burst (default 100). */
  controlMessageBurst?: number;
  /** Most peers per client (default 1024). */
  maxBrokeredPeers?: number;
  /** Most connections open and not yet registered (default 1024). */
  maxPendingConnections?: number;
  /** Most bits of the admission puzzle under load (default 16; 0: never ask one). */
  maxPuzzleBits?: number;
  /** Logger of the signaling service (default category `["stun-server", "signaling"]`). */
  logger?: Logger;
  /** How to start the STUN service (default {@linkcode listenStunService}). */
  listenStun?: StunListen;
  /** A relay budget both relays draw from (signaling relay and TURN). */
  relayBudget?: RelayBudget;
  /** The cluster this server is a node of (default: none; closed with the server). */
  cluster?: ClusterBus;
  /** Share the TCP port with other processes (`SO_REUSEPORT`, for `--workers`). */
  reusePort?: boolean;
}

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
  /** Whether TURN is served (present when the STUN service says). */
  turn?: boolean;
}

/** A started server. */
export interface RunningServer {
  /** The signaling service's TCP address. */
  readonly tcp: NetAddress;
  /** The STUN service's UDP addresses. */
  readonly stun: { hostname: string; port: number }[];
  /** The signaling service. */
  readonly signaling: SignalingService;
  /** The STUN service. */
  readonly stunService: StunServiceHandle;
  /** Every counter and gauge. */
  readonly metrics: ServerMetrics;
  /** The signaling counters. */
  readonly stats: SignalingStats;
  /** Graceful shutdown of both services (`bye server-shutdown` to every client first). */
  close(): Promise<void>;
  /** Stops both services at once without a word to anyone, as a crash would (simulations). */
  abort(): Promise<void>;
}

/** A startup failure, as one line naming what failed (`tcp port 3478 is in use`). */
export class StartupError extends Error {
  /** @param message What failed. */
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

function describeBindError(
  transport: "tcp" | "udp",
  hostname: string | undefined,
  port: number,
  error: unknown,
): string {
  if (error instanceof Deno.errors.AddrInUse) {
    // The STUN service also listens on TCP and says so in its message.
    if (error.message.startsWith("tcp port")) return error.message;
    return `${transport} port ${port} is in use`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `${transport} port ${port}: permission denied (ports below 1024 need privileges)`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `address ${hostname} is not an address of this host`;
  }
  const where = hostname === undefined ? `port ${port}` : `${hostname} port ${port}`;
  return `cannot listen on ${transport} ${where}: ${
    error instanceof Error ? error.message : String(error)
  }`;
}

function listenTcp(
  runtime: Runtime,
  hostname: string | undefined,
  port: number,
  reusePort: boolean,
): StreamListener {
  const shared = reusePort ? { reusePort: true } : {};
  try {
    if (hostname !== undefined) return runtime.net.listen({ hostname, port, ...shared });
    try {
      return runtime.net.listen({ hostname: "::", port, ...shared });
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) throw error;
      return runtime.net.listen({ hostname: "0.0.0.0", port, ...shared });
    }
  } catch (error) {
    throw new StartupError(describeBindError("tcp", hostname, port, error));
  }
}

/**
 * Starts both services on `options.runtime`. Throws {@linkcode StartupError} when a port cannot
 * be bound (the STUN service is closed again if the signaling service fails).
 *
 * @example
 * ```ts
 * const server = startServer({ hostname: "127.0.0.1", tcpPort: 0, stunPort: 0 });
 * console.log(server.tcp.port > 0, server.stun[0].port > 0); // true true
 * await server.close();
 * ```
 */
export function startServer(options: ServerOptions = {}): RunningServer {
  const runtime = options.runtime ?? systemRuntime;
  const stunLog = getLogger(["stun-server", "stun"]);
  const metrics = new ServerMetrics(SERVER_VERSION, () => runtime.now());
  const registry = new Registry<RegisteredClient>();
  const stunPort = options.stunPort ?? DEFAULT_STUN_PORT;
  const tcpPort = options.tcpPort ?? DEFAULT_TCP_PORT;
  let stun: StunServiceHandle;
  try {
    stun = (options.listenStun ?? listenStunService)({
      hostname: options.hostname,
      port: stunPort,
      software: `p2p-rendezvous ${SERVER_VERSION}`,
      users: registry,
      runtime,
      metrics,
      relayBudget: options.relayBudget,
      onEvent: (event) => {
        if (event.error === undefined) stunLog.debug("STUN service: {type}", { type: event.type });
        else {stunLog.warn("STUN service: {type}: {error}", {
            type: event.type,
            error: event.error,
          });}
      },
    });
  } catch (error) {
    throw new StartupError(describeBindError("udp", options.hostname, stunPort, error));
  }
  let listener: StreamListener;
  try {
    listener = listenTcp(runtime, options.hostname, tcpPort, options.reusePort ?? false);
  } catch (error) {
    stun.close().catch(() => {});
    throw error;
  }
  const signaling = new SignalingService({
    runtime,
    registry,
    metrics,
    stunPort: stun.addresses[0]?.port ?? stunPort,
    maxClients: options.maxClients,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress,
    relayBytesPerSecond: options.relayBytesPerSecond,
    relayQueueBytes: options.relayQueueBytes,
    relayCreditBytes: options.relayCreditBytes,
    heartbeatMs: options.heartbeatMs,
    registrationTimeoutMs: options.registrationTimeoutMs,
    controlMessagesPerSecond: options.controlMessagesPerSecond,
    controlMessageBurst: options.controlMessageBurst,
    maxBrokeredPeers: options.maxBrokeredPeers,
    maxPendingConnections: options.maxPendingConnections,
    maxPuzzleBits: options.maxPuzzleBits,
    logger: options.logger,
    relayBudget: options.relayBudget,
    cluster: options.cluster,
  });
  signaling.listen(listener);
  let stopping: Promise<void> | null = null;
  return {
    tcp: listener.addr,
    stun: stun.addresses.map((a) => ({ hostname: a.hostname, port: a.port })),
    signaling,
    stunService: stun,
    metrics,
    get stats() {
      return signaling.stats;
    },
    close() {
      stopping ??= (async () => {
        stun.drain?.();
        await signaling.shutdown();
        await stun.close();
        await options.cluster?.close();
      })();
      return stopping;
    },
    abort() {
      signaling.abort();
      stopping ??= stun.close();
      return stopping;
    },
  };
}

/**
 * The announcement line for a running server.
 *
 * @example
 * ```ts
 * const server = startServer({ hostname: "127.0.0.1", tcpPort: 0, stunPort: 0 });
 * console.log(announce(server, 1).event); // "listening"
 * await server.close();
 * ```
 */
export function announce(server: RunningServer, pid: number): ListeningAnnouncement {
  return {
    event: "listening",
    pid,
    version: SERVER_VERSION,
    tcp: { hostname: server.tcp.hostname, port: server.tcp.port },
    stun: server.stun,
    ...(server.stunService.tcpAddress === undefined ? {} : {
      stunTcp: {
        hostname: server.stunService.tcpAddress.hostname,
        port: server.stunService.tcpAddress.port,
      },
    }),
    ...("turn" in server.stunService ? { turn: server.stunService.turn !== undefined } : {}),
  };
}
