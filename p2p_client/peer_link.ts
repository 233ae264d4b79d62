/**
 * One peer, put together from parts that each have one job: the {@linkcode SecureLink}
 * (handshake and session), the {@linkcode PathManager} (candidates, probing, path choice and
 * the typed path state), and the {@linkcode Outbox} (our messages, their IDs, outcomes and the
 * reliable channel). This module only wires them: it seals and routes what they send, opens and
 * dispatches what arrives, runs their timers from one deadline timer, and reports events.
 *
 * The link never dead-ends: it is never torn down by the server's news alone (`peer-left` only
 * makes the relay unusable; a proven direct path carries on), a stalled channel re-handshakes and
 * sends its unacknowledged messages again on a fresh one (the receiver drops duplicates by
 * message ID), and a link that lost its peer asks to be introduced again for as long as it has
 * messages to send or had a session.
 *
 * @module
 */
import type { Identity } from "../shared/identity/mod.ts";
import type { HandshakeResponse } from "../shared/peer/handshake.ts";
import { encodePunch } from "../shared/peer/packet.ts";
import type { SecureSession } from "../shared/peer/session.ts";
import type { Runtime } from "../shared/runtime/mod.ts";
import { DeadlineTimer } from "./deadline_timer.ts";
import type { ClientEvent, PeerState, PeerSummary } from "./events.ts";
import type { LinkFrameCodec, MessageChannelFactory } from "./link_frames.ts";
import { type MessageOutcome, Outbox, type OutboxMessage } from "./outbox.ts";
import {
  PathManager,
  type PathManagerOptions,
  type Route,
  type UdpAddress,
} from "./path_manager.ts";
import { SecureLink } from "./secure_link.ts";
import { BufferPool } from "./files/buffer_pool.ts";
import { PmtuProber, probeAnswer, probeFrame, TRANSPORT_OVERHEAD_BYTES } from "./pmtu/prober.ts";
import { FILE_MESSAGE_UID } from "./outbox.ts";
import { isLoopback } from "./local_addresses.ts";
import { type RelayId, RelayPaths, type RelayPolicy, type TurnRelayInfo } from "./relay_paths.ts";
import { LinkTraversal, type LocalFacts } from "./traversal/link_traversal.ts";
import type { BirthdayEngine } from "./traversal/birthday_engine.ts";

/** Buffers DATA packets are sealed into while the socket sends them (largest packet each). */
const SEAL_POOL = new BufferPool(65_536, 64);

/**
 * Where a packet came from: a UDP address, the rendezvous server's relay, or one of our TURN
 * allocations (`relay`: its ID), from the peer's address `address` as the TURN server saw it.
 */
export type PacketSource =
  | { kind: "udp"; address: UdpAddress }
  | { kind: "relay" }
  | { kind: "turn"; relay: number; address: UdpAddress };

/** Message texts: UTF-8, and when a peer sends invalid UTF-8, shown with replacement marks. */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const LENIENT_UTF8 = new TextDecoder();

/** Largest packet sent through a TURN relay (RFC 8656: 1500-byte MTU less IP, UDP, TURN). */
const TURN_MAX_PACKET_BYTES = 1_400;
/** Most peer addresses probed through one TURN allocation (its relayed addresses first). */
const MAX_TURN_TARGETS = 16;

/** What a {@linkcode PeerLink} needs from the client around it. */
export interface PeerLinkContext {
  /** Our identity. */
  identity: Identity;
  /** Clock, timers and randomness. */
  runtime: Runtime;
  /**
   * Sends a datagram on the shared UDP socket; may return a promise that settles once the socket
   * is done with `bytes` (then a sealed DATA packet's buffer is reused: issue 14).
   */
  sendUdp: (bytes: Uint8Array, to: UdpAddress) => void | Promise<unknown>;
  /**
   * An authenticated packet (handshake or session) came from this UDP address: it answers, so it
   * may get more than probes (`probe_budget.ts`).
   */
  udpAnswered?: (from: UdpAddress) => void;
  /** Whether a candidate address of the peer may be probed at all (default: any). */
  acceptCandidate?: (address: UdpAddress) => boolean;
  /** Sends a payload through the relay; false when not connected to a server. */
  sendRelay: (peer: string, bytes: Uint8Array) => boolean;
  /**
   * Reserves a relay frame to `peer` in the signaling write queue and returns its payload space
   * (`length` bytes) to fill before yielding, or undefined when the relay cannot take it now: a
   * DATA packet is sealed straight into it (issue 14). Optional: without it, `sendRelay`.
   */
  reserveRelay?: (peer: string, length: number) => Uint8Array | undefined;
  /** Takes back the space just reserved with `reserveRelay` (sealing failed). */
  cancelRelay?: (space: Uint8Array) => void;
  /** Reports an event. */
  emit: (event: ClientEvent) => void;
  /** Allocates a session index and routes packets carrying it to `link`. */
  allocateIndex: (link: PeerLink) => number;
  /** Stops routing `index`. */
  releaseIndex: (index: number) => void;
  /** Makes the reliable channel. */
  createChannel: MessageChannelFactory;
  /** The frame codec. */
  frames: LinkFrameCodec;
  /** True the first time a message ID arrives from `peer` (duplicates are dropped). */
  firstTime?: (peer: string, uid: string) => boolean;
  /**
   * Probing `peer` gets no answer: `fresh` when a direct path just left a probe unanswered, else
   * a probe round while the direct path is in doubt or lost. Our own NAT mapping may have changed:
   * the client checks it with STUN (rate-limited, with backoff) and tells its peers a new public
   * address in-band.
   */
  onPathTrouble?: (peer: string, fresh: boolean) => void;
  /** Asks the server to introduce the peer again (it left, or the session stalled). */
  requestIntroduction?: (peer: string) => void;
  /** Our current UDP candidates, to tell the peer in-band (a late public endpoint). */
  localCandidates?: () => UdpAddress[];
  /** The outbox changed (for persistence). */
  onOutboxChange?: () => void;
  /** A message got its outcome (for persistence: recorded at once). */
  onResolved?: (id: number) => void;
  /** Time allowed for each message's outcome, ms (default 30,000). */
  deliveryTimeoutMs?: number;
  /** Path timing overrides. */
  pathOptions?: PathManagerOptions;
  /** Never use direct paths (diagnostics / tests of the relay). */
  relayOnly?: boolean;
  /** Which relays may carry packets (`--relay`, default `any`). */
  relayPolicy?: RelayPolicy;
  /** Our TURN allocations usable now (none without TURN servers). */
  turnRelays?: () => readonly TurnRelayInfo[];
  /** Sends a datagram through TURN allocation `relay` to the peer's address `to`. */
  sendTurn?: (relay: number, bytes: Uint8Array, to: UdpAddress) => boolean;
  /** Asks every TURN allocation for permissions for these peer IP addresses. */
  permitTurn?: (hosts: readonly string[]) => void;
  /** Our TURN relayed addresses, to tell the peer in-band (RELAY_ADDRESSES). */
  localRelayAddresses?: () => UdpAddress[];
  /** A file message from this peer (`shared/files/codec.ts`). */
  onFileMessage?: (peer: string, bytes: Uint8Array) => void;
  /** The channel to this peer has room for bulk file data again. */
  onFileRoom?: (peer: string) => void;
  /** The channel to this peer was replaced: file transfers offer again. */
  onFileReset?: (peer: string) => void;
  /** An enveloped bulk file message was acknowledged: its buffer may be reused (issue 14). */
  onFileReleased?: (peer: string, wire: Uint8Array) => void;
  /** Debug logging. */
  log?: (message: string) => void;
  /** Hard-NAT traversal (`traversal/`): our NAT facts and mapping, and birthday punching. */
  traversal?: { local: () => LocalFacts; birthday?: BirthdayEngine };
  /**
   * Our UDP socket's receive buffer as the kernel reports it, when we enlarged it: told to the
   * peer (PARAMETERS) with each answer to a path-size probe, so its bulk data in flight on a
   * short path may fill it (issue 14). Undefined: the peer assumes Linux's default.
   */
  udpReceiveBuffer?: number;
}

/** An introduction from the server, with `punchAt` already converted to local time. */
export interface Introduction {
  /** The peer's Ed25519 public key. */
  publicKey: Uint8Array;
  /** Its candidate UDP addresses (`kind` as the server labelled them). */
  candidates: (UdpAddress & { kind?: "public" | "local" })[];
  /** Our role. */
  role: "initiator" | "responder";
  /** Local time to start punching. */
  punchAt: number;
}

/** Default time for a message's outcome. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000;

/**
 * The state of one peer.
 *
 * @example
 * ```ts
 * // Created by the client when it connects to a peer or is introduced to one:
 * // const link = new PeerLink(peerId, context);
 * // link.introduce(introduction);
 * ```
 */
export class PeerLink {
  /** The peer's ID. */
  readonly peer: string;
  readonly #ctx: PeerLinkContext;
  readonly #path: PathManager;
  readonly #secure: SecureLink;
  readonly #outbox: Outbox;
  readonly #timer: DeadlineTimer;
  #closed = false;
  /** Closed for good at client exit: inert (no timers, no packets, no events). */
  #exited = false;
  #hadSession = false;
  /** The peer's UDP receive buffer from its PARAMETERS frame in this session (for the log). */
  #peerReceiveBuffer: number | undefined;
  #peerOffline = false;
  #lastState: PeerState | undefined;
  #lastPath: string | null = null;
  /** Where packets mainly go (the direct address, else the relay): its change resets the RTT. */
  #lastPrimary: string | null = null;
  #rejected = 0;
  #candidatesSentFor = "";
  /** The packet size the current route carries (RFC 8899), probed with 0xE5 packets. */
  #pmtu = new PmtuProber();
  #pmtuRoute = "";
  /** The relay paths (server relay, TURN allocations): validation, RTT, choice. */
  readonly #relays = new RelayPaths();
  /** The server brokered the pair and has not said the peer left: its relay can reach it. */
  #serverUp = false;
  /** The peer's TURN relayed addresses (RELAY_ADDRESSES). */
  #peerRelayAddresses: UdpAddress[] = [];
  #relayAddressesSentFor = "";
  /** NAT facts exchange, the mapped side's passivity, birthday punching, how/why. */
  readonly #traversal: LinkTraversal | undefined;
  #lastWhy = "";

  /**
   * Creates the link of `peer` (state `connecting`).
   *
   * @example
   * ```ts
   * // const link = new PeerLink(peerId, context);
   * ```
   */
  constructor(peer: string, context: PeerLinkContext) {
    this.peer = peer;
    const runtime = context.runtime;
    const traversal = context.traversal && !context.relayOnly
      ? new LinkTraversal({
        runtime,
        local: context.traversal.local,
        birthday: context.traversal.birthday,
        send: (body) => {
          const frame = context.frames.encodeTraversal?.(body);
          if (frame) this.#sendSealed(frame, undefined, true);
        },
        probe: (addresses) => this.addCandidates(addresses, true),
        changed: () => this.#afterChange(),
        log: context.log,
      })
      : undefined;
    this.#traversal = traversal;
    // The side holding a port mapping sends only where the peer was heard from, at first.
    const ctx: PeerLinkContext = traversal
      ? {
        ...context,
        // The send's promise goes back: a pooled buffer is reused only once it was sent.
        sendUdp: (bytes, to) =>
          traversal.allowSend(to, runtime.now()) ? context.sendUdp(bytes, to) : undefined,
      }
      : context;
    this.#ctx = ctx;
    this.#timer = new DeadlineTimer(runtime, () => this.#runTimers());
    this.#path = new PathManager(runtime.now(), ctx.pathOptions);
    this.#secure = new SecureLink({
      peer,
      identity: ctx.identity,
      runtime,
      allocateIndex: () => ctx.allocateIndex(this),
      releaseIndex: (index) => ctx.releaseIndex(index),
      sendInit: (packet) => {
        ctx.sendRelay(peer, packet);
        if (!ctx.relayOnly) {
          for (const target of this.#path.candidates) ctx.sendUdp(packet, target);
        }
        // Through each TURN allocation too: to the validated target, else to every address.
        for (const relay of this.#turnList()) {
          const target = this.#relays.target(relay.id);
          for (const to of target ? [target] : this.#turnTargets()) {
            ctx.sendTurn?.(relay.id, packet, to);
          }
        }
        this.#afterChange();
      },
      onSession: (session, reason) => this.#onSession(session, reason),
      log: ctx.log,
    });
    this.#outbox = new Outbox({
      now: () => runtime.now(),
      createChannel: ctx.createChannel,
      sendFrame: (frame) => this.#sendSealed(frame),
      sendFrameParts: (head, payload) => this.#sendSealed(head, undefined, false, payload),
      onFileMessage: (bytes) => ctx.onFileMessage?.(peer, bytes),
      onFileRoom: () => ctx.onFileRoom?.(peer),
      onFileReset: () => ctx.onFileReset?.(peer),
      onFileReleased: (wire) => ctx.onFileReleased?.(peer, wire),
      deliver: (uid, bytes) => this.#deliver(uid, bytes),
      onOutcome: (id, outcome, reason, code) => this.#outcome(id, outcome, reason, code),
      onChannelFailed: (reason) => {
        ctx.log?.(`channel to ${peer} failed (${reason}): re-handshaking`);
        this.#secure.initiate(`channel failed: ${reason}`);
        ctx.requestIntroduction?.(peer);
      },
      onChange: ctx.onOutboxChange,
    });
    this.#afterChange();
  }

  /** The peer's public key, once introduced. */
  get publicKey(): Uint8Array | undefined {
    return this.#secure.publicKey;
  }

  /** The current state. */
  get state(): PeerState {
    if (this.#closed) return "disconnected";
    const path = this.#path.state;
    return path === "none" ? "connecting" : path;
  }

  /** Messages sent and without an outcome yet. */
  get pendingMessages(): number {
    return this.#outbox.pending;
  }

  /** Packets from this peer that failed authentication or were malformed. */
  get rejectedPackets(): number {
    return this.#rejected;
  }

  /** True while the link should be kept alive: messages wait, or it had a session. */
  get wanted(): boolean {
    return !this.#closed && (this.#outbox.pending > 0 || this.#hadSession);
  }

  /** True once a session existed (kept across restarts: the peer is introduced again). */
  get hadSession(): boolean {
    return this.#hadSession;
  }

  /**
   * Marks the link as one that had a session (restored after a restart): it is kept alive and
   * introduced again.
   *
   * @example
   * ```ts
   * // link.rememberSession();
   * ```
   */
  rememberSession(): void {
    this.#hadSession = true;
  }

  /** True when the server said the peer left and it has not been introduced again. */
  get peerOffline(): boolean {
    return this.#peerOffline;
  }

  /** Unresolved messages (for persistence). */
  outboxMessages(limit = Infinity): OutboxMessage[] {
    return this.#outbox.messages(limit);
  }

  /**
   * Ends the messages `ids` now (see {@linkcode Outbox.resolve}).
   *
   * @example
   * ```ts
   * // link.resolveNow(new Set([3]), "not kept at exit");
   * ```
   */
  resolveNow(ids: ReadonlySet<number>, reason: string): void {
    this.#outbox.resolve(ids, reason);
  }

  /** A row for `list`. */
  summary(): PeerSummary {
    // On a direct path the keepalive probes measure the network round trip itself; the channel's
    // smoothed RTT also counts the receiver's delayed acknowledgements, so it serves the relay only.
    const relay = this.#relays.chosen;
    const rtt = this.#path.state === "direct"
      ? this.#path.probeRttMs ?? this.#outbox.srttMs
      : this.#path.state === "relayed" && relay !== undefined
      ? this.#relays.rttMs(relay) ?? this.#outbox.srttMs
      : this.#outbox.srttMs;
    return {
      peer: this.peer,
      state: this.state,
      path: this.#closed ? null : this.#path.path,
      rttMs: rtt === undefined ? null : Math.round(rtt * 10) / 10,
      ...this.#explain(),
    };
  }

  /** How the direct path was found, or why the peer is relayed. */
  #explain(): { how?: PeerSummary["how"]; why?: PeerSummary["why"] } {
    if (this.#closed) return {};
    if (!this.#traversal) {
      return this.#ctx.relayOnly && this.#path.state === "relayed" ? { why: "relay-only" } : {};
    }
    return this.#traversal.explain(
      this.#path.state,
      this.#path.directAddress,
      this.#path.candidates.length,
    );
  }

  /**
   * Our NAT facts or port mapping changed: tell the peer (when it changed since last told).
   *
   * @example
   * ```ts
   * // link.localFactsChanged();
   * ```
   */
  localFactsChanged(): void {
    this.#traversal?.announce();
    this.#afterChange();
  }

  /** Birthday attempts of this link (for tests and logs). */
  get birthdayAttempts(): readonly { role: string; packetsSent: number }[] {
    return this.#traversal?.attempts ?? [];
  }

  /**
   * A (new) introduction: learn the peer's key and candidates, start the handshake (initiator)
   * and the punching. An introduction whose key does not belong to the peer's ID is ignored.
   *
   * @example
   * ```ts
   * // link.introduce({ publicKey, candidates, role: "initiator", punchAt: runtime.now() + 100 });
   * ```
   */
  introduce(intro: Introduction): void {
    const now = this.#ctx.runtime.now();
    if (!this.#secure.setPublicKey(intro.publicKey)) {
      this.#ctx.emit({
        type: "error",
        code: "bad-introduction",
        message: `introduction of ${this.peer} carried a key that is not the peer's: ignored`,
        peer: this.peer,
      });
      return;
    }
    this.#closed = false;
    this.#peerOffline = false;
    this.#serverUp = true;
    this.#path.introduce(
      now,
      this.#ctx.relayOnly ? [] : this.#acceptable(intro.candidates),
      intro.punchAt,
    );
    this.#ctx.permitTurn?.(intro.candidates.map((c) => c.host));
    this.#turnCandidates = intro.candidates.map((c) => ({ host: c.host, port: c.port }));
    this.#traversal?.introduced(now, intro.role, intro.candidates);
    // The initiator (re)starts a handshake at each introduction: the peer may have restarted and
    // lost the session (a session still good is simply replaced).
    if (intro.role === "initiator") this.#secure.initiate("introduced as initiator");
    // A handshake already under way resends its INIT now: it may have gone nowhere until now.
    this.#secure.resendNow();
    this.#afterChange();
  }

  /**
   * The server says the peer left: the relay cannot reach it. A proven direct path carries on;
   * messages keep waiting (until their deadline) and the client asks for the peer again.
   *
   * @example
   * ```ts
   * // link.peerLeft("timeout");
   * ```
   */
  peerLeft(reason: string): void {
    this.#peerOffline = true;
    this.#serverUp = false;
    this.#ctx.log?.(`server: ${this.peer} left (${reason})`);
    this.#afterChange();
  }

  /**
   * Candidates of the peer learned later (in-band, or pushed by the server).
   *
   * @example
   * ```ts
   * // link.addCandidates([{ host: "198.51.100.7", port: 40000 }]);
   * ```
   */
  addCandidates(
    candidates: readonly (UdpAddress & { kind?: "public" | "local" })[],
    probeNow = false,
  ): void {
    this.#ctx.permitTurn?.(candidates.map((c) => c.host));
    this.#turnCandidates = candidates.map((c) => ({ host: c.host, port: c.port }));
    if (this.#ctx.relayOnly) return;
    const now = this.#ctx.runtime.now();
    this.#traversal?.learned(candidates);
    const added = this.#path.addCandidates(now, this.#acceptable(candidates));
    if (added.length > 0) {
      const targets = this.#path.probeTargets(now);
      for (const a of added) {
        if (!targets.some((t) => t.host === a.host && t.port === a.port)) targets.push(a);
      }
      this.#probe(targets, true);
    } else if (probeNow) this.#probe(this.#acceptable(candidates));
    this.#afterChange();
  }

  /** The candidates that may be probed (never unspecified, broadcast, multicast...). */
  #acceptable(candidates: readonly UdpAddress[]): UdpAddress[] {
    const accept = this.#ctx.acceptCandidate;
    return accept ? candidates.filter((c) => accept(c)) : [...candidates];
  }

  /**
   * Tries a direct path again now, whatever the verdict (our network changed: a new public
   * address, a new registration).
   *
   * @example
   * ```ts
   * // link.retryDirect("our public address changed");
   * ```
   */
  retryDirect(reason: string): void {
    if (this.#ctx.relayOnly || this.#closed) return;
    this.#path.retry(this.#ctx.runtime.now(), reason);
    this.#afterChange();
  }

  /**
   * Tells the peer our current candidates in-band, when they changed since last told.
   *
   * @example
   * ```ts
   * // link.announceCandidates();
   * ```
   */
  announceCandidates(): void {
    this.#announceRelayAddresses();
    const candidates = this.#ctx.localCandidates?.() ?? [];
    if (!this.#secure.session || candidates.length === 0 || this.#ctx.relayOnly) return;
    const key = JSON.stringify(candidates);
    if (key === this.#candidatesSentFor) return;
    this.#candidatesSentFor = key;
    this.#sendSealed(this.#ctx.frames.encodeCandidates(candidates), undefined, true);
  }

  /** Tells the peer our TURN relayed addresses in-band, when they changed since last told. */
  #announceRelayAddresses(): void {
    const addresses = this.#ctx.localRelayAddresses?.() ?? [];
    const encode = this.#ctx.frames.encodeRelayAddresses;
    if (!this.#secure.session || !encode) return;
    const key = JSON.stringify(addresses);
    if (key === this.#relayAddressesSentFor) return;
    this.#relayAddressesSentFor = key;
    this.#sendSealed(encode(addresses), undefined, true);
  }

  /** Our TURN allocations usable for this peer now (none under `--relay server`). */
  #turnList(): readonly TurnRelayInfo[] {
    if (this.#ctx.relayPolicy === "server") return [];
    return this.#ctx.turnRelays?.() ?? [];
  }

  /** Where TURN probes go: every candidate of the peer and its relayed addresses. */
  #turnTargets(): UdpAddress[] {
    const out: UdpAddress[] = [];
    const add = (a: UdpAddress) => {
      if (!out.some((o) => o.host === a.host && o.port === a.port)) out.push(a);
    };
    for (const a of this.#peerRelayAddresses) add(a);
    for (const a of this.#path.candidates) add(a);
    for (const a of this.#turnCandidates) add(a);
    // Bounded: each address costs a probe through every allocation.
    return out.slice(0, MAX_TURN_TARGETS);
  }

  /** The peer's candidates as last announced (kept apart: `relayOnly` gives the path none). */
  #turnCandidates: UdpAddress[] = [];

  get #serverUsable(): boolean {
    return this.#ctx.relayPolicy !== "turn" && this.#serverUp;
  }

  #isPeerRelayAddress(address: UdpAddress): boolean {
    return this.#peerRelayAddresses.some((a) => a.host === address.host && a.port === address.port);
  }

  /** Sends a sealed packet over relay `relay` (its validated target for TURN). */
  #sendVia(relay: RelayId, packet: Uint8Array, target?: UdpAddress): void {
    if (relay === "server") {
      this.#ctx.sendRelay(this.peer, packet);
      return;
    }
    const to = target ?? this.#relays.target(relay);
    if (to) this.#ctx.sendTurn?.(relay, packet, to);
  }

  /**
   * Queues a message; `delivered`, `failed` or `unconfirmed` follows by its deadline.
   *
   * @example
   * ```ts
   * // link.send(1, new TextEncoder().encode("hi"));
   * ```
   */
  send(id: number, bytes: Uint8Array, uid?: string, deadline?: number, sent = false): void {
    if (this.#exited) {
      this.#outcome(id, "failed", "the client is exiting");
      return;
    }
    const now = this.#ctx.runtime.now();
    this.#outbox.enqueue({
      id,
      uid: uid ?? this.#newUid(),
      bytes,
      deadline: deadline ?? now + (this.#ctx.deliveryTimeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS),
      sent,
    });
    if (this.#closed) {
      // A link closed by the user comes back to life for a new message.
      this.#closed = false;
      this.#ctx.requestIntroduction?.(this.peer);
    }
    this.#afterChange();
  }

  /**
   * Sends a file message on the channel (`bulk`: false when there is no room now; the link
   * calls `onFileRoom` later).
   *
   * @example
   * ```ts
   * // link.sendFileMessage(bytes, "bulk");
   * ```
   */
  sendFileMessage(bytes: Uint8Array, priority: "normal" | "bulk", enveloped = false): boolean {
    if (this.#closed) return priority === "normal";
    const taken = this.#outbox.sendFile(bytes, priority, enveloped);
    this.#afterChange();
    return taken;
  }

  /** A random wire ID that is never the file messages' one. */
  #newUid(): string {
    for (;;) {
      const uid = this.#ctx.runtime.randomBytes(8).toHex();
      if (uid !== FILE_MESSAGE_UID) return uid;
    }
  }

  #outcome(id: number, outcome: MessageOutcome, reason: string, code?: string): void {
    this.#ctx.onResolved?.(id);
    switch (outcome) {
      case "delivered":
        this.#ctx.emit({ type: "delivered", peer: this.peer, messageId: id });
        return;
      case "unconfirmed":
        this.#ctx.emit({
          type: "unconfirmed",
          peer: this.peer,
          messageId: id,
          reason,
        });
        return;
      case "failed":
        this.#ctx.emit({
          type: "error",
          code: code ?? "delivery-failed",
          message: `message ${id} to ${this.peer} not sent: ${reason}`,
          peer: this.peer,
          messageId: id,
        });
        return;
    }
  }

  #deliver(uid: string, bytes: Uint8Array): void {
    if (this.#ctx.firstTime && !this.#ctx.firstTime(this.peer, uid)) {
      this.#ctx.log?.(`duplicate message ${uid} from ${this.peer} dropped`);
      return;
    }
    let text: string;
    try {
      text = STRICT_UTF8.decode(bytes);
    } catch {
      text = LENIENT_UTF8.decode(bytes);
    }
    this.#ctx.emit({ type: "message", from: this.peer, text });
  }

  /**
   * Seals `plaintext` and sends it: to `to` only when given, else along the path's route (direct,
   * relay, or both while the direct path is in doubt); `anyway` also uses the relay whatever the
   * route (while no path is chosen yet, and beside a direct path that may be the very thing that
   * broke: our candidates after our NAT mapping changed, our goodbye).
   */
  #sendSealed(
    plaintext: Uint8Array,
    to?: UdpAddress,
    anyway = false,
    tail?: Uint8Array,
    large = false,
  ): void {
    const session = this.#secure.session;
    if (!session) return;
    const route = this.#path.route;
    // A DATA packet going to one UDP address only is sealed into a recycled buffer, given back
    // once the socket has sent it: no allocation per bulk packet (issue 14). The relay queues
    // what it sends, so packets for it get arrays of their own.
    const udpOnly = to !== undefined || (route.udp !== undefined && !route.relay);
    if (tail !== undefined && !udpOnly && this.#sealIntoRelay(session, route, plaintext, tail)) {
      return;
    }
    const out = tail !== undefined && udpOnly ? SEAL_POOL.take() : undefined;
    let packet: Uint8Array;
    try {
      // Synchronous: no promise and no microtask per packet (sealing is synchronous anyway).
      packet = tail !== undefined
        ? (out !== undefined
          ? session.sealPartsInto(plaintext, tail, out)
          : session.sealPartsSync(plaintext, tail))
        : large
        ? session.sealLargeSync(plaintext)
        : session.sealSync(plaintext);
    } catch (error) {
      this.#ctx.log?.(`seal failed for ${this.peer}: ${error}`);
      if (session.closed || (error as Error).name === "SessionExpiredError") {
        this.#secure.initiate("session exhausted");
      }
      return;
    }
    if (out !== undefined) {
      const sent = this.#ctx.sendUdp(packet, to ?? route.udp!);
      const release = () => SEAL_POOL.release(out);
      if (sent instanceof Promise) sent.then(release, release);
      return;
    }
    if (to) {
      this.#ctx.sendUdp(packet, to);
      return;
    }
    if (route.udp) this.#ctx.sendUdp(packet, route.udp);
    const relay = this.#relays.chosen;
    if (route.relay && relay !== undefined) this.#sendVia(relay, packet);
    else if (anyway) {
      // `anyway`: over a relay too, whatever the route (see above).
      if (relay !== undefined) this.#sendVia(relay, packet);
      else if (!this.#peerOffline) this.#ctx.sendRelay(this.peer, packet);
    }
  }

  /**
   * A DATA packet for the server relay only: sealed straight into a relay frame reserved in the
   * signaling write queue (no packet array, no relay frame array, no copy into the queue: issue
   * 14). False when that does not apply (another route or relay, or the relay cannot take it);
   * true when it was sent, or sealing failed (reported, and the reservation taken back).
   */
  #sealIntoRelay(
    session: SecureSession,
    route: Route,
    plaintext: Uint8Array,
    tail: Uint8Array,
  ): boolean {
    const ctx = this.#ctx;
    if (route.udp !== undefined || !route.relay || this.#relays.chosen !== "server") return false;
    const reserve = ctx.reserveRelay;
    if (reserve === undefined) return false;
    const space = reserve(
      this.peer,
      plaintext.length + tail.length + TRANSPORT_OVERHEAD_BYTES,
    );
    if (space === undefined) return false;
    try {
      session.sealPartsInto(plaintext, tail, space);
    } catch (error) {
      ctx.cancelRelay?.(space);
      ctx.log?.(`seal failed for ${this.peer}: ${error}`);
      if (session.closed || (error as Error).name === "SessionExpiredError") {
        this.#secure.initiate("session exhausted");
      }
    }
    return true;
  }

  /** Seals `plaintext` (undefined when there is no session or sealing failed). */
  #seal(plaintext: Uint8Array): Uint8Array | undefined {
    const session = this.#secure.session;
    if (!session) return undefined;
    try {
      return session.sealSync(plaintext);
    } catch (error) {
      this.#ctx.log?.(`seal failed for ${this.peer}: ${error}`);
      return undefined;
    }
  }

  /** Sends the relay probes due now (TURN paths and the server relay). */
  #probeRelays(now: number): void {
    if (!this.#secure.session || this.#closed) return;
    const turn = this.#turnList();
    // The server relay's round trip matters only when there is a TURN path to compare it with.
    const probes = this.#relays.probes(
      now,
      turn,
      this.#turnTargets(),
      this.#serverUsable && turn.length > 0,
    );
    for (const probe of probes) {
      const nonce = this.#ctx.runtime.randomBytes(8);
      this.#relays.recordProbe(nonce.toHex(), probe, now);
      const packet = this.#seal(this.#ctx.frames.encodePathProbe(nonce));
      if (packet) this.#sendVia(probe.relay, packet, probe.target);
    }
  }

  #onSession(session: SecureSession, reason: string): void {
    this.#ctx.log?.(
      `session with ${this.peer} established (${reason}, index ${session.localIndex})`,
    );
    this.#peerReceiveBuffer = undefined; // the outbox forgets it too: the peer says it again
    this.#hadSession = true;
    // A new session: both sides start fresh channels; what was not acknowledged goes again.
    this.#outbox.resetChannel(`new session (${reason})`);
    this.#candidatesSentFor = "";
    this.#pmtuRoute = ""; // a new session: search again
    this.#probeMtu(this.#ctx.runtime.now(), true);
    // Probe every candidate at once: keys exist now.
    this.#probe(this.#path.candidates);
    this.#relayAddressesSentFor = "";
    this.announceCandidates();
    this.#probeRelays(this.#ctx.runtime.now());
    this.#traversal?.sessionUp();
    this.#afterChange();
  }

  /**
   * A HANDSHAKE_INIT from this peer was accepted by the client's responder.
   *
   * @example
   * ```ts
   * // link.acceptHandshake(accepted, source);
   * ```
   */
  acceptHandshake(accepted: HandshakeResponse, source: PacketSource): void {
    if (this.#closed) {
      accepted.session.close();
      this.#ctx.releaseIndex(accepted.session.localIndex);
      return;
    }
    if (!this.#secure.accept(accepted)) return;
    if (source.kind === "udp") this.#ctx.udpAnswered?.(source.address);
    this.#reply(accepted.response, source);
    if (source.kind === "udp") this.#noteUdp(source.address, false);
    this.#afterChange();
  }

  /**
   * A HANDSHAKE_RESPONSE addressed to our pending handshake arrived.
   *
   * @example
   * ```ts
   * // await link.completeHandshake(packet, source);
   * ```
   */
  async completeHandshake(packet: Uint8Array, source: PacketSource): Promise<void> {
    if (!(await this.#secure.complete(packet))) {
      if (this.#secure.handshaking) this.#rejected++;
      return;
    }
    if (source.kind === "udp") {
      this.#ctx.udpAnswered?.(source.address);
      this.#noteUdp(source.address, false);
    }
    this.#afterChange();
  }

  /**
   * A PUNCH from this peer arrived over UDP from `from`.
   *
   * @example
   * ```ts
   * // link.punchReceived({ host: "198.18.0.2", port: 4000 });
   * ```
   */
  punchReceived(from: UdpAddress): void {
    this.#noteUdp(from, true);
    this.#afterChange();
  }

  /**
   * A TRANSPORT packet for our session arrived.
   *
   * @example
   * ```ts
   * // link.transportReceived(packet, source);
   * ```
   */
  transportReceived(packet: Uint8Array, source: PacketSource): void {
    const session = this.#secure.session;
    if (!session || this.#closed) return;
    // Synchronous: no promise and no microtask per packet (opening is synchronous anyway). In
    // place: `packet` is a copy of our own, or (a large UDP one) lent by the socket's receive
    // loop until this call returns; the plaintext is a view of it, no buffer is allocated per
    // packet, and what keeps bytes past this call copies them (the channel, the file layer).
    const plaintext = session.openInPlaceSync(packet);
    if (!plaintext) {
      this.#rejected++;
      this.#ctx.log?.(`dropped an unauthentic or replayed packet from ${this.peer}`);
      return;
    }
    const frame = this.#ctx.frames.decode(plaintext);
    if (!frame) {
      this.#rejected++;
      return;
    }
    const now = this.#ctx.runtime.now();
    if (source.kind === "udp") this.#ctx.udpAnswered?.(source.address);
    if (source.kind === "udp" && !this.#ctx.relayOnly) {
      this.#traversal?.heard(source.address);
      this.#probe(this.#path.udpAuthenticated(source.address, now));
      if (!this.#path.directAddress) this.#noteUdp(source.address, false);
    }
    switch (frame.kind) {
      case "path-probe":
        // From the peer's TURN relayed address it probes a TURN path: answered even relay-only.
        if (
          source.kind === "udp" &&
          (!this.#ctx.relayOnly || this.#isPeerRelayAddress(source.address))
        ) {
          this.#sendSealed(this.#ctx.frames.encodePathResponse(frame.nonce), source.address);
        } else if (source.kind === "relay") {
          // A probe of the server relay's round trip: answered over it.
          const packet = this.#seal(this.#ctx.frames.encodePathResponse(frame.nonce));
          if (packet) this.#ctx.sendRelay(this.peer, packet);
        } else if (source.kind === "turn" && this.#isPeerRelayAddress(source.address)) {
          // Through our allocation from the peer's: a TURN path on both sides. (From any other
          // address it is the peer probing our relayed address as if it were a direct path: not
          // answered, so it never passes for one.)
          const packet = this.#seal(this.#ctx.frames.encodePathResponse(frame.nonce));
          if (packet) this.#ctx.sendTurn?.(source.relay, packet, source.address);
        }
        break;
      case "path-response":
        if (source.kind === "udp" && !this.#ctx.relayOnly) {
          const outcome = this.#path.probeResponse(frame.nonce.toHex(), source.address, now);
          if (outcome === "reflexive") this.#probe([source.address]);
        } else if (source.kind === "relay") {
          this.#relays.probeResponse(frame.nonce.toHex(), "server", undefined, now);
        } else if (source.kind === "turn") {
          this.#relays.probeResponse(frame.nonce.toHex(), source.relay, source.address, now);
        }
        break;
      case "candidates":
        this.addCandidates(frame.addresses);
        break;
      case "relay-addresses":
        this.#peerRelayAddresses = frame.addresses.map((a) => ({ host: a.host, port: a.port }));
        this.#path.setRelayAddresses(this.#peerRelayAddresses);
        this.#ctx.permitTurn?.(this.#peerRelayAddresses.map((a) => a.host));
        break;
      case "pmtu-probe": {
        // Answered the way it came (its size says what that way carries).
        if (source.kind === "udp") {
          this.#sendSealed(probeAnswer(frame.frame), source.address);
          // The peer is sizing its packets for this path: how much of them our socket holds.
          const buffer = this.#ctx.udpReceiveBuffer;
          const parameters = buffer === undefined
            ? undefined
            : this.#ctx.frames.encodeParameters?.({ udpReceiveBuffer: buffer });
          if (parameters !== undefined) this.#sendSealed(parameters, source.address);
          break;
        }
        const packet = this.#seal(probeAnswer(frame.frame));
        if (!packet) break;
        if (source.kind === "turn") this.#ctx.sendTurn?.(source.relay, packet, source.address);
        else this.#ctx.sendRelay(this.peer, packet);
        break;
      }
      case "pmtu-ack":
        this.#pmtu.onAck(frame.id, now);
        this.#applyPmtu();
        break;
      case "close":
        // The peer exited: its session is gone. Messages wait for it to come back.
        this.#ctx.log?.(`${this.peer} closed the connection`);
        this.#serverUp = false;
        this.#relays.reset();
        this.#path.peerGone("peer closed the connection");
        this.#peerOffline = true;
        break;
      case "traversal":
        this.#traversal?.receive(frame.body, now);
        break;
      case "parameters":
        if (
          frame.udpReceiveBuffer !== undefined &&
          frame.udpReceiveBuffer !== this.#peerReceiveBuffer
        ) {
          this.#peerReceiveBuffer = frame.udpReceiveBuffer;
          this.#ctx.log?.(`${this.peer}'s UDP receive buffer: ${frame.udpReceiveBuffer} bytes`);
          this.#outbox.setPeerReceiveBuffer(frame.udpReceiveBuffer);
        }
        break;
      case "channel":
        this.#outbox.receiveFrame(frame.frame);
        break;
    }
    this.#afterChange();
  }

  /** Learns `from` as a candidate; probes it (or sends INIT / PUNCH before keys exist). */
  #noteUdp(from: UdpAddress, wasPunch: boolean): void {
    if (this.#ctx.relayOnly) return;
    this.#traversal?.heard(from);
    const isNew = this.#path.addReflexive(from);
    if (isNew || wasPunch || !this.#path.directAddress) this.#probe([from]);
  }

  /**
   * Probes `targets` (with keys), or sends the INIT to them (our handshake is pending), or, on a
   * scheduled round only, a PUNCH (a PUNCH is never answered with a PUNCH: two sides without
   * keys would bounce them forever).
   */
  #probe(targets: readonly UdpAddress[], scheduled = false): void {
    if (this.#ctx.relayOnly || targets.length === 0 || !this.#secure.publicKey) return;
    const now = this.#ctx.runtime.now();
    if (this.#secure.session) {
      for (const target of targets) {
        const nonce = this.#ctx.runtime.randomBytes(8);
        this.#path.recordProbe(nonce.toHex(), target, now);
        this.#sendSealed(this.#ctx.frames.encodePathProbe(nonce), target);
      }
    } else if (this.#secure.initPacket) {
      const init = this.#secure.initPacket;
      for (const target of targets) this.#ctx.sendUdp(init, target);
    } else if (scheduled) {
      const punch = encodePunch(this.#ctx.identity.id, this.peer);
      for (const target of targets) this.#ctx.sendUdp(punch, target);
    }
  }

  #reply(packet: Uint8Array, source: PacketSource): void {
    if (source.kind === "udp") this.#ctx.sendUdp(packet, source.address);
    else if (source.kind === "turn") this.#ctx.sendTurn?.(source.relay, packet, source.address);
    else this.#ctx.sendRelay(this.peer, packet);
  }

  #runTimers(): void {
    try {
      this.tick();
    } catch (error) {
      this.#ctx.log?.(`peer ${this.peer}: ${(error as Error).message}`);
      this.#arm();
    }
  }

  /**
   * Runs timers: path state, probes, handshake resends, channel retransmissions, message
   * deadlines. Called by the link's own deadline timer; extra calls are harmless.
   *
   * @example
   * ```ts
   * // link.tick();
   * ```
   */
  tick(): void {
    if (this.#exited) return;
    const now = this.#ctx.runtime.now();
    this.#secure.tick();
    if (!this.#closed) {
      this.#path.tick(now);
      this.#traversal?.tick(now, this.#path.state === "direct");
      const targets = this.#path.probeTargets(now);
      this.#probe(targets, true);
      this.#probeRelays(now);
      if (this.#path.takeDirectUnanswered(now)) this.#ctx.onPathTrouble?.(this.peer, true);
      else if (
        targets.length > 0 && (this.#path.state === "mixed" || this.#path.state === "relayed")
      ) this.#ctx.onPathTrouble?.(this.peer, false);
      this.#probeMtu(now, false);
    }
    this.#outbox.tick();
    this.#afterChange();
  }

  /**
   * A relay refusal for this peer (`relay-quota`, `relay-queue-full`...): counted as loss; the
   * channel retransmits with backoff. Returns true if the peer should be introduced again.
   *
   * @example
   * ```ts
   * // link.relayRefused("relay-quota");
   * ```
   */
  relayRefused(code: string): boolean {
    this.#ctx.log?.(`relay refused a packet to ${this.peer}: ${code} (treated as loss)`);
    return code === "relay-not-brokered";
  }

  /**
   * Ends the link: every message without an outcome gets one now (`failed` if it never left,
   * `unconfirmed` otherwise) unless `keepMessages`; a new `send` or introduction brings the link
   * back.
   *
   * @example
   * ```ts
   * // link.disconnect("client exiting before delivery");
   * ```
   */
  disconnect(reason: string, keepMessages = false): void {
    if (!keepMessages) this.#outbox.close(reason);
    this.#secure.close();
    this.#serverUp = false;
    this.#relays.reset();
    this.#path.reset(reason);
    this.#closed = true;
    this.#traversal?.close();
    if (!keepMessages) this.#hadSession = false;
    this.#afterChange(reason);
    this.#timer.cancel();
  }

  /**
   * Tells the peer we are leaving (best effort) and releases everything. `keepMessages`: the
   * messages without an outcome get none now (they are stored for the next start).
   *
   * @example
   * ```ts
   * // link.close();
   * ```
   */
  close(keepMessages = false): void {
    if (this.#secure.session) this.#sendSealed(this.#ctx.frames.encodeClose(), undefined, true);
    this.disconnect("client exit", keepMessages);
    this.#exited = true;
    this.#timer.cancel();
  }

  /**
   * Stops everything at once, silently (the process crashed): no packets, events or timers.
   *
   * @example
   * ```ts
   * // link.abandon();
   * ```
   */
  abandon(): void {
    this.#exited = true;
    this.#traversal?.close();
    this.#timer.cancel();
    this.#secure.close();
  }

  /** Restarts the PMTU search when the route changed (`check`); sends a due probe. */
  #probeMtu(now: number, check: boolean): void {
    if (!this.#secure.session || this.#path.state === "none") return;
    if (check) {
      const route = this.#path.route;
      const relay = route.relay ? this.#relays.chosen : undefined;
      const key = `${route.udp ? `${route.udp.host}:${route.udp.port}` : ""}|${route.relay}|${
        relay ?? ""
      }`;
      if (key !== this.#pmtuRoute) {
        this.#pmtuRoute = key;
        // Deno cannot set DF on UDP: a datagram larger than the first link's MTU is fragmented by
        // the kernel and a probe of it "succeeds", while one lost fragment loses the datagram. So
        // only loopback (MTU 65,536) and the relay (TCP) are probed up to 65,507 bytes; other UDP
        // paths up to 1,452 (a 1,500-byte Ethernet MTU less IPv6 and UDP headers).
        // A TURN relay forwards UDP: at most what a 1500-byte MTU carries after its headers.
        const large = route.udp === undefined
          ? relay === "server" || relay === undefined
          : isLoopback(route.udp.host);
        const turn = route.udp === undefined && typeof relay === "number";
        this.#pmtu = new PmtuProber({
          maxSize: turn ? TURN_MAX_PACKET_BYTES : large ? 65_507 : 1_452,
        });
        this.#pmtu.start(now);
        this.#applyPmtu();
      }
    }
    const probe = this.#pmtu.poll(now);
    if (probe) this.#sendSealed(probeFrame(probe), undefined, false, undefined, true);
  }

  #applyPmtu(): void {
    this.#outbox.setMaxFrameBytes(this.#pmtu.size - TRANSPORT_OVERHEAD_BYTES);
  }

  /** Chooses the relay (policy, availability, round trips) and tells the path about it. */
  #syncRelay(): void {
    if (this.#closed) return;
    const now = this.#ctx.runtime.now();
    const policy = this.#ctx.relayPolicy ?? "any";
    const chosen = this.#relays.choose(now, policy, this.#serverUsable);
    if (chosen !== undefined) {
      const label = this.#relays.label(chosen);
      this.#path.setRelayLabel(
        label,
        chosen === "server" ? "relay switched to the server" : `relay switched to ${label}`,
      );
    }
    this.#path.setRelayAvailable(chosen !== undefined, now);
  }

  #afterChange(reason?: string): void {
    if (this.#exited) return;
    this.#syncRelay();
    const change = this.#path.takeChange();
    this.#outbox.setReady(
      !this.#closed && this.#secure.session !== undefined && this.#path.state !== "none",
    );
    const state = this.state;
    const path = this.#closed ? null : this.#path.path;
    const route = this.#path.route;
    const primary = this.#closed
      ? null
      : route.udp
      ? `${route.udp.host} ${route.udp.port}`
      : route.relay
      ? `relay ${this.#relays.chosen ?? ""}`
      : null;
    // Copies on a retransmission timeout help only where frames are lost, not over the relay.
    this.#outbox.setDatagramPath(route.udp !== undefined && !route.relay);
    if (primary !== this.#lastPrimary) {
      // direct ↔ mixed keeps the direct address: no change for the channel's RTT estimate.
      if (primary !== null && this.#lastPrimary !== null) this.#outbox.pathChanged();
      this.#lastPrimary = primary;
    }
    if (change?.settled) this.#ctx.log?.(`${this.peer}: ${change.reason}`);
    const explanation = this.#explain();
    const explained = `${explanation.how ?? ""}|${explanation.why ?? ""}`;
    if (
      state !== this.#lastState || path !== this.#lastPath || explained !== this.#lastWhy ||
      change?.settled
    ) {
      const moved = state !== this.#lastState || path !== this.#lastPath;
      this.#lastState = state;
      this.#lastPath = path;
      this.#lastWhy = explained;
      if (moved) this.#probeMtu(this.#ctx.runtime.now(), true);
      const why = reason ?? change?.reason;
      this.#ctx.emit({
        type: "peer",
        peer: this.peer,
        state,
        path,
        ...(why ? { reason: why } : {}),
        ...explanation,
      });
    }
    this.#arm();
  }

  /** Arms the one timer at the earliest deadline of the path, handshake and outbox. */
  #arm(): void {
    const now = this.#ctx.runtime.now();
    let at = Math.min(this.#secure.nextDeadline(), this.#outbox.nextDeadline());
    if (!this.#closed) at = Math.min(at, this.#path.nextDeadline(now));
    if (!this.#closed && this.#secure.session) {
      at = Math.min(at, this.#pmtu.nextDeadline() ?? Infinity);
      // Relay probes exist only with TURN allocations (cheap checks: this runs per packet).
      if (this.#turnList().length > 0) {
        const targets = this.#peerRelayAddresses.length + this.#path.candidates.length +
          this.#turnCandidates.length;
        at = Math.min(at, this.#relays.nextDeadline(now, this.#serverUsable, targets));
      }
    }
    if (!this.#closed && this.#traversal) at = Math.min(at, this.#traversal.nextDeadline(now));
    this.#timer.arm(at);
  }
}
