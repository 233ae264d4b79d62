/**
 * What the parts of the signaling service (admission, control, relay, liveness) share: the
 * runtime, the log, the metrics, the registry, the limits, and the three ways to end or warn a
 * connection. The service (`service.ts`) implements it and hands itself to each part.
 *
 * @module
 */
import type { RelayBudget } from "../relay_budget.ts";
import type { Runtime } from "../../shared/runtime/mod.ts";
import type {
  ByeReason,
  ErrorCode,
  PeerLeftReason,
  ServerMessage,
} from "../../shared/signaling/mod.ts";
import type { ClusterRouter } from "../cluster/cluster_router.ts";
import type { ServerMetrics } from "../metrics.ts";
import type { Registry } from "../registry.ts";
import type { ServerLog } from "../server_log.ts";
import type { ClientConnection } from "./connection.ts";
import type { RegisteredClient } from "./registered_client.ts";

/** The service's limits, resolved from its options. */
export interface SignalingLimits {
  /** The STUN port announced in `registered`. */
  stunPort: number;
  /** Most registered clients. */
  maxClients: number;
  /** Most open connections from one source address. */
  maxConnectionsPerAddress: number;
  /** Relayed payload bytes per second per sender. */
  relayBytesPerSecond: number;
  /** Relay token bucket burst. */
  relayBurstBytes: number;
  /** Bytes that may wait for one receiver. */
  relayQueueBytes: number;
  /**
   * Relay frame bytes written to a receiver that declared `relay-credit` and not yet acknowledged
   * by it, at most (0: grant no credit; every receiver is written to as fast as it reads).
   */
  relayCreditBytes: number;
  /** Heartbeat interval (ms). */
  heartbeatMs: number;
  /** Time to register (ms). */
  registrationTimeoutMs: number;
  /** Control messages per second per connection. */
  controlMessagesPerSecond: number;
  /** Control message burst. */
  controlMessageBurst: number;
  /** Most peers one client may be introduced to at once. */
  maxBrokeredPeers: number;
  /** Most connections open and not yet registered (beyond it the least fair one is evicted). */
  maxPendingConnections: number;
  /** Most bits of the admission puzzle under load (0: never ask one). */
  maxPuzzleBits: number;
}

/** How a connection is closed. */
export interface CloseHow {
  /** Why, for the log and the `closes` counter (`client-bye`, `timeout`, `replaced`, ...). */
  reason: string;
  /** An `error` sent first. */
  error?: [ErrorCode, string];
  /** A `bye` sent after it. */
  bye?: ByeReason;
  /** Extra fields of the `bye` (the newer registration's nonce for `replaced`). */
  byeRegistrationNonce?: string;
  /** What its peers are told. */
  peerLeft: PeerLeftReason;
  /** Already removed from the registry (it was replaced). */
  unregistered?: boolean;
}

/** The shared context of the signaling service's parts. */
export interface SignalingContext {
  /** Clock, timers, randomness. */
  readonly runtime: Runtime;
  /** Logs. */
  readonly log: ServerLog;
  /** Counters. */
  readonly metrics: ServerMetrics;
  /** Registered clients by ID and STUN username. */
  readonly registry: Registry<RegisteredClient>;
  /** Limits. */
  readonly limits: SignalingLimits;
  /** A relay budget shared with the TURN relay, if any. */
  readonly relayBudget?: RelayBudget;
  /** Peers on other nodes of a cluster (nothing is remote on a single server). */
  readonly cluster: ClusterRouter<RegisteredClient>;
  /** Closes a connection (tells it why, unregisters it, tells its peers). */
  close(connection: ClientConnection, how: CloseHow): void;
  /** Counts a protocol violation; the third closes the connection. */
  violation(connection: ClientConnection, code: ErrorCode, message: string): void;
  /** Sends a control message unless the receiver is so far behind it must be cut off. */
  sendBounded(connection: ClientConnection, message: ServerMessage): void;
  /** How loaded registration is: 0 idle, 1 full (pending connections or registered clients). */
  load(): number;
  /** A connection has just registered (it no longer counts as pending). */
  noteRegistered(connection: ClientConnection): void;
  /**
   * The server is full and a client from `host` wants to register: evicts an idle session (one
   * that never took part in an introduction nor relayed) from the network holding the most
   * sessions, if that is fairer than refusing; true when one was evicted.
   */
  evictIdleFor(host: string): boolean;
}
