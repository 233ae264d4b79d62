/**
 * One peer: its handshake, its secure session, its path (connecting / direct / relayed) and the
 * reliable message channel that survives path switches.
 *
 * Packets arrive from the UDP socket (with their source address) or from the relay; the link
 * answers a peer at the address its authenticated packets really come from (peer-reflexive
 * candidates), validates direct paths with encrypted PATH_PROBE / PATH_RESPONSE round trips, and
 * sends over the direct path when there is one, over the relay otherwise.
 *
 * @module
 */
import type { Identity } from "../shared/identity/mod.ts";
import { HandshakeInitiator, type HandshakeResponse } from "../shared/peer/handshake.ts";
import { encodePunch } from "../shared/peer/packet.ts";
import type { SecureSession } from "../shared/peer/session.ts";
import type { ClientEvent, PeerState, PeerSummary } from "./events.ts";
import type { LinkFrameCodec, MessageChannel, MessageChannelFactory } from "./link_frames.ts";
import { PathManager, type PathManagerOptions, type UdpAddress } from "./path_manager.ts";
import { RingBuffer } from "./reliable/ring_buffer.ts";
import type { Runtime } from "../shared/runtime/mod.ts";
import { DeadlineTimer } from "./deadline_timer.ts";

/** Where a packet came from: a UDP address, or the relay. */
export type PacketSource = { kind: "udp"; address: UdpAddress } | { kind: "relay" };

/** What a {@linkcode PeerLink} needs from the client around it. */
export interface PeerLinkContext {
  /** Our identity. */
  identity: Identity;
  /** Clock, timers and randomness. */
  runtime: Runtime;
  /** Sends a datagram on the shared UDP socket. */
  sendUdp: (bytes: Uint8Array, to: UdpAddress) => void;
  /** Sends a payload through the relay; false when not connected to a server. */
  sendRelay: (peer: string, bytes: Uint8Array) => boolean;
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
  /** Path timing overrides. */
  pathOptions?: PathManagerOptions;
  /** Never use direct paths (diagnostics / tests of the relay). */
  relayOnly?: boolean;
  /** Debug logging. */
  log?: (message: string) => void;
}

/** An introduction from the server, with `punchAt` already converted to local time. */
export interface Introduction {
  /** The peer's Ed25519 public key. */
  publicKey: Uint8Array;
  /** Its candidate UDP addresses. */
  candidates: UdpAddress[];
  /** Our role. */
  role: "initiator" | "responder";
  /** Local time to start punching. */
  punchAt: number;
}

const INIT_RESEND_MS = 1000;
const MAX_HELD_MESSAGES = 100_000;
const MAX_HELD_BYTES = 256 << 20;

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
  #path: PathManager;
  #publicKey: Uint8Array | undefined;
  #role: "initiator" | "responder" | undefined;
  #initiator: HandshakeInitiator | undefined;
  #initiatorStarting = false;
  #initSentAt = -Infinity;
  #session: SecureSession | undefined;
  #channel: MessageChannel | undefined;
  /** Our message IDs, in order, waiting for a path before they go to the channel. */
  #held = new RingBuffer<{ id: number; bytes: Uint8Array }>();
  #heldBytes = 0;
  /** Channel ID → our message ID. */
  readonly #inFlight = new Map<number, number>();
  #lastState: PeerState = "connecting";
  #lastPath: string | null = null;
  #rejected = 0;
  /** Runs {@linkcode PeerLink.tick} at the earliest deadline of the path, handshake and channel. */
  readonly #timer: DeadlineTimer;

  /**
   * Creates the link of `peer` (state `connecting`).
   *
   * @example
   * ```ts
   * // const link = new PeerLink(peerId, context);
   * ```
   */
  constructor(peer: string, ctx: PeerLinkContext) {
    this.peer = peer;
    this.#ctx = ctx;
    this.#timer = new DeadlineTimer(ctx.runtime, () => this.#runTimers());
    this.#path = new PathManager(ctx.runtime.now(), ctx.pathOptions);
    ctx.emit({ type: "peer", peer, state: "connecting", path: null });
  }

  /** The peer's public key, once introduced. */
  get publicKey(): Uint8Array | undefined {
    return this.#publicKey;
  }

  /** The current state. */
  get state(): PeerState {
    return this.#path.state;
  }

  /** Messages sent and not yet acknowledged or reported failed. */
  get pendingMessages(): number {
    return this.#held.length + this.#inFlight.size;
  }

  /** Packets from this peer that failed authentication or were malformed. */
  get rejectedPackets(): number {
    return this.#rejected;
  }

  /** A row for `list`. */
  summary(): PeerSummary {
    // On a direct path the keepalive probes measure the network round trip itself; the channel's
    // smoothed RTT also counts the receiver's delayed acknowledgements, so it serves the relay only.
    const rtt = this.#path.state === "direct"
      ? this.#path.probeRttMs ?? this.#channel?.srttMs
      : this.#channel?.srttMs;
    return {
      peer: this.peer,
      state: this.#path.state,
      path: this.#path.path,
      rttMs: rtt === undefined ? null : Math.round(rtt * 10) / 10,
    };
  }

  /**
   * A (new) introduction: learn the peer's key and candidates, start the handshake (initiator)
   * and the punching.
   *
   * @example
   * ```ts
   * // link.introduce({ publicKey, candidates, role: "initiator", punchAt: Date.now() + 100 });
   * ```
   */
  introduce(intro: Introduction): void {
    const now = this.#ctx.runtime.now();
    if (this.#publicKey && this.#publicKey.toHex() !== intro.publicKey.toHex()) {
      this.#ctx.log?.(`peer ${this.peer} changed keys; ignoring introduction`);
      return;
    }
    this.#publicKey = intro.publicKey;
    this.#path.introduce(now, this.#ctx.relayOnly ? [] : intro.candidates, intro.punchAt);
    if (!this.#session) {
      this.#role = intro.role;
      if (intro.role === "initiator") void this.#startHandshake();
    }
    this.#afterChange();
  }

  async #startHandshake(): Promise<void> {
    if (this.#initiatorStarting || !this.#publicKey) return;
    this.#initiatorStarting = true;
    const index = this.#ctx.allocateIndex(this);
    try {
      this.#initiator = await HandshakeInitiator.start({
        identity: this.#ctx.identity,
        remoteId: this.peer,
        remotePublicKey: this.#publicKey,
        localIndex: index,
        now: () => this.#ctx.runtime.wallClock(),
      });
    } catch (error) {
      this.#ctx.releaseIndex(index);
      this.#ctx.emit({
        type: "error",
        code: "handshake-failed",
        message: `cannot start a handshake with ${this.peer}: ${(error as Error).message}`,
        peer: this.peer,
      });
      return;
    } finally {
      this.#initiatorStarting = false;
    }
    this.#sendInitOverRelay();
  }

  #sendInitOverRelay(): void {
    if (!this.#initiator || this.#session) return;
    this.#initSentAt = this.#ctx.runtime.now();
    this.#ctx.sendRelay(this.peer, this.#initiator.packet);
  }

  /**
   * Queues a message (text bytes) and returns nothing: the caller assigned `id` and reports
   * `sent`; `delivered` or an error follows.
   *
   * @example
   * ```ts
   * // link.send(1, new TextEncoder().encode("hi"));
   * ```
   */
  send(id: number, bytes: Uint8Array): void {
    if (this.#path.state === "disconnected") {
      this.#ctx.emit({
        type: "error",
        code: "peer-disconnected",
        message: `message ${id} not sent: peer ${this.peer} is disconnected (connect again)`,
        peer: this.peer,
        messageId: id,
      });
      return;
    }
    if (this.#held.length >= MAX_HELD_MESSAGES || this.#heldBytes + bytes.length > MAX_HELD_BYTES) {
      this.#ctx.emit({
        type: "error",
        code: "queue-full",
        message: `message ${id} not sent: ${this.#held.length} messages (${this.#heldBytes} ` +
          `bytes) already wait for ${this.peer}`,
        peer: this.peer,
        messageId: id,
      });
      return;
    }
    this.#held.push({ id, bytes });
    this.#heldBytes += bytes.length;
    this.#flushHeld();
  }

  #flushHeld(): void {
    if (
      !this.#session || this.#path.state === "connecting" || this.#path.state === "disconnected"
    ) {
      return;
    }
    const channel = this.#ensureChannel();
    while (this.#held.length > 0) {
      const { id, bytes } = this.#held.at(0)!;
      // The channel's window of unacknowledged messages is full: the rest waits here and goes
      // out as acknowledgements arrive.
      if (!channel.hasRoomFor(bytes.length)) break;
      try {
        this.#inFlight.set(channel.sendMessage(bytes), id);
        this.#held.shift();
        this.#heldBytes -= bytes.length;
      } catch (error) {
        if ((error as Error).name === "SendQueueFullError") break;
        this.#held.shift();
        this.#heldBytes -= bytes.length;
        this.#ctx.emit({
          type: "error",
          code: (error as Error).name === "MessageTooLargeError"
            ? "message-too-large"
            : "queue-full",
          message: `message ${id} to ${this.peer} not sent: ${(error as Error).message}`,
          peer: this.peer,
          messageId: id,
        });
      }
    }
    this.#armChannelTimer();
  }

  /**
   * Arms the link's one timer at its earliest deadline: path probes and timeouts, the INIT
   * resend, the channel's delayed ACKs and retransmissions. A deadline already due (an ACK owed
   * for a completed message) runs from the runtime's `defer`: after the datagrams already
   * waiting on the socket are processed, so a burst is acknowledged once at its end.
   */
  #armChannelTimer(): void {
    if (this.#path.state === "disconnected") {
      this.#timer.cancel();
      return;
    }
    const now = this.#ctx.runtime.now();
    let at = this.#path.nextDeadline(now);
    if (this.#initiator && !this.#session) at = Math.min(at, this.#initSentAt + INIT_RESEND_MS);
    if (this.#channel) at = Math.min(at, this.#channel.nextDeadline());
    this.#timer.arm(at);
  }

  #runTimers(): void {
    try {
      this.tick();
    } catch (error) {
      this.#ctx.log?.(`peer ${this.peer}: ${(error as Error).message}`);
      this.#armChannelTimer();
    }
  }

  #cancelChannelTimer(): void {
    this.#timer.cancel();
  }

  #ensureChannel(): MessageChannel {
    this.#channel ??= this.#ctx.createChannel({
      send: (frame) => this.#sendSealed(frame),
      deliver: (message) => this.#deliver(message),
      onAcknowledged: (channelId) => {
        const id = this.#inFlight.get(channelId);
        if (id === undefined) return;
        this.#inFlight.delete(channelId);
        this.#ctx.emit({ type: "delivered", peer: this.peer, messageId: id });
      },
      onFailure: (error, channelIds) => {
        for (const channelId of channelIds) {
          const id = this.#inFlight.get(channelId);
          if (id === undefined) continue;
          this.#inFlight.delete(channelId);
          this.#ctx.emit({
            type: "error",
            code: "delivery-failed",
            message: `message ${id} to ${this.peer} not delivered: ${error.message}`,
            peer: this.peer,
            messageId: id,
          });
        }
      },
    });
    return this.#channel;
  }

  #deliver(message: Uint8Array): void {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(message);
    } catch {
      text = new TextDecoder().decode(message);
    }
    this.#ctx.emit({ type: "message", from: this.peer, text });
  }

  /** Seals `plaintext` and sends it over the current path (direct, else relay). */
  #sendSealed(plaintext: Uint8Array, to?: UdpAddress): void {
    const session = this.#session;
    if (!session) return;
    const direct = to ?? this.#path.directAddress;
    let packet: Uint8Array;
    try {
      // Synchronous: no promise and no microtask per packet (sealing is synchronous anyway).
      packet = session.sealSync(plaintext);
    } catch (error) {
      this.#ctx.log?.(`seal failed for ${this.peer}: ${error}`);
      return;
    }
    if (direct) this.#ctx.sendUdp(packet, direct);
    else this.#ctx.sendRelay(this.peer, packet);
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
    this.#reply(accepted.response, source);
    if (source.kind === "udp") this.#noteUdp(source.address, false);
    if (accepted.isNew || !this.#session) {
      this.#adopt(accepted.session);
    }
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
    const initiator = this.#initiator;
    if (!initiator || initiator.completed) return;
    const session = await initiator.complete(packet);
    if (!session) {
      this.#rejected++;
      return;
    }
    this.#initiator = undefined;
    if (source.kind === "udp") this.#noteUdp(source.address, false);
    this.#adopt(session);
  }

  #adopt(session: SecureSession): void {
    const previous = this.#session;
    this.#session = session;
    if (previous && previous !== session) {
      // The peer ran a new handshake while ours was alive: it lost its state (a restart), so
      // the old channel's sequence space means nothing to it. Unacknowledged messages are
      // reported; new ones start a fresh channel.
      if (previous.localIndex !== session.localIndex) this.#ctx.releaseIndex(previous.localIndex);
      previous.close();
      this.#channel?.close(new Error("the peer restarted its session"));
      this.#channel = undefined;
      this.#inFlight.clear();
    }
    this.#ctx.log?.(`session with ${this.peer} established (index ${session.localIndex})`);
    // Probe every candidate at once: keys exist now.
    this.#probeAll(this.#path.candidates);
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
    const session = this.#session;
    if (!session) return;
    // Synchronous: no promise and no microtask per packet (opening is synchronous anyway).
    const plaintext = session.openSync(packet);
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
    if (source.kind === "udp") {
      this.#path.udpAuthenticated(source.address, now);
      if (!this.#path.directAddress) this.#noteUdp(source.address, false);
    }
    switch (frame.kind) {
      case "path-probe":
        if (source.kind === "udp" && !this.#ctx.relayOnly) {
          this.#sendSealed(this.#ctx.frames.encodePathResponse(frame.nonce), source.address);
        }
        break;
      case "path-response":
        if (source.kind === "udp" && !this.#ctx.relayOnly) {
          const outcome = this.#path.probeResponse(frame.nonce.toHex(), source.address, now);
          if (outcome === "reflexive") this.#probeAll([source.address]);
        }
        break;
      case "close":
        this.disconnect("peer closed the connection");
        return;
      case "channel":
        this.#ensureChannel().receive(frame.frame);
        this.#armChannelTimer();
        break;
    }
    this.#afterChange();
  }

  /** Learns `from` as a candidate; probes it (or sends INIT / PUNCH before keys exist). */
  #noteUdp(from: UdpAddress, wasPunch: boolean): void {
    if (this.#ctx.relayOnly) return;
    const isNew = this.#path.addReflexive(from);
    if (isNew || wasPunch || !this.#path.directAddress) this.#probeAll([from]);
  }

  #probeAll(targets: readonly UdpAddress[]): void {
    if (this.#ctx.relayOnly || targets.length === 0) return;
    const now = this.#ctx.runtime.now();
    if (this.#session) {
      for (const target of targets) {
        const nonce = this.#ctx.runtime.randomBytes(8);
        this.#path.recordProbe(nonce.toHex(), target, now);
        this.#sendSealed(this.#ctx.frames.encodePathProbe(nonce), target);
      }
    } else if (this.#role === "initiator" && this.#initiator) {
      for (const target of targets) this.#ctx.sendUdp(this.#initiator.packet, target);
    } else if (this.#role === "responder") {
      const punch = encodePunch(this.#ctx.identity.id, this.peer);
      for (const target of targets) this.#ctx.sendUdp(punch, target);
    }
  }

  #reply(packet: Uint8Array, source: PacketSource): void {
    if (source.kind === "udp") this.#ctx.sendUdp(packet, source.address);
    else this.#ctx.sendRelay(this.peer, packet);
  }

  /**
   * Runs timers: path state, probes, handshake resends, channel retransmissions.
   *
   * @example
   * ```ts
   * // link.tick();
   * ```
   */
  tick(): void {
    const now = this.#ctx.runtime.now();
    if (this.#path.state === "disconnected") return;
    this.#path.tick(now);
    this.#probeAll(this.#path.probeTargets(now));
    if (this.#initiator && !this.#session && now - this.#initSentAt >= INIT_RESEND_MS) {
      this.#sendInitOverRelay();
    }
    this.#channel?.tick();
    this.#armChannelTimer();
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
   * The peer is gone: pending messages are reported failed, the link waits for a new
   * introduction.
   *
   * @example
   * ```ts
   * // link.disconnect("peer left (timeout)");
   * ```
   */
  disconnect(reason: string): void {
    const error = new Error(reason);
    for (let i = 0; i < this.#held.length; i++) {
      const { id } = this.#held.at(i)!;
      this.#ctx.emit({
        type: "error",
        code: "delivery-failed",
        message: `message ${id} to ${this.peer} not delivered: ${reason}`,
        peer: this.peer,
        messageId: id,
      });
    }
    this.#held.clear();
    this.#heldBytes = 0;
    this.#cancelChannelTimer();
    this.#channel?.close(error);
    this.#channel = undefined;
    this.#inFlight.clear();
    if (this.#session) {
      this.#session.close();
      this.#ctx.releaseIndex(this.#session.localIndex);
      this.#session = undefined;
    }
    if (this.#initiator) {
      this.#ctx.releaseIndex(this.#initiator.localIndex);
      this.#initiator = undefined;
    }
    this.#path.disconnect(reason);
    this.#afterChange();
    this.#cancelChannelTimer();
  }

  /**
   * Tells the peer we are leaving (best effort) and releases everything.
   *
   * @example
   * ```ts
   * // link.close();
   * ```
   */
  close(): void {
    if (this.#session) this.#sendSealed(this.#ctx.frames.encodeClose());
    this.disconnect("client exit");
  }

  #afterChange(): void {
    const change = this.#path.takeChange();
    this.#flushHeld();
    const state = this.#path.state;
    const path = this.#path.path;
    if (state !== this.#lastState || path !== this.#lastPath) {
      if (path !== this.#lastPath && path !== null && this.#lastPath !== null) {
        this.#channel?.pathChanged();
      }
      this.#lastState = state;
      this.#lastPath = path;
      this.#ctx.emit({
        type: "peer",
        peer: this.peer,
        state,
        path,
        ...(change ? { reason: change.reason } : {}),
      });
    }
    this.#armChannelTimer();
  }
}
