/**
 * The TURN server (RFC 8656) as a library: it is handed STUN messages and ChannelData that
 * arrived on the STUN port (UDP or TCP, see `stun_service.ts`) with the client's
 * {@linkcode ClientLink}, and answers through the link. It owns the allocations (one per
 * five-tuple), long-term authentication, quotas (per user and total), bandwidth limits (per
 * allocation and total), the relay port range and the peer address policy.
 *
 * Methods: Allocate (UDP relays; REQUESTED-ADDRESS-FAMILY, EVEN-PORT, RESERVATION-TOKEN),
 * Refresh, CreatePermission, ChannelBind; Send indications and ChannelData from clients; Data
 * indications and ChannelData to clients. DONT-FRAGMENT is refused with 420 (Deno cannot set
 * the DF bit), as RFC 8656 section 7.2 asks of such servers.
 *
 * @module
 */
import type { DatagramSocket, Runtime, TimerId } from "../../shared/runtime/mod.ts";
import {
  addAlternateServer,
  addErrorCode,
  addFingerprint,
  addLifetime,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addNonce,
  addPasswordAlgorithms,
  addRealm,
  addReservationToken,
  addUnknownAttributes,
  addXorMappedAddress,
  addXorRelayedAddress,
  AttributeType,
  decodeChannelData,
  getChannelNumber,
  getData,
  getEvenPort,
  getLifetime,
  getRequestedAddressFamily,
  getRequestedTransport,
  getReservationToken,
  getXorPeerAddresses,
  isValidChannelNumber,
  PROTOCOL_UDP,
  StunClass,
  type StunMessage,
  StunMessageWriter,
  TurnAttributeType,
  TurnMethod,
} from "../../shared/stun/mod.ts";
import { encodeMessageType } from "../../shared/stun/header.ts";
import { TokenBucket } from "../token_bucket.ts";
import { Allocation } from "./allocation.ts";
import { authenticate, OFFERED_ALGORITHMS } from "./auth.ts";
import type { ClientLink } from "./client_link.ts";
import type { TurnCredentialSource } from "./credentials.ts";
import { NonceIssuer } from "./nonce.ts";
import { PeerPolicy } from "./peer_policy.ts";
import { bindRelay, DEFAULT_RELAY_PORTS, type PortRange } from "./relay_ports.ts";

/** Default allocation lifetime (RFC 8656 section 3.2). */
export const DEFAULT_LIFETIME_S = 600;
/** Longest allocation lifetime granted. */
export const MAX_LIFETIME_S = 3600;
/** How long a nonce stays fresh (coturn's default stale-nonce: 600 s). */
export const NONCE_LIFETIME_MS = 600_000;
/** How long an EVEN-PORT reservation is held (RFC 8656 section 14.9: about 30 s). */
export const RESERVATION_MS = 30_000;

/** Options of {@linkcode TurnServer}. */
export interface TurnServerOptions {
  /** Injected clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** REALM. */
  realm: string;
  /** Where passwords come from. */
  credentials: TurnCredentialSource;
  /** Which peers may be relayed to (default: loopback, private, link-local denied). */
  peerPolicy?: PeerPolicy;
  /** Relay port range (default 49152-65535). */
  relayPorts?: PortRange;
  /**
   * The relay address for a client link and family: default the address the request arrived at
   * when of that family, else undefined (440).
   */
  relayAddressFor?: (link: ClientLink, family: "IPv4" | "IPv6") => string | undefined;
  /**
   * The address to advertise in XOR-RELAYED-ADDRESS for a relay bound to `bound` (default: `bound`
   * itself). Behind a 1:1 NAT (cloud hosts) the public address is advertised while the private one
   * is bound, as coturn's `--external-ip`.
   */
  advertisedAddressFor?: (bound: string) => string;
  /** Most allocations per user (default 64). */
  userQuota?: number;
  /** Most allocations in total (default 10,000). */
  totalQuota?: number;
  /** Relayed payload bytes per second per allocation, both directions (default: no limit). */
  allocationBytesPerSecond?: number;
  /** Relayed payload bytes per second over all allocations (default: no limit). */
  totalBytesPerSecond?: number;
  /** A budget shared with other relays of the server (the signaling relay), if any. */
  sharedBudget?: { take(bytes: number): boolean };
  /** Where to send clients (300) when full or draining. */
  alternateServer?: { hostname: string; port: number };
  /** SOFTWARE of answers (default none). */
  software?: string;
  /** Refused requests (method, code, why), for debug logs. */
  onRefused?: (event: { method: number; code: number; reason: string }) => void;
}

/** Counters of a {@linkcode TurnServer}. */
export interface TurnStats {
  /** Allocations now. */
  allocations: number;
  /** Allocations made since start. */
  allocationsCreated: number;
  /** Requests answered with success. */
  requestsOk: number;
  /** Requests answered with an error, by code. */
  errors: Record<number, number>;
  /** Packets and payload bytes relayed client → peer. */
  toPeerPackets: number;
  /** Payload bytes client → peer. */
  toPeerBytes: number;
  /** Packets relayed peer → client. */
  toClientPackets: number;
  /** Payload bytes peer → client. */
  toClientBytes: number;
  /** Dropped packets by reason. */
  dropped: {
    noAllocation: number;
    noPermission: number;
    noChannel: number;
    bandwidth: number;
    malformed: number;
  };
}

/** Comprehension-required attributes understood in TURN requests. */
const COMPREHENDED: ReadonlySet<number> = new Set<number>([
  AttributeType.Username,
  AttributeType.MessageIntegrity,
  AttributeType.MessageIntegritySha256,
  AttributeType.Realm,
  AttributeType.Nonce,
  AttributeType.PasswordAlgorithm,
  AttributeType.XorMappedAddress,
  TurnAttributeType.ChannelNumber,
  TurnAttributeType.Lifetime,
  TurnAttributeType.XorPeerAddress,
  TurnAttributeType.Data,
  TurnAttributeType.RequestedAddressFamily,
  TurnAttributeType.EvenPort,
  TurnAttributeType.RequestedTransport,
  TurnAttributeType.ReservationToken,
]);

/** The comprehension-required set a decoder should use for TURN messages. */
export const TURN_COMPREHENDED: ReadonlySet<number> = COMPREHENDED;

/** The TURN methods this server handles. */
export const TURN_METHODS: ReadonlySet<number> = new Set<number>([
  TurnMethod.Allocate,
  TurnMethod.Refresh,
  TurnMethod.Send,
  TurnMethod.CreatePermission,
  TurnMethod.ChannelBind,
]);

function familyOf(hostname: string): "IPv4" | "IPv6" {
  return hostname.includes(":") ? "IPv6" : "IPv4";
}

/**
 * The TURN server.
 *
 * @example
 * ```ts
 * import { TurnServer } from "./turn_server.ts";
 * import { StaticUsers } from "./credentials.ts";
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const turn = new TurnServer({
 *   runtime: systemRuntime,
 *   realm: "example.org",
 *   credentials: new StaticUsers([{ name: "alice", password: "pw" }]),
 * });
 * console.log(turn.stats.allocations); // 0
 * await turn.close();
 * ```
 */
export class TurnServer {
  /** Live counters. */
  readonly stats: TurnStats = {
    allocations: 0,
    allocationsCreated: 0,
    requestsOk: 0,
    errors: {},
    toPeerPackets: 0,
    toPeerBytes: 0,
    toClientPackets: 0,
    toClientBytes: 0,
    dropped: { noAllocation: 0, noPermission: 0, noChannel: 0, bandwidth: 0, malformed: 0 },
  };

  readonly #runtime: Runtime;
  readonly #options: TurnServerOptions;
  readonly #nonces: NonceIssuer;
  readonly #policy: PeerPolicy;
  readonly #ports: PortRange;
  readonly #software: string | undefined;
  readonly #allocations = new Map<string, Allocation>();
  readonly #perUser = new Map<string, number>();
  readonly #reservations = new Map<
    string,
    { socket: DatagramSocket; timer: TimerId }
  >();
  readonly #total: TokenBucket | undefined;
  readonly #buckets = new WeakMap<Allocation, TokenBucket>();
  readonly #writer = new StunMessageWriter(1500);
  #draining = false;
  #why: string | undefined;
  #closed = false;

  /**
   * Creates the server (it binds nothing until an Allocate arrives).
   *
   * @example
   * ```ts
   * import { TurnServer } from "./turn_server.ts";
   * import { StaticUsers } from "./credentials.ts";
   * import { systemRuntime } from "../../shared/runtime/mod.ts";
   * new TurnServer({ runtime: systemRuntime, realm: "r", credentials: new StaticUsers([]) });
   * ```
   */
  constructor(options: TurnServerOptions) {
    this.#runtime = options.runtime;
    this.#options = options;
    this.#nonces = new NonceIssuer(
      options.runtime.randomBytes(32),
      NONCE_LIFETIME_MS,
      () => options.runtime.now(),
    );
    this.#policy = options.peerPolicy ?? new PeerPolicy();
    this.#ports = options.relayPorts ?? DEFAULT_RELAY_PORTS;
    this.#software = options.software === "" ? undefined : options.software;
    const total = options.totalBytesPerSecond;
    this.#total = total === undefined
      ? undefined
      : new TokenBucket(total, total, () => options.runtime.now());
  }

  /** Whether it sends new allocations away (300) instead of serving them. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Starts draining: new Allocates get 300 with ALTERNATE-SERVER (when one is configured);
   * existing allocations carry on.
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * const stop = (turn: TurnServer) => turn.drain();
   * ```
   */
  drain(): void {
    this.#draining = true;
  }

  /**
   * Handles a STUN message of a TURN method (see {@linkcode TURN_METHODS}) from a client. The
   * message should be decoded with {@linkcode TURN_COMPREHENDED}.
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * import type { ClientLink } from "./client_link.ts";
   * import type { StunMessage } from "../../shared/stun/mod.ts";
   * const pass = (turn: TurnServer, m: StunMessage, link: ClientLink) => turn.handleMessage(m, link);
   * ```
   */
  handleMessage(message: StunMessage, link: ClientLink): void {
    if (this.#closed) return;
    const method = message.method;
    if (message.messageClass === StunClass.Indication) {
      if (method === TurnMethod.Send) this.#send(message, link);
      return;
    }
    if (message.messageClass !== StunClass.Request) return;
    const verdict = authenticate(message, link.client.hostname, {
      realm: this.#options.realm,
      credentials: this.#options.credentials,
      nonces: this.#nonces,
      wallClock: () => this.#runtime.wallClock(),
    });
    const withFingerprint = message.has(AttributeType.Fingerprint);
    if (!verdict.ok) {
      this.#why = verdict.reason;
      this.#error(message, link, verdict.code, withFingerprint, undefined);
      return;
    }
    const reply = { key: verdict.key, sha256: verdict.sha256, withFingerprint };
    // DONT-FRAGMENT is not in TURN_COMPREHENDED: an Allocate asking for it gets 420, as RFC 8656
    // section 7.2 asks of a server that cannot set the DF bit.
    const unknown = message.unknownRequired;
    if (unknown.length > 0) {
      this.#error(message, link, 420, withFingerprint, reply, unknown);
      return;
    }
    switch (method) {
      case TurnMethod.Allocate:
        return this.#allocate(message, link, verdict.username, reply);
      case TurnMethod.Refresh:
        return this.#refresh(message, link, reply);
      case TurnMethod.CreatePermission:
        return this.#createPermission(message, link, reply);
      case TurnMethod.ChannelBind:
        return this.#channelBind(message, link, reply);
      default:
        this.#error(message, link, 400, withFingerprint, reply);
    }
  }

  /**
   * Handles a ChannelData message from the client of five-tuple `linkKey`.
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * const pass = (turn: TurnServer, bytes: Uint8Array) => turn.handleChannelData(bytes, "udp 192.0.2.1 5 198.51.100.1 3478");
   * ```
   */
  handleChannelData(bytes: Uint8Array, linkKey: string): void {
    const allocation = this.#allocations.get(linkKey);
    if (allocation === undefined) {
      this.stats.dropped.noAllocation++;
      return;
    }
    let channel: number, data: Uint8Array;
    try {
      ({ channel, data } = decodeChannelData(bytes));
    } catch {
      this.stats.dropped.malformed++;
      return;
    }
    const now = this.#runtime.now();
    const binding = allocation.peers.channel(channel, now);
    if (binding === undefined) {
      this.stats.dropped.noChannel++;
      return;
    }
    if (!allocation.peers.permitted(binding.peer.hostname, now)) {
      this.stats.dropped.noPermission++;
      return;
    }
    if (!this.#admit(allocation, data.length)) {
      this.stats.dropped.bandwidth++;
      return;
    }
    allocation.sendToPeer(data, binding.peer);
    this.stats.toPeerPackets++;
    this.stats.toPeerBytes += data.length;
  }

  /**
   * Whether the five-tuple has an allocation.
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * const has = (turn: TurnServer) => turn.hasAllocation("udp 192.0.2.1 5 198.51.100.1 3478");
   * ```
   */
  hasAllocation(linkKey: string): boolean {
    return this.#allocations.has(linkKey);
  }

  /**
   * The client's connection is gone (TCP): its allocation is freed (RFC 8656 section 3.1).
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * const lost = (turn: TurnServer) => turn.linkClosed("tcp 192.0.2.1 5 198.51.100.1 3478");
   * ```
   */
  linkClosed(linkKey: string): void {
    const allocation = this.#allocations.get(linkKey);
    if (allocation !== undefined) this.#free(allocation);
  }

  /**
   * Frees every allocation and reservation. Idempotent.
   *
   * @example
   * ```ts
   * import type { TurnServer } from "./turn_server.ts";
   * const stop = (turn: TurnServer) => turn.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#allocations.values()].map((a) => this.#free(a));
    for (const [token, reservation] of this.#reservations) {
      this.#runtime.clearTimer(reservation.timer);
      reservation.socket.close();
      this.#reservations.delete(token);
    }
    await Promise.all(closing);
  }

  #free(allocation: Allocation): Promise<void> {
    if (this.#allocations.get(allocation.link.key) === allocation) {
      this.#allocations.delete(allocation.link.key);
      this.stats.allocations--;
      const count = (this.#perUser.get(allocation.username) ?? 1) - 1;
      if (count <= 0) this.#perUser.delete(allocation.username);
      else this.#perUser.set(allocation.username, count);
    }
    return allocation.close();
  }

  #admit(allocation: Allocation, bytes: number): boolean {
    const bucket = this.#buckets.get(allocation);
    if (bucket !== undefined && !bucket.take(bytes)) return false;
    if (this.#total !== undefined && !this.#total.take(bytes)) return false;
    return this.#options.sharedBudget?.take(bytes) !== false;
  }

  #allocate(
    message: StunMessage,
    link: ClientLink,
    username: string,
    reply: Reply,
  ): void {
    const fp = reply.withFingerprint;
    const existing = this.#allocations.get(link.key);
    if (existing !== undefined) {
      if (existing.transactionId === message.transactionId.toHex()) {
        link.send(existing.response);
      } else {
        this.#error(message, link, 437, fp, reply);
      }
      return;
    }
    let transport: number | undefined;
    let family: "IPv4" | "IPv6" | undefined;
    let even: { reserveNext: boolean } | undefined;
    let token: Uint8Array | undefined;
    let lifetimeS: number | undefined;
    try {
      transport = getRequestedTransport(message);
      family = getRequestedAddressFamily(message);
      even = getEvenPort(message);
      token = getReservationToken(message);
      lifetimeS = getLifetime(message);
    } catch {
      return this.#error(message, link, 400, fp, reply);
    }
    if (transport === undefined) return this.#error(message, link, 400, fp, reply);
    if (transport !== PROTOCOL_UDP) return this.#error(message, link, 442, fp, reply);
    if (token !== undefined && (even !== undefined || family !== undefined)) {
      return this.#error(message, link, 400, fp, reply);
    }
    const full = this.stats.allocations >= (this.#options.totalQuota ?? 10_000);
    if ((full || this.#draining) && this.#options.alternateServer !== undefined) {
      return this.#error(message, link, 300, fp, reply);
    }
    if (full) return this.#error(message, link, 486, fp, reply);
    if ((this.#perUser.get(username) ?? 0) >= (this.#options.userQuota ?? 64)) {
      return this.#error(message, link, 486, fp, reply);
    }

    let socket;
    let reservedToken: Uint8Array | undefined;
    if (token !== undefined) {
      const reservation = this.#reservations.get(token.toHex());
      if (reservation === undefined) return this.#error(message, link, 508, fp, reply);
      this.#reservations.delete(token.toHex());
      this.#runtime.clearTimer(reservation.timer);
      socket = reservation.socket;
    } else {
      const wanted = family ?? "IPv4";
      const hostname = (this.#options.relayAddressFor ?? defaultRelayAddress)(link, wanted);
      if (hostname === undefined) return this.#error(message, link, 440, fp, reply);
      const bound = bindRelay(
        this.#runtime,
        hostname,
        this.#ports,
        even !== undefined,
        even?.reserveNext === true,
      );
      if (bound === undefined) return this.#error(message, link, 508, fp, reply);
      socket = bound.socket;
      if (bound.reserved !== undefined) {
        reservedToken = this.#runtime.randomBytes(8);
        const reservedSocket = bound.reserved;
        const key = reservedToken.toHex();
        const timer = this.#runtime.setTimer(() => {
          this.#reservations.delete(key);
          reservedSocket.close();
        }, RESERVATION_MS);
        this.#reservations.set(key, { socket: reservedSocket, timer });
      }
    }
    const lifetime = Math.max(
      DEFAULT_LIFETIME_S,
      Math.min(lifetimeS ?? DEFAULT_LIFETIME_S, MAX_LIFETIME_S),
    );

    // The success response, kept for retransmissions.
    const writer = this.#start(message, StunClass.SuccessResponse);
    const bound = socket.addr.hostname.startsWith("::ffff:")
      ? socket.addr.hostname.slice(7)
      : socket.addr.hostname;
    addXorRelayedAddress(writer, {
      hostname: this.#options.advertisedAddressFor?.(bound) ?? bound,
      port: socket.addr.port,
    });
    addLifetime(writer, lifetime);
    if (reservedToken !== undefined) addReservationToken(writer, reservedToken);
    addXorMappedAddress(writer, link.client);
    this.#finish(writer, reply);
    const response = writer.bytes().slice();

    const allocation = new Allocation(
      this.#runtime,
      link,
      username,
      socket,
      lifetime * 1000,
      message.transactionId.toHex(),
      response,
      {
        admit: (a, bytes) => this.#admit(a, bytes),
        relayedToClient: (bytes) => {
          this.stats.toClientPackets++;
          this.stats.toClientBytes += bytes;
        },
        droppedFromPeer: (reason) => {
          if (reason === "bandwidth") this.stats.dropped.bandwidth++;
          else if (reason === "error") this.stats.dropped.malformed++;
          else this.stats.dropped.noPermission++;
        },
        expired: (a) => {
          this.#free(a);
        },
      },
    );
    const rate = this.#options.allocationBytesPerSecond;
    if (rate !== undefined) {
      this.#buckets.set(allocation, new TokenBucket(rate, rate, () => this.#runtime.now()));
    }
    this.#allocations.set(link.key, allocation);
    this.#perUser.set(username, (this.#perUser.get(username) ?? 0) + 1);
    this.stats.allocations++;
    this.stats.allocationsCreated++;
    this.stats.requestsOk++;
    link.send(response);
  }

  #refresh(message: StunMessage, link: ClientLink, reply: Reply): void {
    const fp = reply.withFingerprint;
    let lifetimeS: number | undefined, family: "IPv4" | "IPv6" | undefined;
    try {
      lifetimeS = getLifetime(message);
      family = getRequestedAddressFamily(message);
    } catch {
      return this.#error(message, link, 400, fp, reply);
    }
    const allocation = this.#allocations.get(link.key);
    if (allocation === undefined) return this.#error(message, link, 437, fp, reply);
    if (family !== undefined && family !== familyOf(allocation.relayed.hostname)) {
      return this.#error(message, link, 443, fp, reply);
    }
    const desired = Math.min(lifetimeS ?? DEFAULT_LIFETIME_S, MAX_LIFETIME_S);
    if (desired === 0) this.#free(allocation);
    else allocation.refresh(desired * 1000);
    const writer = this.#start(message, StunClass.SuccessResponse);
    addLifetime(writer, desired);
    this.#finish(writer, reply);
    this.stats.requestsOk++;
    link.send(writer.bytes());
  }

  /** Peers of a CreatePermission/ChannelBind checked: an error code, or the peers. */
  #checkPeers(
    message: StunMessage,
    allocation: Allocation,
  ): number | { hostname: string; port: number }[] {
    let peers;
    try {
      peers = getXorPeerAddresses(message);
    } catch {
      return 400;
    }
    if (peers.length === 0) return 400;
    const family = familyOf(allocation.relayed.hostname);
    for (const peer of peers) {
      if (peer.family !== family) return 443;
      if (!this.#policy.allows(peer.hostname)) return 403;
    }
    return peers.map((p) => ({ hostname: p.hostname, port: p.port }));
  }

  #createPermission(message: StunMessage, link: ClientLink, reply: Reply): void {
    const fp = reply.withFingerprint;
    const allocation = this.#allocations.get(link.key);
    if (allocation === undefined) return this.#error(message, link, 437, fp, reply);
    const peers = this.#checkPeers(message, allocation);
    if (typeof peers === "number") {
      this.#why = "peer-address";
      return this.#error(message, link, peers, fp, reply);
    }
    const now = this.#runtime.now();
    if (!allocation.peers.hasRoomFor(peers.map((p) => p.hostname), now)) {
      return this.#error(message, link, 508, fp, reply);
    }
    for (const peer of peers) allocation.peers.permit(peer.hostname, now);
    this.#success(message, link, reply);
  }

  #channelBind(message: StunMessage, link: ClientLink, reply: Reply): void {
    const fp = reply.withFingerprint;
    const allocation = this.#allocations.get(link.key);
    if (allocation === undefined) return this.#error(message, link, 437, fp, reply);
    let channel: number | undefined;
    try {
      channel = getChannelNumber(message);
    } catch {
      return this.#error(message, link, 400, fp, reply);
    }
    if (channel === undefined || !isValidChannelNumber(channel)) {
      this.#why = `channel ${channel}`;
      return this.#error(message, link, 400, fp, reply);
    }
    const peers = this.#checkPeers(message, allocation);
    if (typeof peers === "number") {
      this.#why = "peer-address";
      return this.#error(message, link, peers, fp, reply);
    }
    if (peers.length !== 1) return this.#error(message, link, 400, fp, reply);
    const refusal = allocation.peers.bindChannel(channel, peers[0], this.#runtime.now());
    this.#why = refusal;
    if (refusal === "too-many") return this.#error(message, link, 508, fp, reply);
    if (refusal !== undefined) return this.#error(message, link, 400, fp, reply);
    this.#success(message, link, reply);
  }

  #send(message: StunMessage, link: ClientLink): void {
    const allocation = this.#allocations.get(link.key);
    if (allocation === undefined) {
      this.stats.dropped.noAllocation++;
      return;
    }
    let peers;
    try {
      peers = getXorPeerAddresses(message);
    } catch {
      this.stats.dropped.malformed++;
      return;
    }
    const data = getData(message);
    if (peers.length !== 1 || data === undefined) {
      this.stats.dropped.malformed++;
      return;
    }
    const peer = peers[0];
    if (!allocation.peers.permitted(peer.hostname, this.#runtime.now())) {
      this.stats.dropped.noPermission++;
      return;
    }
    if (!this.#admit(allocation, data.length)) {
      this.stats.dropped.bandwidth++;
      return;
    }
    allocation.sendToPeer(data, peer);
    this.stats.toPeerPackets++;
    this.stats.toPeerBytes += data.length;
  }

  #start(message: StunMessage, stunClass: 2 | 3): StunMessageWriter {
    const writer = this.#writer;
    writer.startAnswer(encodeMessageType(message.method, stunClass), message.raw);
    return writer;
  }

  #finish(writer: StunMessageWriter, reply: Reply | undefined): void {
    if (this.#software !== undefined) {
      writer.addAttribute(AttributeType.Software, new TextEncoder().encode(this.#software));
    }
    if (reply !== undefined) {
      if (reply.sha256) addMessageIntegritySha256(writer, reply.key);
      else addMessageIntegrity(writer, reply.key);
    }
    if (reply?.withFingerprint !== false) addFingerprint(writer);
  }

  #success(message: StunMessage, link: ClientLink, reply: Reply): void {
    const writer = this.#start(message, StunClass.SuccessResponse);
    this.#finish(writer, reply);
    this.stats.requestsOk++;
    link.send(writer.bytes());
  }

  #error(
    message: StunMessage,
    link: ClientLink,
    code: number,
    withFingerprint: boolean,
    reply: Reply | undefined,
    unknown?: readonly number[],
  ): void {
    try {
      this.#options.onRefused?.({ method: message.method, code, reason: this.#why ?? "" });
    } catch {
      // a logger must not break the server
    }
    this.#why = undefined;
    const writer = this.#start(message, StunClass.ErrorResponse);
    addErrorCode(writer, code);
    if (unknown !== undefined) addUnknownAttributes(writer, unknown);
    if (code === 401 || code === 438) {
      addRealm(writer, this.#options.realm);
      addNonce(writer, this.#nonces.issue(link.client.hostname));
      addPasswordAlgorithms(writer, OFFERED_ALGORITHMS);
    }
    if (code === 300 && this.#options.alternateServer !== undefined) {
      addAlternateServer(writer, this.#options.alternateServer);
    }
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
    // Challenges are not signed (the client has no key yet); other errors are.
    const signed = code === 401 || code === 438 ? undefined : reply;
    if (this.#software !== undefined) {
      writer.addAttribute(AttributeType.Software, new TextEncoder().encode(this.#software));
    }
    if (signed !== undefined) {
      if (signed.sha256) addMessageIntegritySha256(writer, signed.key);
      else addMessageIntegrity(writer, signed.key);
    }
    if (withFingerprint) addFingerprint(writer);
    link.send(writer.bytes());
  }
}

/** How an answer to an authenticated request is signed. */
interface Reply {
  key: Uint8Array;
  sha256: boolean;
  withFingerprint: boolean;
}

function defaultRelayAddress(link: ClientLink, family: "IPv4" | "IPv6"): string | undefined {
  const local = link.server.hostname;
  if (familyOf(local) !== family) return undefined;
  if (local === "0.0.0.0" || local === "::") return undefined;
  return local;
}
