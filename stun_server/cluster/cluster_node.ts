/**
 * One server's membership in a cluster: heartbeated node leases, the cluster-wide presence
 * directory (which node holds each registered peer ID), and routing of introductions, answers,
 * `peer-left` and relay frames to other nodes, over any {@linkcode BusTransport} (NATS in
 * production, memory in the simulator) on the injected {@linkcode Runtime}.
 *
 * Why this shape: every node keeps the whole directory (about 110 bytes of heap per remote client:
 * the ID string, one map entry and one number packing the session epoch with the holding node's
 * slot; 200 bytes with an object and a set entry per ID before, measured at 50,000 clients), so the relay and `connect` look a peer up synchronously, with no request on the bus per
 * message; the bus carries one `announce`/`withdraw` per registration and one lease per node per
 * second. Presence is soft state: a node that stops heartbeating for `leaseMs` (3 s by default) is
 * dropped with everything it held, and a node that (re)joins asks everyone to publish their
 * presence again (`sync`), so a restart of NATS or of a node heals by itself.
 *
 * The newest session of an ID wins cluster-wide, as on one node: each registration gets an epoch
 * `max(wall clock, newest epoch known for the ID + 1)`; on a conflict the higher `(epoch, node)`
 * wins, and the node holding the older session is told to close it (`onReplaced`). A node that
 * sees an older claim than its own announces again, so both sides converge even after an outage.
 *
 * Announcements and withdrawals are sent in batches (`changes`, binary): those a node makes within
 * {@linkcode CHANGES_FLUSH_MS} go out as one bus message, in order, and before any other control
 * message of the node (so nothing it says about an ID overtakes the ID's announcement). Measured
 * on the 2-core machine, two nodes over a real nats-server, 4 announcements per ms (a burst of
 * registrations): one JSON message per announcement cost the two nodes about 56 µs and
 * nats-server 33 µs per announcement; batched, 35 µs and 16 µs (a registration costs the
 * workers 300-420 µs in all). A batch waits at most 5 ms; a node that does not know an ID yet
 * still reaches its holder through `<prefix>.any`.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import type { Runtime, TimerId } from "../../shared/runtime/mod.ts";
import type { BusTransport, ClusterBus, ClusterDelivery, ClusterHandler } from "./bus.ts";
import {
  type BusControl,
  clusterSubjects,
  decodeBusMessage,
  decodeLinkAnnouncement,
  encodeBusChanges,
  encodeBusControl,
  encodeBusRelay,
  encodeLinkAnnouncement,
  MAX_CHANGES_BATCH,
  MAX_PRESENCE_BATCH,
  type PresenceChange,
} from "./messages.ts";
import type { LinkEndpoint, SiblingLinks } from "./sibling_links.ts";

/** Options of a {@linkcode ClusterNode}. */
export interface ClusterNodeOptions {
  /** This node's name, unique in the cluster (`[A-Za-z0-9_-]{1,64}`). */
  nodeName: string;
  /** The transport (connected or connecting). */
  transport: BusTransport;
  /** Clock, timers and randomness. */
  runtime: Runtime;
  /** Subject prefix (default `p2p`). */
  prefix?: string;
  /** Interval of this node's lease heartbeats in ms (default 1000). */
  heartbeatMs?: number;
  /** A node silent for this long is dead, in ms (default 3 × heartbeat). */
  leaseMs?: number;
  /** After (re)connecting, how long to wait for others' presence before serving lookups (ms). */
  syncGraceMs?: number;
  /** Logger (default category `["stun-server", "cluster"]`). */
  logger?: Logger;
  /**
   * A `--workers` worker's links to its siblings (listening already): relay frames to a sibling
   * go over its link instead of NATS; where it listens is announced with every lease.
   */
  siblings?: SiblingLinks;
}

interface NodeState {
  incarnation: string;
  expiresAt: number;
  /** Its index in the directory's packed values. */
  slot: number;
  /** IDs the directory holds for it. */
  ids: number;
}

/**
 * The directory packs a remote ID's epoch and its node's slot into one number,
 * `epoch * NODE_SLOTS + slot`, exact for epochs (wall-clock ms) up to the year 2248.
 */
const NODE_SLOTS = 1024;
/** Presence changes wait at most this long (ms) to be sent together. */
export const CHANGES_FLUSH_MS = 5;
const MAX_PACKED_EPOCH = Math.floor(Number.MAX_SAFE_INTEGER / NODE_SLOTS);

function packedEpoch(packed: number): number {
  return Math.floor(packed / NODE_SLOTS);
}

function packedSlot(packed: number): number {
  return packed % NODE_SLOTS;
}

const NO_HANDLER: ClusterHandler = {
  onDelivery() {},
  onRelay() {},
  onReplaced() {},
  onNodeLost() {},
  onAvailability() {},
};

/** Whether `(epochA, nodeA)` is newer than `(epochB, nodeB)`. */
function newer(epochA: number, nodeA: string, epochB: number, nodeB: string): boolean {
  return epochA > epochB || (epochA === epochB && nodeA > nodeB);
}

/**
 * A node of a server cluster.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * import type { BusTransport } from "./bus.ts";
 *
 * declare const transport: BusTransport;
 * const node = new ClusterNode({ nodeName: "a", transport, runtime: systemRuntime });
 * const epoch = node.announce("ab".repeat(20));
 * console.log(node.locate("cd".repeat(20))); // the node holding it, or undefined
 * node.withdraw("ab".repeat(20), epoch);
 * await node.close();
 * ```
 */
export class ClusterNode implements ClusterBus {
  readonly nodeName: string;
  readonly clustered = true;
  readonly incarnation: string;
  readonly #transport: BusTransport;
  readonly #runtime: Runtime;
  readonly #subjects: ReturnType<typeof clusterSubjects>;
  readonly #heartbeatMs: number;
  readonly #leaseMs: number;
  readonly #syncGraceMs: number;
  readonly #log: Logger;
  readonly #siblings: SiblingLinks | undefined;
  readonly #linkEndpoint: LinkEndpoint | undefined;
  readonly #local = new Map<string, number>();
  /** Remote ID → `epoch * NODE_SLOTS + slot` of the node holding it. */
  readonly #remote = new Map<string, number>();
  readonly #nodes = new Map<string, NodeState>();
  /** Slot → node name (undefined: free). */
  readonly #slots: (string | undefined)[] = [];
  #handler: ClusterHandler = NO_HANDLER;
  #timer: TimerId | undefined;
  #availableAt = Infinity;
  #wasAvailable = false;
  #lastEpoch = 0;
  #closed = false;
  #dropped = 0;
  #invalid = 0;
  /** Presence changes not yet sent, oldest first. */
  #changes: PresenceChange[] = [];
  #changesTimer: TimerId | undefined;

  /** Joins the cluster: subscribes, and starts heartbeating. */
  constructor(options: ClusterNodeOptions) {
    this.nodeName = options.nodeName;
    this.#transport = options.transport;
    this.#runtime = options.runtime;
    this.#subjects = clusterSubjects(options.prefix);
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#leaseMs = options.leaseMs ?? 3 * this.#heartbeatMs;
    this.#syncGraceMs = options.syncGraceMs ?? Math.min(1000, this.#heartbeatMs);
    this.#log = options.logger ?? getLogger(["stun-server", "cluster"]);
    this.incarnation = this.#runtime.randomBytes(8).toHex();
    this.#siblings = options.siblings;
    this.#linkEndpoint = this.#siblings?.listen();
    const onPayload = (payload: Uint8Array) => this.#receive(payload);
    if (this.#siblings !== undefined) {
      const siblings = this.#siblings;
      siblings.setReceiver(onPayload);
      this.#transport.subscribe(this.#subjects.link, (payload) => {
        const link = decodeLinkAnnouncement(payload);
        if (link === null || link.group !== siblings.group || link.node === this.nodeName) return;
        if (link.socket !== undefined) siblings.offer(link.node, { socket: link.socket });
        else if (link.port !== undefined) siblings.offer(link.node, { port: link.port });
      });
    }
    this.#transport.subscribe(this.#subjects.lease, onPayload);
    this.#transport.subscribe(this.#subjects.presence, onPayload);
    this.#transport.subscribe(this.#subjects.node(this.nodeName), onPayload);
    this.#transport.subscribe(this.#subjects.relay(this.nodeName), onPayload);
    this.#transport.subscribe(this.#subjects.any, (payload) => this.#receive(payload, true));
    this.#transport.onStatus((connected) => {
      if (this.#closed) return;
      if (connected) this.#joined();
      else this.#left();
    });
    if (this.#transport.connected) this.#joined();
    this.#schedule();
  }

  get available(): boolean {
    if (!this.#transport.connected) return false;
    // Asked for every relay frame: once the grace after joining has passed, no clock read.
    if (this.#availableAt === -Infinity) return true;
    if (this.#runtime.now() < this.#availableAt) return false;
    this.#availableAt = -Infinity; // until the bus is lost or joined again
    return true;
  }

  get stats(): { remoteIds: number; nodes: number; dropped: number; invalid: number } {
    return {
      remoteIds: this.#remote.size,
      nodes: this.#nodes.size + 1,
      dropped: this.#dropped,
      invalid: this.#invalid,
    };
  }

  /** The live nodes other than this one. */
  get peers(): string[] {
    return [...this.#nodes.keys()];
  }

  setHandler(handler: ClusterHandler): void {
    this.#handler = handler;
  }

  locate(id: string): string | undefined {
    const packed = this.#remote.get(id);
    return packed === undefined ? undefined : this.#slots[packedSlot(packed)];
  }

  announce(id: string, nonce?: string): number {
    const remote = this.#remote.get(id);
    const known = remote === undefined ? 0 : packedEpoch(remote);
    const epoch = Math.max(Math.floor(this.#runtime.wallClock()), known + 1, this.#lastEpoch + 1);
    this.#lastEpoch = epoch;
    this.#local.set(id, epoch);
    this.#forgetRemote(id);
    this.#change(
      nonce !== undefined ? { op: "announce", id, epoch, nonce } : { op: "announce", id, epoch },
    );
    return epoch;
  }

  withdraw(id: string, epoch: number): void {
    if (this.#local.get(id) !== epoch) return;
    this.#local.delete(id);
    this.#change({ op: "withdraw", id, epoch });
  }

  send(node: string, message: ClusterDelivery): boolean {
    if (!this.available) return false;
    return this.#publish(this.#subjects.node(node), message);
  }

  sendToHolder(message: ClusterDelivery): boolean {
    if (!this.available) return false;
    return this.#publish(this.#subjects.any, message);
  }

  relay(node: string, from: Uint8Array, to: Uint8Array, payload: Uint8Array): boolean {
    if (!this.available) return false;
    if (this.#siblings?.sendRelay(node, from, to, payload)) return true;
    const ok = this.#transport.publish(
      this.#subjects.relay(node),
      encodeBusRelay(from, to, payload),
    );
    if (!ok) this.#dropped++;
    return ok;
  }

  /** Stops heartbeating and withdraws nothing (other nodes expire this one's lease). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushChanges();
    this.#closed = true;
    this.#runtime.clearTimer(this.#timer);
    await this.#siblings?.close();
    await this.#transport.close();
  }

  // --- membership -----------------------------------------------------------------------------

  #joined(): void {
    this.#availableAt = this.#runtime.now() + this.#syncGraceMs;
    this.#lease();
    this.#publish(this.#subjects.presence, { type: "sync", node: this.nodeName });
    this.#publishPresence();
    this.#log.info("cluster bus connected as {node}", { node: this.nodeName });
  }

  #left(): void {
    this.#availableAt = Infinity;
    this.#log.warn("cluster bus lost: cross-node requests are refused until it returns", {
      node: this.nodeName,
    });
    this.#checkAvailability();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#runtime.setTimer(() => {
      this.#tick();
      this.#schedule();
    }, this.#heartbeatMs);
  }

  #tick(): void {
    try {
      if (this.#transport.connected) this.#lease();
      const now = this.#runtime.now();
      for (const [node, state] of this.#nodes) {
        if (now > state.expiresAt) this.#dropNode(node, "lease expired");
      }
      this.#checkAvailability();
    } catch (error) {
      this.#log.error("cluster heartbeat failed: {error}", { error: String(error) });
    }
  }

  #checkAvailability(): void {
    const available = this.available;
    if (available === this.#wasAvailable) return;
    this.#wasAvailable = available;
    this.#handler.onAvailability(available);
  }

  #lease(): void {
    this.#publish(this.#subjects.lease, {
      type: "lease",
      node: this.nodeName,
      incarnation: this.incarnation,
      leaseMs: this.#leaseMs,
    });
    if (this.#siblings !== undefined && this.#linkEndpoint !== undefined) {
      this.#transport.publish(
        this.#subjects.link,
        encodeLinkAnnouncement({
          type: "link",
          node: this.nodeName,
          group: this.#siblings.group,
          ...this.#linkEndpoint,
        }),
      );
    }
  }

  #publishPresence(): void {
    let entries: [string, number][] = [];
    for (const [id, epoch] of this.#local) {
      entries.push([id, epoch]);
      if (entries.length === MAX_PRESENCE_BATCH) {
        this.#publish(this.#subjects.presence, { type: "presence", node: this.nodeName, entries });
        entries = [];
      }
    }
    if (entries.length > 0) {
      this.#publish(this.#subjects.presence, { type: "presence", node: this.nodeName, entries });
    }
  }

  /**
   * Marks `node` alive; returns its state (null when the directory has no free slot: more than
   * 1024 live nodes). A new incarnation first drops the old one's IDs.
   */
  #touch(node: string, incarnation: string | null, leaseMs: number): NodeState | null {
    const now = this.#runtime.now();
    let state = this.#nodes.get(node);
    if (state !== undefined && incarnation !== null && state.incarnation !== incarnation) {
      if (state.incarnation !== "") this.#dropNode(node, "restarted");
      state = undefined;
    }
    if (state === undefined) {
      let slot = this.#slots.indexOf(undefined);
      if (slot < 0) slot = this.#slots.length;
      if (slot >= NODE_SLOTS) {
        this.#log.error("more than {max} cluster nodes: {node} ignored", {
          max: NODE_SLOTS,
          node,
        });
        return null;
      }
      this.#slots[slot] = node;
      state = { incarnation: incarnation ?? "", expiresAt: now + leaseMs, slot, ids: 0 };
      this.#nodes.set(node, state);
      this.#log.info("cluster node {node} joined", { node });
      // A node first seen by its lease (new, restarted, or back after we had expired it): ask it
      // for its presence, which we may never have had or have dropped.
      if (incarnation !== null) {
        this.#publish(this.#subjects.node(node), { type: "sync", node: this.nodeName });
      }
    } else if (state.incarnation === "" && incarnation !== null) {
      state.incarnation = incarnation;
    }
    state.expiresAt = Math.max(state.expiresAt, now + leaseMs);
    return state;
  }

  #dropNode(node: string, why: string): void {
    const state = this.#nodes.get(node);
    if (state === undefined) return;
    this.#nodes.delete(node);
    if (state.ids > 0) {
      // One pass over the directory (no per-node index: it would cost every remote ID a set entry).
      for (const [id, packed] of this.#remote) {
        if (packedSlot(packed) === state.slot) this.#remote.delete(id);
      }
    }
    this.#slots[state.slot] = undefined;
    this.#siblings?.forget(node);
    this.#log.info("cluster node {node} lost ({why}): {count} clients gone", {
      node,
      why,
      count: state.ids,
    });
    this.#handler.onNodeLost(node);
  }

  // --- presence -------------------------------------------------------------------------------

  #forgetRemote(id: string): void {
    const packed = this.#remote.get(id);
    if (packed === undefined) return;
    this.#remote.delete(id);
    this.#uncount(packed);
  }

  /** One ID fewer for the node of a packed directory value. */
  #uncount(packed: number): void {
    const node = this.#slots[packedSlot(packed)];
    const state = node === undefined ? undefined : this.#nodes.get(node);
    if (state !== undefined) state.ids--;
  }

  #claim(id: string, node: string, claimed: number, nonce?: string): void {
    const epoch = Math.min(claimed, MAX_PACKED_EPOCH);
    const local = this.#local.get(id);
    if (local !== undefined) {
      if (!newer(epoch, node, local, this.nodeName)) {
        // Ours is newer: say so again (the other node may have missed it during an outage).
        this.#change({ op: "announce", id, epoch: local });
        return;
      }
      this.#local.delete(id);
      this.#handler.onReplaced(id, nonce);
    }
    const entry = this.#remote.get(id);
    if (entry !== undefined) {
      const holder = this.#slots[packedSlot(entry)] ?? "";
      if (!newer(epoch, node, packedEpoch(entry), holder)) return;
    }
    const state = this.#touch(node, null, this.#leaseMs);
    if (state === null) return;
    if (entry !== undefined) this.#uncount(entry);
    this.#remote.set(id, epoch * NODE_SLOTS + state.slot);
    state.ids++;
  }

  #release(id: string, node: string, claimed: number): void {
    const entry = this.#remote.get(id);
    if (entry === undefined) return;
    const epoch = Math.min(claimed, MAX_PACKED_EPOCH);
    if (this.#slots[packedSlot(entry)] !== node || packedEpoch(entry) !== epoch) return;
    this.#remote.delete(id);
    this.#uncount(entry);
  }

  // --- receiving ------------------------------------------------------------------------------

  #receive(payload: Uint8Array, toHolder = false): void {
    if (this.#closed) return;
    const result = decodeBusMessage(payload);
    if (!result.ok) {
      this.#invalid++;
      this.#log.warn("invalid cluster message dropped: {error}", { error: result.error });
      return;
    }
    const message = result.message;
    try {
      if (message.type === "relay") {
        this.#handler.onRelay(message.from, message.to, message.payload, message.fromId);
        return;
      }
      if (message.node === this.nodeName) {
        if (message.type === "lease" && message.incarnation !== this.incarnation) {
          this.#log.error("another cluster node uses the name {node}", { node: this.nodeName });
        }
        return; // our own broadcast
      }
      switch (message.type) {
        case "lease":
          this.#touch(message.node, message.incarnation, message.leaseMs);
          return;
        case "announce":
          this.#claim(message.id, message.node, message.epoch, message.nonce);
          return;
        case "withdraw":
          this.#release(message.id, message.node, message.epoch);
          return;
        case "presence":
          for (const [id, epoch] of message.entries) this.#claim(id, message.node, epoch);
          return;
        case "changes":
          for (const change of message.changes) {
            if (change.op === "announce") {
              this.#claim(change.id, message.node, change.epoch, change.nonce);
            } else {
              this.#release(change.id, message.node, change.epoch);
            }
          }
          return;
        case "sync":
          this.#touch(message.node, null, this.#leaseMs);
          this.#publishPresence();
          return;
        default:
          this.#handler.onDelivery(message, toHolder);
      }
    } catch (error) {
      this.#log.error("handling cluster message {type} failed: {error}", {
        type: message.type,
        error: String(error),
      });
    }
  }

  /** Queues a presence change; sent within {@linkcode CHANGES_FLUSH_MS} with the others. */
  #change(change: PresenceChange): void {
    if (this.#closed) return;
    this.#changes.push(change);
    if (this.#changes.length >= MAX_CHANGES_BATCH) {
      this.#flushChanges();
    } else if (this.#changesTimer === undefined) {
      this.#changesTimer = this.#runtime.setTimer(() => {
        this.#changesTimer = undefined;
        this.#flushChanges();
      }, CHANGES_FLUSH_MS);
    }
  }

  /** Sends the queued presence changes (one bus message). */
  #flushChanges(): void {
    if (this.#changesTimer !== undefined) {
      this.#runtime.clearTimer(this.#changesTimer);
      this.#changesTimer = undefined;
    }
    if (this.#changes.length === 0) return;
    const changes = this.#changes;
    this.#changes = [];
    // Not connected: dropped like any publish; the presence is published again on reconnect.
    if (
      !this.#transport.publish(this.#subjects.presence, encodeBusChanges(this.nodeName, changes))
    ) {
      this.#dropped++;
    }
  }

  #publish(subject: string, message: BusControl): boolean {
    // Whatever this node said about its IDs goes first (a peer-left or an introduction must not
    // overtake the announcement of the ID it concerns).
    this.#flushChanges();
    const ok = this.#transport.publish(subject, encodeBusControl(message));
    if (!ok) this.#dropped++;
    return ok;
  }
}
