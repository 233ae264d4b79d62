/**
 * The server's STUN port with TURN: builds the {@linkcode TurnServer} from the command line's
 * STUN/TURN settings (`turn_flags.ts`) and starts the STUN service with it, its counters and the
 * TURN server's copied into the server's metrics. `main.ts` passes {@linkcode stunTurnListen} as
 * `listenStun` to `startServer`.
 *
 * @module
 */
import { StunFreshness } from "./stun_freshness.ts";
import { SourceRateLimiter } from "./stun_rate_limit.ts";
import { getLogger } from "@logtape/logtape";
import { type Runtime, systemRuntime } from "../shared/runtime/mod.ts";
import type { RelayBudget } from "./relay_budget.ts";
import type { StunListen, StunServiceHandle } from "./server.ts";
import { StunService } from "./stun_service.ts";
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

function familyOf(hostname: string): "IPv4" | "IPv6" {
  return hostname.includes(":") ? "IPv6" : "IPv4";
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
  sharedBudget?: RelayBudget,
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
      return (runtime.net.interfaceAddresses?.() ?? []).find((a) =>
        familyOf(a) === family && a !== "::1" && !a.startsWith("127.")
      );
    },
    advertisedAddressFor: config.externalIps.length === 0 ? undefined : (bound) => {
      const match = config.externalIps.find((e) => e.private === bound) ??
        config.externalIps.find((e) =>
          e.private === undefined && familyOf(e.public) === familyOf(bound)
        );
      return match?.public ?? bound;
    },
    userQuota: config.userQuota,
    totalQuota: config.totalQuota,
    allocationBytesPerSecond: config.maxBps,
    sharedBudget,
    alternateServer: config.alternateServer,
    software,
    onRefused: (event) => turnLog.debug("TURN request refused: {method} {code} {reason}", event),
  });
}

/** What {@linkcode stunTurnListen} starts: the STUN service handle plus TURN's parts. */
export interface StunTurnHandle extends StunServiceHandle {
  /** The STUN service. */
  readonly service: StunService;
  /** The TURN server, when TURN credentials are configured. */
  readonly turn: TurnServer | undefined;
}

/**
 * A `listenStun` for `startServer` that serves STUN and, when configured, TURN on the STUN port
 * (UDP and TCP), with RFC 5780 when an alternate address or port is set.
 *
 * @example
 * ```ts
 * import { startServer } from "./server.ts";
 * import { stunTurnConfig } from "./turn_flags.ts";
 * const config = stunTurnConfig({ turnUser: [{ name: "alice", password: "pw" }] });
 * const server = startServer({
 *   hostname: "127.0.0.1",
 *   tcpPort: 0,
 *   stunPort: 0,
 *   listenStun: stunTurnListen(config),
 * });
 * await server.close();
 * ```
 */
export function stunTurnListen(config: StunTurnConfig): StunListen {
  return (options) => {
    const runtime = options.runtime;
    const turn = makeTurnServer(
      config,
      options.software ?? "p2p-stun",
      runtime,
      options.relayBudget,
    );
    let service: StunService;
    try {
      service = StunService.listen({
        runtime,
        hostname: options.hostname,
        port: options.port,
        software: options.software,
        users: options.users,
        onEvent: options.onEvent,
        // Issue 11: a per-source answer limit and the replay filter of authenticated Bindings.
        rateLimit: new SourceRateLimiter(() => runtime.now()),
        freshness: new StunFreshness(),
        turn,
        tcp: config.stunTcp,
        alternate: config.altHost !== undefined || config.altPort !== undefined
          ? { hostname: config.altHost, port: config.altPort }
          : undefined,
      });
    } catch (error) {
      turn?.close().catch(() => {});
      throw error;
    }
    const metrics = options.metrics;
    metrics.addCollector(() => {
      const stats = service.stats;
      metrics.stunAnswered.set("success", stats.answered);
      metrics.stunAnswered.set("error", stats.errors);
      for (const [reason, count] of Object.entries(stats.dropped)) {
        metrics.stunDropped.set(reason, count);
      }
      if (turn === undefined) return;
      const t = turn.stats;
      metrics.turnAllocations = t.allocations;
      metrics.turnRequests.set("success", t.requestsOk);
      for (const [code, count] of Object.entries(t.errors)) metrics.turnRequests.set(code, count);
      metrics.turnRelayedPackets.set("to-peer", t.toPeerPackets);
      metrics.turnRelayedPackets.set("to-client", t.toClientPackets);
      metrics.turnRelayedBytes.set("to-peer", t.toPeerBytes);
      metrics.turnRelayedBytes.set("to-client", t.toClientBytes);
      for (const [reason, count] of Object.entries(t.dropped)) {
        metrics.turnDropped.set(reason, count);
      }
    });
    return {
      service,
      turn,
      get addresses() {
        return service.addresses;
      },
      get tcpAddress() {
        return service.tcpAddress;
      },
      drain() {
        turn?.drain();
      },
      async close() {
        await service.close();
        await turn?.close();
      },
    } satisfies StunTurnHandle;
  };
}
