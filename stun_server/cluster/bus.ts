/**
 * What the signaling server needs of a cluster: where a peer ID is registered, telling the
 * cluster about local registrations, and sending introductions, answers, `peer-left` and relay
 * frames to another node. {@linkcode ClusterBus} is that interface; {@linkcode LocalBus} is the
 * single-node implementation (no cluster: nothing is remote, nothing is sent), so a server started
 * without `--cluster` behaves exactly as before; `ClusterNode` (cluster_node.ts) is the real one.
 *
 * @module
 */
import type { BusControl } from "./messages.ts";

/** The transport of a cluster: publish/subscribe of byte payloads on subjects (NATS, or memory). */
export interface BusTransport {
  /** Whether messages published now are delivered (false while the broker is unreachable). */
  readonly connected: boolean;
  /** Publishes `payload` on `subject`; returns false (and drops it) while not connected. */
  publish(subject: string, payload: Uint8Array): boolean;
  /** Delivers every payload published on `subject` (from any node, this one included). */
  subscribe(subject: string, onMessage: (payload: Uint8Array) => void): void;
  /** Called with `true` when the broker (re)connects and `false` when it is lost. */
  onStatus(listener: (connected: boolean) => void): void;
  /** Leaves the broker (pending publishes are flushed, bounded). */
  close(): Promise<void>;
}

/** Messages for clients on this node, as the server handles them. */
export type ClusterDelivery = Exclude<
  BusControl,
  { type: "lease" | "announce" | "withdraw" | "presence" | "sync" }
>;

/** What a {@linkcode ClusterBus} tells the server. */
export interface ClusterHandler {
  /**
   * A control message for a client on this node (an introduction, an answer, a `peer-left`).
   * `toHolder`: it was sent to whichever node holds `to` (see {@linkcode ClusterBus.sendToHolder}),
   * so a node that does not hold it ignores it.
   */
  onDelivery(message: ClusterDelivery, toHolder: boolean): void;
  /** A relay frame from client `from` (another node) to the local client `to`. */
  onRelay(from: string, to: string, payload: Uint8Array, fromId?: Uint8Array): void;
  /**
   * A newer session for the local ID `id` registered on another node: close ours ("replaced");
   * `nonce` is the newer registration's `registrationNonce`, if it had one.
   */
  onReplaced(id: string, nonce?: string): void;
  /** Node `node` stopped heartbeating (or restarted): every client it held is gone. */
  onNodeLost(node: string): void;
  /** The bus became usable (`true`) or unusable (`false`). */
  onAvailability(available: boolean): void;
}

/**
 * The cluster as the signaling server sees it.
 *
 * @example
 * ```ts
 * const bus: ClusterBus = new LocalBus();
 * const epoch = bus.announce("ab".repeat(20));
 * console.log(bus.locate("cd".repeat(20))); // undefined: nothing is remote on one node
 * bus.withdraw("ab".repeat(20), epoch);
 * ```
 */
export interface ClusterBus {
  /** This node's name (unique in the cluster). */
  readonly nodeName: string;
  /** Whether this node is part of a cluster at all (false for {@linkcode LocalBus}). */
  readonly clustered: boolean;
  /** Whether cross-node operations can be carried out now. */
  readonly available: boolean;
  /** Remote IDs known, and nodes alive (for stats). */
  readonly stats: { remoteIds: number; nodes: number; dropped: number; invalid: number };
  /** Sets who hears about deliveries, relay frames, replacements and lost nodes. */
  setHandler(handler: ClusterHandler): void;
  /** The node holding `id` when it is registered on another node; undefined otherwise. */
  locate(id: string): string | undefined;
  /**
   * A session for `id` registered here: tells the cluster (the newest session wins everywhere).
   * Returns the session's epoch (pass it to {@linkcode ClusterBus.withdraw}). `nonce`: the
   * registration's `registrationNonce`, passed on to the session it replaces.
   */
  announce(id: string, nonce?: string): number;
  /** The session of `epoch` for `id` ended here. */
  withdraw(id: string, epoch: number): void;
  /** Sends a control message to `node`; false when the bus is unavailable (nothing was sent). */
  send(node: string, message: ClusterDelivery): boolean;
  /**
   * Sends a control message to whichever node holds `message.to` (every node receives it; the
   * holder answers): for an ID this node's directory does not know yet (its `announce` may still
   * be on the way). False when the bus is unavailable.
   */
  sendToHolder(message: ClusterDelivery): boolean;
  /** Sends a relay frame (20-byte IDs) to `node`; false when the bus is unavailable. */
  relay(node: string, from: Uint8Array, to: Uint8Array, payload: Uint8Array): boolean;
  /** Leaves the cluster (bounded). */
  close(): Promise<void>;
}

/**
 * The bus of a server that is not in a cluster: nothing is remote, nothing is ever sent.
 *
 * @example
 * ```ts
 * const bus = new LocalBus();
 * console.log(bus.clustered, bus.available); // false true
 * console.log(bus.send("b", {
 *   type: "peer-left",
 *   node: "b",
 *   from: "ab".repeat(20),
 *   to: "cd".repeat(20),
 *   reason: "timeout",
 * })); // false
 * ```
 */
export class LocalBus implements ClusterBus {
  readonly nodeName: string;
  readonly clustered = false;
  readonly available = true;
  #epoch = 0;

  /** @param nodeName A name for logs (default `"local"`). */
  constructor(nodeName = "local") {
    this.nodeName = nodeName;
  }

  get stats(): { remoteIds: number; nodes: number; dropped: number; invalid: number } {
    return { remoteIds: 0, nodes: 1, dropped: 0, invalid: 0 };
  }

  setHandler(_handler: ClusterHandler): void {}

  locate(_id: string): string | undefined {
    return undefined;
  }

  announce(_id: string, _nonce?: string): number {
    return ++this.#epoch;
  }

  withdraw(_id: string, _epoch: number): void {}

  send(_node: string, _message: ClusterDelivery): boolean {
    return false;
  }

  sendToHolder(_message: ClusterDelivery): boolean {
    return false;
  }

  relay(_node: string, _from: Uint8Array, _to: Uint8Array, _payload: Uint8Array): boolean {
    return false;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
