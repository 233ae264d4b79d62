/**
 * What the server knows about a registered client: its ID and key, the STUN credentials it was
 * issued, its candidates, the peers it was introduced to, its measured round trip and its relay
 * quota. Created once registration succeeds; it lives as long as its connection is registered.
 *
 * @module
 */
import { type Address, type Candidate, isCandidateHost } from "../../shared/signaling/mod.ts";
import { normalizeHost } from "../host_address.ts";
import type { RegistryEntry, StunEndpoint } from "../registry.ts";
import type { TokenBucket } from "../token_bucket.ts";
import type { ClientConnection } from "./connection.ts";

/** What a {@linkcode RegisteredClient} is made from. */
export interface RegistrationFacts {
  /** The peer ID (40 hex digits). */
  id: string;
  /** The Ed25519 public key, base64 as received. */
  publicKey: string;
  /** Issued STUN username. */
  stunUsername: string;
  /** Issued STUN password. */
  stunPassword: string;
  /** Local UDP addresses from `register`. */
  localAddresses: Address[];
  /** The client-chosen nonce echoed in `registered` and `bye replaced`, if it sent one. */
  registrationNonce: string | undefined;
  /** Round trip estimated at registration (challenge sent to register received), ms. */
  rttMs: number;
  /** When the server last pinged (or should count as having pinged), ms. */
  lastPingAt: number;
  /** It declared the `consent` feature: it answers `introduce-request`s itself. */
  consent?: boolean;
}

/** An `introduce-request` waiting for the callee's answer. */
export interface PendingIntroduction {
  /** Who asked (null: a caller on another node of the cluster, answered through `remote`). */
  readonly caller: RegisteredClient | null;
  /** For a caller on another node: receives the callee's answer. */
  readonly remote?: (accept: boolean) => void;
  /** The caller's group for fair shedding: its network (IPv4 /24, IPv6 /48) or `node:<name>`. */
  readonly group: string;
  /** The caller's `connect.requestId`. */
  readonly requestId: string | undefined;
  /** A refusal is not sent before this time (ms), so declining looks like being offline. */
  readonly notBefore: number;
  /** The timer that declines on the callee's behalf when it does not answer. */
  readonly timer: number;
}

const NO_PEERS: ReadonlyMap<string, RegisteredClient> = new Map();
const NO_IDS: ReadonlySet<string> = new Set();
const NO_REQUESTS: ReadonlyMap<string, PendingIntroduction> = new Map();

/**
 * A registered client.
 *
 * @example
 * ```ts
 * import type { ClientConnection } from "./connection.ts";
 * declare const connection: ClientConnection;
 * const client = new RegisteredClient(connection, {
 *   id: "ab".repeat(20),
 *   publicKey: "A".repeat(43) + "=",
 *   stunUsername: "u",
 *   stunPassword: "p",
 *   localAddresses: [{ host: "192.168.1.2", port: 4000 }],
 *   registrationNonce: undefined,
 *   rttMs: 12,
 *   lastPingAt: 0,
 * }, () => {});
 * console.log(client.candidates().length); // 1
 * ```
 */
export class RegisteredClient implements RegistryEntry {
  /** The connection it registered on. */
  readonly connection: ClientConnection;
  /** The peer ID. */
  readonly id: string;
  /** The public key (base64). */
  readonly publicKey: string;
  /** Issued STUN username. */
  readonly stunUsername: string;
  /** Issued STUN password. */
  readonly stunPassword: string;
  /** The client-chosen registration nonce, if any. */
  readonly registrationNonce: string | undefined;
  /** Local UDP addresses. */
  localAddresses: Address[];
  /** The public UDP endpoint seen over STUN. */
  publicEndpoint: Address | null = null;
  /** It answers `introduce-request`s itself (declared `consent`). */
  readonly consent: boolean;
  /** Round-trip estimate (ms): from registration, then smoothed over heartbeat pongs. */
  rttMs: number;
  /** Heartbeat RTT samples taken so far. */
  rttSamples = 0;
  /** When the server last sent `ping` (ms). */
  lastPingAt: number;
  /** Relayed-bytes rate limit (made on first relay). */
  relayBucket: TokenBucket | null = null;
  /** The last relay destination (skips the ID lookup for runs of frames to one peer). */
  lastTarget: RegisteredClient | null = null;
  /** Relay frames this client sent that were forwarded. */
  relayedFrames = 0;
  /** Relay payload bytes this client sent that were forwarded. */
  relayedBytes = 0;
  /** Relay frames of this client that were refused. */
  refusedFrames = 0;
  /** Introductions involving this client. */
  introductions = 0;
  /** When its candidates were last passed on to its peers (ms; -Infinity: never). */
  candidatesSentAt = -Infinity;
  /** A coalesced candidates update is scheduled. */
  candidatesPending = false;
  /** The cluster presence epoch of this session (see `cluster/cluster_node.ts`). */
  clusterEpoch = 0;
  readonly #onStunBinding: (client: RegisteredClient, endpoint: Address) => void;
  // Made on first use and dropped when empty: most registered clients are idle, and three empty
  // collections and a typed array cost an idle client about 1 KiB of heap (the capacity figure).
  #idBytes: Uint8Array | null = null;
  #peers: Map<string, RegisteredClient> | null = null;
  #calledBy: Set<string> | null = null;
  #pendingRequests: Map<string, PendingIntroduction> | null = null;

  /**
   * @param connection The connection it registered on.
   * @param facts What registration established.
   * @param onStunBinding Called when an authenticated STUN Binding for it arrives.
   */
  constructor(
    connection: ClientConnection,
    facts: RegistrationFacts,
    onStunBinding: (client: RegisteredClient, endpoint: Address) => void,
  ) {
    this.connection = connection;
    this.id = facts.id;
    this.publicKey = facts.publicKey;
    this.stunUsername = facts.stunUsername;
    this.stunPassword = facts.stunPassword;
    this.registrationNonce = facts.registrationNonce;
    this.localAddresses = facts.localAddresses;
    this.rttMs = facts.rttMs;
    this.lastPingAt = facts.lastPingAt;
    this.consent = facts.consent ?? false;
    this.#onStunBinding = onStunBinding;
  }

  /** The peer ID's 20 bytes (written into relayed frames; made on first use). */
  get idBytes(): Uint8Array {
    return this.#idBytes ??= Uint8Array.fromHex(this.id);
  }

  /** Clients this one was introduced to, by ID, oldest first. */
  get peers(): ReadonlyMap<string, RegisteredClient> {
    return this.#peers ?? NO_PEERS;
  }

  /** IDs of the peers that asked for the introduction (they called this client). */
  get calledBy(): ReadonlySet<string> {
    return this.#calledBy ?? NO_IDS;
  }

  /** Introductions asked of this client and not yet answered, by caller ID. */
  get pendingRequests(): ReadonlyMap<string, PendingIntroduction> {
    return this.#pendingRequests ?? NO_REQUESTS;
  }

  /** Records an introduction asked of this client by `callerId`, waiting for its answer. */
  addPendingRequest(callerId: string, request: PendingIntroduction): void {
    (this.#pendingRequests ??= new Map()).set(callerId, request);
  }

  /** Removes the pending request of `callerId`; returns it (undefined when there was none). */
  takePendingRequest(callerId: string): PendingIntroduction | undefined {
    const pending = this.#pendingRequests;
    const request = pending?.get(callerId);
    if (request === undefined) return undefined;
    pending!.delete(callerId);
    if (pending!.size === 0) this.#pendingRequests = null;
    return request;
  }

  /** Records the introduction to `peer` (`theyAsked`: the peer called this client). */
  link(peer: RegisteredClient, theyAsked: boolean): void {
    (this.#peers ??= new Map()).set(peer.id, peer);
    if (theyAsked) (this.#calledBy ??= new Set()).add(peer.id);
    else this.#forgetCaller(peer.id);
  }

  /** Forgets the introduction to `peerId`. */
  unlink(peerId: string): void {
    const peers = this.#peers;
    if (peers !== null) {
      peers.delete(peerId);
      if (peers.size === 0) this.#peers = null;
    }
    this.#forgetCaller(peerId);
    if (this.lastTarget?.id === peerId) this.lastTarget = null;
  }

  /** Forgets every introduction at once (the peers are told by the caller). */
  unlinkAll(): void {
    this.#peers = null;
    this.#calledBy = null;
    this.lastTarget = null;
  }

  #forgetCaller(peerId: string): void {
    const calledBy = this.#calledBy;
    if (calledBy === null) return;
    calledBy.delete(peerId);
    if (calledBy.size === 0) this.#calledBy = null;
  }

  /** It never took part in an introduction nor relayed anything (eviction under load). */
  get idle(): boolean {
    return this.introductions === 0 && this.relayedFrames === 0 && this.peers.size === 0;
  }

  /** {@inheritDoc RegistryEntry.onStunBinding} */
  onStunBinding(endpoint: StunEndpoint): void {
    this.#onStunBinding(this, { host: normalizeHost(endpoint.hostname), port: endpoint.port });
  }

  /**
   * The candidates offered to peers: the public endpoint first when known, then the local
   * addresses, without duplicates, and without addresses that may never be probed
   * (unspecified, broadcast, multicast: `isCandidateHost`).
   */
  candidates(): Candidate[] {
    const candidates: Candidate[] = [];
    const seen = new Set<string>();
    const add = (address: Address, kind: Candidate["kind"]) => {
      const key = `${address.host}|${address.port}`;
      if (seen.has(key) || !isCandidateHost(address.host)) return; // never a packet cannon
      seen.add(key);
      candidates.push({ host: address.host, port: address.port, kind });
    };
    if (this.publicEndpoint !== null) add(this.publicEndpoint, "public");
    for (const address of this.localAddresses) add(address, "local");
    return candidates;
  }

  /**
   * Takes one heartbeat RTT sample: the first replaces the registration estimate, later ones
   * are smoothed (a quarter weight each, as RFC 6298 smooths, only faster), so one late `pong`
   * from a busy client does not skew the next punch schedule.
   */
  addRttSample(rttMs: number): void {
    this.rttMs = this.rttSamples === 0 ? rttMs : this.rttMs + (rttMs - this.rttMs) / 4;
    this.rttSamples++;
  }

  /** The ID shortened for logs (first 12 hex digits). */
  get shortId(): string {
    return this.id.slice(0, 12);
  }
}
