/**
 * The signaling server's cross-node behaviour: `connect` to a client on another node, the
 * introduction both sides receive, relay frames between nodes, `peer-left` across nodes, the
 * newest-session rule across nodes, and what happens when a node or the bus is lost. The server
 * calls it only where a peer is not local, so a single server (with {@linkcode LocalBus}) never
 * takes these paths.
 *
 * An introduction across nodes takes one round trip on the bus: the requester's node sends
 * `introduce` to the target's node, which introduces the target at once (`role: "responder"`) and
 * answers `introduced` with the target's key, candidates and punch lead; the requester's node then
 * introduces the requester (`role: "initiator"`), with the lead shortened by half the bus round
 * trip so both punch at the same instant. Consent before addresses (issue 11) holds across nodes: the
 * target's node runs the same consent exchange with its local callee (`introduce-request`, at
 * most 2 s) before it introduces anyone or sends candidates back; "not online", "declined" and
 * "not answered" all come back as `unknown-peer`, which the requester's node sends at the same
 * random time (0.5-2 s after the request) as a single server does. Relay frames to an ID the
 * sender was not introduced to get `relay-not-brokered` whether it is online anywhere or not. Relay frames keep the per-client limits: the sender's
 * rate quota is charged on its node before the frame is published, the receiver's queue limit is
 * checked on the receiver's node, and a frame refused there is answered to the sender with the
 * same `error` as on one node (`relay-queue-full`, `relay-not-brokered`, `peer-offline`). Nodes
 * only ever forward the payload, which is end-to-end ciphertext between the clients.
 *
 * Without the bus (NATS unreachable), `connect` to an ID that is not on this node and relay frames
 * to a client on another node get `error {code: "cluster-unavailable"}`; local clients are served
 * as usual; when the bus returns, presence is re-synchronised and clients connect again.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import type {
  Candidate,
  ErrorCode,
  PeerLeftReason,
  ServerMessage,
} from "../../shared/signaling/mod.ts";
import { punchPlan } from "../punch_schedule.ts";
import type { Runtime, TimerId } from "../../shared/runtime/mod.ts";
import type { ClusterBus, ClusterDelivery, ClusterHandler } from "./bus.ts";
import type { BusControlOf } from "./messages.ts";
import { CONSENT_TIMEOUT_MS, REFUSAL_MIN_MS } from "../signaling/control.ts";

/** What the router needs of a registered local client. */
export interface ClusterClient {
  /** Peer ID (40 hex digits). */
  readonly id: string;
  /** Ed25519 public key (base64), as in `introduce`. */
  readonly publicKey: string;
  /** Latest heartbeat RTT in ms (-1 unknown). */
  readonly rttMs: number;
  /** This session's presence epoch (set by {@linkcode ClusterRouter.registered}). */
  clusterEpoch: number;
  /** The candidates `introduce` offers for this client. */
  candidates(): Candidate[];
}

/** The server side of the router: local clients and how to talk to them. */
export interface LocalClients<C extends ClusterClient> {
  /** The registered local client with `id`, if any. */
  get(id: string): C | undefined;
  /** Whether `client` may be brokered with one more peer (the per-client limit). */
  canBroker(client: C): boolean;
  /** Sends a control message to `client` (bounded: a client that does not read is cut off). */
  send(client: C, message: ServerMessage): void;
  /** Queues a relay frame from `from` (20 bytes) to `client`; an error code when refused. */
  deliverRelay(client: C, from: Uint8Array, payload: Uint8Array): ErrorCode | null;
  /**
   * A newer session of `client`'s ID registered on another node: close this one ("replaced"),
   * echoing the newer registration's `nonce` in the `bye`.
   */
  replace(client: C, nonce?: string): void;
  /** The server's clock in ms since the epoch (`serverTime`, `punchAt`). */
  now(): number;
  /**
   * A caller on node `node` asks to be introduced to the local `callee`: runs the callee's
   * consent exchange (issue 11) and calls `answer` once with whether to introduce. Without it,
   * every introduction is accepted.
   */
  askConsent?(callee: C, callerId: string, node: string, answer: (accept: boolean) => void): void;
}

/** Counters of a {@linkcode ClusterRouter}. */
export interface ClusterRouterStats {
  /** Introductions across nodes completed (counted on the requester's node). */
  introductions: number;
  /** Relay frames published to other nodes. */
  relayedOut: number;
  /** Relay frames from other nodes queued to local clients. */
  relayedIn: number;
  /** Requests refused with `cluster-unavailable`. */
  unavailable: number;
}

/** Extra lead for the bus hop of a cross-node introduction (ms). */
const BUS_LEAD_MS = 50;
/** Introductions waiting for their answer, at most (the oldest is answered `unknown-peer`). */
const MAX_PENDING = 10_000;
/** An introduction sent to a known node and not answered in this long gets `unknown-peer`. */
const ANSWER_TIMEOUT_MS = 15_000;
/**
 * An introduction for an ID not (yet) in the directory is sent to whichever node holds it; with
 * no answer in this long and still no node in the directory, no node holds it: `unknown-peer`
 * (a node that holds it announces it within a bus round trip, then the wait goes on). As short
 * as the earliest refusal, so that "not online" is not told apart from "declined" by timing.
 */
const HOLDER_TIMEOUT_MS = REFUSAL_MIN_MS;

interface Pending {
  sentAt: number;
  /** An `unknown-peer` answer is not sent before this (server clock, ms). */
  notBefore: number;
  timer: TimerId;
}

const REFUSALS: Partial<Record<ErrorCode, string>> = {
  "relay-queue-full": "the receiver's relay queue is full; frame not forwarded",
  "relay-not-brokered": "relay only to a peer you were introduced to; frame not forwarded",
  "peer-offline": "that peer is not online; frame not forwarded",
};

/**
 * Cross-node signaling for one server.
 *
 * @example
 * ```ts
 * import { LocalBus } from "./bus.ts";
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 *
 * interface Client {
 *   id: string;
 *   publicKey: string;
 *   rttMs: number;
 *   clusterEpoch: number;
 *   candidates(): [];
 * }
 * const clients = new Map<string, Client>();
 * const router = new ClusterRouter<Client>(new LocalBus(), {
 *   get: (id) => clients.get(id),
 *   canBroker: () => true,
 *   send: (client, message) => console.log(client.id, message.type),
 *   deliverRelay: () => null,
 *   replace: () => {},
 *   now: () => Date.now(),
 * }, systemRuntime);
 * console.log(router.isOnline("ab".repeat(20))); // false
 * ```
 */
export class ClusterRouter<C extends ClusterClient> implements ClusterHandler {
  readonly #bus: ClusterBus;
  readonly #local: LocalClients<C>;
  readonly #log: Logger;
  /** Remote peers each local client is brokered with: local ID -> remote ID -> node. */
  readonly #remotePeers = new Map<string, Map<string, string>>();
  /** Introductions sent and not yet answered: `from|to` -> when sent, and the answer deadline. */
  readonly #pending = new Map<string, Pending>();
  readonly #runtime: Pick<Runtime, "setTimer" | "clearTimer"> & Partial<Pick<Runtime, "random">>;
  readonly #stats: ClusterRouterStats = {
    introductions: 0,
    relayedOut: 0,
    relayedIn: 0,
    unavailable: 0,
  };

  /**
   * Handles the bus's deliveries from now on. `runtime` gives the timers of the answer deadlines
   * and (`random`) the random time of an `unknown-peer` answer (without it: at once).
   */
  constructor(
    bus: ClusterBus,
    local: LocalClients<C>,
    runtime: Pick<Runtime, "setTimer" | "clearTimer"> & Partial<Pick<Runtime, "random">>,
    logger?: Logger,
  ) {
    this.#bus = bus;
    this.#local = local;
    this.#runtime = runtime;
    this.#log = logger ?? getLogger(["stun-server", "cluster"]);
    bus.setHandler(this);
  }

  /** The bus. */
  get bus(): ClusterBus {
    return this.#bus;
  }

  /** Current counters. */
  get stats(): ClusterRouterStats {
    return { ...this.#stats };
  }

  /** Whether `id` is registered on another node (as far as this node knows). */
  isOnline(id: string): boolean {
    return this.#bus.locate(id) !== undefined;
  }

  /** How many remote peers `id` is brokered with. */
  remotePeerCount(id: string): number {
    return this.#remotePeers.get(id)?.size ?? 0;
  }

  /** `client` registered here: tell the cluster (an older session elsewhere is replaced). */
  registered(client: C, registrationNonce?: string): void {
    client.clusterEpoch = this.#bus.announce(client.id, registrationNonce);
  }

  /**
   * `a` and `b` were just introduced on this node: forget any pairing of the two across nodes
   * (one of them was on another node before, e.g. until that node died), so that the old node's
   * loss or a late `peer-left` from it does not end the new pairing.
   */
  brokeredLocally(a: C, b: C): void {
    this.#forgetPair(a.id, b.id);
    this.#forgetPair(b.id, a.id);
  }

  #forgetPair(local: string, remote: string): void {
    const peers = this.#remotePeers.get(local);
    if (peers === undefined || !peers.delete(remote)) return;
    if (peers.size === 0) this.#remotePeers.delete(local);
  }

  /** `client`'s candidates changed: pass them to its peers on other nodes. */
  candidatesChanged(client: C): void {
    const peers = this.#remotePeers.get(client.id);
    if (peers === undefined) return;
    const candidates = client.candidates();
    for (const [peer, node] of peers) {
      this.#bus.send(node, {
        type: "candidates",
        node: this.#bus.nodeName,
        from: client.id,
        to: peer,
        candidates,
      });
    }
  }

  /**
   * `client`'s session ended (closed, timed out, replaced): withdraw it and tell its remote peers
   * `peer-left {reason}`.
   */
  unregistered(client: C, reason: PeerLeftReason): void {
    this.#bus.withdraw(client.id, client.clusterEpoch);
    const peers = this.#remotePeers.get(client.id);
    if (peers === undefined) return;
    this.#remotePeers.delete(client.id);
    for (const [peer, node] of peers) {
      this.#bus.send(node, {
        type: "peer-left",
        node: this.#bus.nodeName,
        from: client.id,
        to: peer,
        reason,
      });
    }
  }

  /**
   * `client` asked to connect to `peer`, which is not a local client. Returns false when `peer`
   * is not on another node either (the server answers `unknown-peer` as on one node); otherwise
   * the request is handled here (introduced across nodes, or refused with an `error`:
   * `cluster-unavailable`, or `rate-limited` when `client` has its maximum of peers).
   */
  connect(client: C, peer: string, requestId?: string): boolean {
    if (!this.#bus.clustered) return false;
    const node = this.#bus.locate(peer);
    if (!this.#bus.available) {
      this.#unavailable(client, peer, requestId);
      return true;
    }
    const already = this.#remotePeers.get(client.id)?.has(peer) ?? false;
    if (!already && !this.#local.canBroker(client)) {
      this.#local.send(client, {
        type: "error",
        code: "rate-limited",
        message: "too many brokered peers",
        peer,
        ...(requestId !== undefined ? { requestId } : {}),
      });
      return true;
    }
    const request: ClusterDelivery = {
      type: "introduce",
      node: this.#bus.nodeName,
      from: client.id,
      to: peer,
      publicKey: client.publicKey,
      candidates: client.candidates(),
      rttMs: client.rttMs,
      ...(requestId !== undefined ? { requestId } : {}),
    };
    // An ID not in the directory may have registered elsewhere an instant ago (its `announce` is
    // on the way): ask whichever node holds it; silence means nobody does.
    const sent = node === undefined
      ? this.#bus.sendToHolder(request)
      : this.#bus.send(node, request);
    if (!sent) {
      this.#unavailable(client, peer, requestId);
      return true;
    }
    this.#await(
      client.id,
      peer,
      requestId,
      node === undefined ? HOLDER_TIMEOUT_MS : ANSWER_TIMEOUT_MS,
    );
    return true;
  }

  /** The node to relay to when `client` is brokered with `peer` on another node. */
  relayNode(client: C, peer: string): string | undefined {
    return this.#remotePeers.get(client.id)?.get(peer);
  }

  /**
   * Publishes a relay frame (the sender's quota already charged) to `node`. Returns
   * `cluster-unavailable` when the bus cannot take it (the server refuses the frame with it).
   */
  forwardRelay(
    node: string,
    from: Uint8Array,
    to: Uint8Array,
    payload: Uint8Array,
  ): ErrorCode | null {
    if (!this.#bus.relay(node, from, to, payload)) {
      this.#stats.unavailable++;
      return "cluster-unavailable";
    }
    this.#stats.relayedOut++;
    return null;
  }

  // --- ClusterHandler ---------------------------------------------------------------------------

  /** {@inheritDoc ClusterHandler.onDelivery} */
  onDelivery(message: ClusterDelivery, toHolder = false): void {
    if (toHolder) {
      // Only the node holding `to` answers a message sent to the holder.
      if (message.type === "introduce" && this.#local.get(message.to) !== undefined) {
        this.#introduceHere(message);
      }
      return;
    }
    switch (message.type) {
      case "introduce":
        this.#introduceHere(message);
        return;
      case "introduced":
        this.#introduced(message);
        return;
      case "refused": {
        const entry = this.#settle(`${message.from}|${message.to}`);
        const send = () => {
          const client = this.#local.get(message.from);
          if (client === undefined) return;
          this.#local.send(client, {
            type: "error",
            code: message.code,
            message: message.message,
            peer: message.to,
            ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
            ...(message.bytes !== undefined ? { bytes: message.bytes } : {}),
          });
        };
        // Offline and declined look the same, at the same random time as on one node.
        if (message.code === "unknown-peer" && entry !== undefined) {
          this.#later(entry.notBefore, send);
        } else {
          send();
        }
        return;
      }
      case "candidates": {
        if (this.#remotePeers.get(message.to)?.get(message.from) !== message.node) return;
        const client = this.#local.get(message.to);
        if (client === undefined) return;
        this.#local.send(client, {
          type: "candidates",
          from: message.from,
          candidates: message.candidates,
        });
        return;
      }
      case "peer-left": {
        const peers = this.#remotePeers.get(message.to);
        if (peers === undefined || peers.get(message.from) !== message.node) return;
        peers.delete(message.from);
        if (peers.size === 0) this.#remotePeers.delete(message.to);
        const client = this.#local.get(message.to);
        if (client !== undefined) {
          this.#local.send(client, {
            type: "peer-left",
            peer: message.from,
            reason: message.reason,
          });
        }
        return;
      }
    }
  }

  /** {@inheritDoc ClusterHandler.onRelay} */
  onRelay(from: string, to: string, payload: Uint8Array, fromId?: Uint8Array): void {
    const client = this.#local.get(to);
    const node = this.#remotePeers.get(to)?.get(from);
    let code: ErrorCode | null;
    // Not brokered and gone look the same (issue 11: no online/offline for strangers).
    if (client === undefined || node === undefined) code = "relay-not-brokered";
    else code = this.#local.deliverRelay(client, fromId ?? Uint8Array.fromHex(from), payload);
    if (code === null) {
      this.#stats.relayedIn++;
      return;
    }
    const back = node ?? this.#bus.locate(from);
    if (back === undefined) return;
    this.#bus.send(back, {
      type: "refused",
      node: this.#bus.nodeName,
      from,
      to,
      code,
      message: REFUSALS[code] ?? code,
      bytes: payload.length,
    });
  }

  /** {@inheritDoc ClusterHandler.onReplaced} */
  onReplaced(id: string, nonce?: string): void {
    const client = this.#local.get(id);
    if (client !== undefined) this.#local.replace(client, nonce);
  }

  /** {@inheritDoc ClusterHandler.onNodeLost} */
  onNodeLost(node: string): void {
    for (const [id, peers] of this.#remotePeers) {
      const client = this.#local.get(id);
      for (const [peer, at] of peers) {
        if (at !== node) continue;
        peers.delete(peer);
        if (client !== undefined) {
          this.#local.send(client, { type: "peer-left", peer, reason: "timeout" });
        }
      }
      if (peers.size === 0) this.#remotePeers.delete(id);
    }
  }

  /** {@inheritDoc ClusterHandler.onAvailability} */
  onAvailability(available: boolean): void {
    this.#log.info("cluster bus {state}", { state: available ? "available" : "unavailable" });
  }

  // --- introductions ----------------------------------------------------------------------------

  #introduceHere(message: BusControlOf<"introduce">): void {
    const target = this.#local.get(message.to);
    const refuse = (code: ErrorCode, text: string) =>
      this.#bus.send(message.node, {
        type: "refused",
        node: this.#bus.nodeName,
        from: message.from,
        to: message.to,
        code,
        message: text,
        ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
      });
    if (target === undefined) {
      refuse("unknown-peer", "no client with that ID is online");
      return;
    }
    const already = this.#remotePeers.get(target.id)?.has(message.from) ?? false;
    if (already || this.#local.askConsent === undefined) {
      this.#introduceTarget(message, target, refuse);
      return;
    }
    // Consent before addresses (issue 11): the callee answers first, as for a local caller.
    this.#local.askConsent(target, message.from, message.node, (accept) => {
      const still = this.#local.get(message.to);
      if (!accept || still !== target) {
        refuse("unknown-peer", "no client with that ID is online");
        return;
      }
      this.#introduceTarget(message, target, refuse);
    });
  }

  /** Introduces the local `target` to the remote caller and answers its node `introduced`. */
  #introduceTarget(
    message: BusControlOf<"introduce">,
    target: C,
    refuse: (code: ErrorCode, text: string) => void,
  ): void {
    const already = this.#remotePeers.get(target.id)?.has(message.from) ?? false;
    if (!already && !this.#local.canBroker(target)) {
      refuse("rate-limited", "the peer has too many brokered peers");
      return;
    }
    let peers = this.#remotePeers.get(target.id);
    if (peers === undefined) this.#remotePeers.set(target.id, peers = new Map());
    peers.set(message.from, message.node);
    const now = this.#local.now();
    const plan = punchPlan(message.rttMs, target.rttMs);
    const leadMs = Math.round(plan.leadMs + BUS_LEAD_MS);
    this.#local.send(target, {
      type: "introduce",
      peer: message.from,
      publicKey: message.publicKey,
      candidates: message.candidates,
      role: "responder",
      punchAt: now + leadMs,
      serverTime: now,
      punchInMs: Math.round(plan.punchInMsB + BUS_LEAD_MS),
    });
    this.#bus.send(message.node, {
      type: "introduced",
      node: this.#bus.nodeName,
      from: message.from,
      to: target.id,
      publicKey: target.publicKey,
      candidates: target.candidates(),
      leadMs,
      ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
    });
  }

  #introduced(message: BusControlOf<"introduced">): void {
    const sentAt = this.#settle(`${message.from}|${message.to}`)?.sentAt;
    const client = this.#local.get(message.from);
    if (client === undefined) {
      // The requester left meanwhile: undo the other side's brokering.
      this.#bus.send(message.node, {
        type: "peer-left",
        node: this.#bus.nodeName,
        from: message.from,
        to: message.to,
        reason: "disconnected",
      });
      return;
    }
    let peers = this.#remotePeers.get(client.id);
    if (peers === undefined) this.#remotePeers.set(client.id, peers = new Map());
    peers.set(message.to, message.node);
    const now = this.#local.now();
    const halfTrip = sentAt === undefined ? 0 : Math.max(0, (now - sentAt) / 2);
    const remaining = Math.max(0, Math.round(message.leadMs - halfTrip));
    const oneWay = client.rttMs > 0 ? client.rttMs / 2 : 0;
    this.#stats.introductions++;
    this.#local.send(client, {
      type: "introduce",
      peer: message.to,
      publicKey: message.publicKey,
      candidates: message.candidates,
      role: "initiator",
      punchAt: now + remaining,
      serverTime: now,
      punchInMs: Math.max(0, Math.round(remaining - oneWay)),
      ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
    });
  }

  /**
   * Waits for the answer to `from`'s introduction to `to`: with none within `timeoutMs`, `from`
   * gets `error {code: "unknown-peer"}` (its request is never left unanswered).
   */
  #await(from: string, to: string, requestId: string | undefined, timeoutMs: number): void {
    const key = `${from}|${to}`;
    this.#settle(key);
    const now = this.#local.now();
    const notBefore = this.#runtime.random === undefined
      ? now
      : now + REFUSAL_MIN_MS + this.#runtime.random() * (CONSENT_TIMEOUT_MS - REFUSAL_MIN_MS);
    const wait = (ms: number): TimerId => {
      const timer = this.#runtime.setTimer(() => {
        const entry = this.#pending.get(key);
        if (entry?.timer !== timer) return;
        if (ms === HOLDER_TIMEOUT_MS && this.#bus.locate(to) !== undefined) {
          // Its node announced it meanwhile: that node is answering (maybe after its consent).
          entry.timer = wait(ANSWER_TIMEOUT_MS);
          return;
        }
        this.#pending.delete(key);
        this.#noAnswer(from, to, requestId, notBefore);
      }, ms);
      return timer;
    };
    this.#pending.set(key, { sentAt: now, notBefore, timer: wait(timeoutMs) });
    if (this.#pending.size > MAX_PENDING) {
      const [oldest, entry] = this.#pending.entries().next().value!;
      this.#runtime.clearTimer(entry.timer);
      this.#pending.delete(oldest);
      const [f, t] = oldest.split("|");
      this.#noAnswer(f, t, undefined, entry.notBefore);
    }
  }

  /** The answer to an introduction came: stop waiting; returns the wait (when it was sent). */
  #settle(key: string): Pending | undefined {
    const entry = this.#pending.get(key);
    if (entry === undefined) return undefined;
    this.#runtime.clearTimer(entry.timer);
    this.#pending.delete(key);
    return entry;
  }

  /** Runs `action` at `notBefore` (server clock), or now when that has passed. */
  #later(notBefore: number, action: () => void): void {
    const wait = notBefore - this.#local.now();
    if (wait > 0) this.#runtime.setTimer(action, wait);
    else action();
  }

  #noAnswer(from: string, to: string, requestId: string | undefined, notBefore: number): void {
    this.#later(notBefore, () => {
      const client = this.#local.get(from);
      if (client === undefined) return;
      this.#local.send(client, {
        type: "error",
        code: "unknown-peer",
        message: "no client with that ID is online",
        peer: to,
        ...(requestId !== undefined ? { requestId } : {}),
      });
    });
  }

  #unavailable(client: C, peer: string, requestId?: string): void {
    this.#stats.unavailable++;
    this.#local.send(client, {
      type: "error",
      code: "cluster-unavailable",
      message:
        "the server cluster's bus is unreachable; only clients on this server can be reached",
      peer,
      ...(requestId !== undefined ? { requestId } : {}),
    });
  }
}
