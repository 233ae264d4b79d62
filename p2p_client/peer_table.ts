/**
 * The client's peers: one {@linkcode PeerLink} per peer ID, the session indexes that route
 * TRANSPORT and HANDSHAKE_RESPONSE packets to their link, and the handshake responder that
 * answers HANDSHAKE_INITs from introduced peers. Peers are independent: one slow or vanished peer
 * never holds up another.
 *
 * @module
 */
import type { Identity } from "../shared/identity/mod.ts";
import { HandshakeResponder } from "../shared/peer/handshake.ts";
import {
  decodePunch,
  handshakeResponseReceiverIndex,
  PeerPacketType,
  transportReceiverIndex,
} from "../shared/peer/packet.ts";
import { type PacketSource, PeerLink, type PeerLinkContext } from "./peer_link.ts";

/** What the table needs to build links (everything of a link context but the index routing). */
export type PeerTableContext = Omit<PeerLinkContext, "allocateIndex" | "releaseIndex">;

/**
 * The peer table.
 *
 * @example
 * ```ts
 * // const table = new PeerTable(context);
 * // const link = table.getOrCreate(peerId);
 * // table.dispatch(packet, { kind: "udp", address });
 * ```
 */
export class PeerTable {
  readonly #ctx: PeerTableContext;
  readonly #links = new Map<string, PeerLink>();
  readonly #indexes = new Map<number, PeerLink | null>();
  readonly #responder: HandshakeResponder;

  /**
   * Creates an empty table.
   *
   * @example
   * ```ts
   * // new PeerTable(context);
   * ```
   */
  constructor(ctx: PeerTableContext) {
    this.#ctx = ctx;
    this.#responder = new HandshakeResponder({
      identity: ctx.identity as Identity,
      now: () => ctx.runtime.now(),
      lookupPeer: (id) => this.#links.get(id)?.publicKey,
      allocateIndex: () => this.#allocateIndex(null),
    });
  }

  /** Every link. */
  links(): IterableIterator<PeerLink> {
    return this.#links.values();
  }

  /** Known peer IDs. */
  get ids(): string[] {
    return [...this.#links.keys()];
  }

  /** The link of `peer`, if any. */
  get(peer: string): PeerLink | undefined {
    return this.#links.get(peer);
  }

  /**
   * The link of `peer`, created (state `connecting`) when missing.
   *
   * @example
   * ```ts
   * // const link = table.getOrCreate(peerId);
   * ```
   */
  getOrCreate(peer: string): PeerLink {
    let link = this.#links.get(peer);
    if (!link) {
      link = new PeerLink(peer, {
        ...this.#ctx,
        allocateIndex: (owner) => this.#allocateIndex(owner),
        releaseIndex: (index) => this.#indexes.delete(index),
      });
      this.#links.set(peer, link);
    }
    return link;
  }

  /**
   * Removes a link that never got introduced (a refused `connect`).
   *
   * @example
   * ```ts
   * // table.remove(peerId);
   * ```
   */
  remove(peer: string): void {
    const link = this.#links.get(peer);
    if (!link) return;
    if (link.state !== "disconnected") link.disconnect("removed");
    this.#links.delete(peer);
    this.#responder.forget(peer);
  }

  #allocateIndex(link: PeerLink | null): number {
    for (let attempt = 0; attempt < 100; attempt++) {
      const bytes = this.#ctx.runtime.randomBytes(4);
      const index = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
      if (index === 0 || this.#indexes.has(index)) continue;
      this.#indexes.set(index, link);
      return index;
    }
    throw new Error("cannot allocate a session index");
  }

  /**
   * Routes a peer packet to its link. `relayPeer` is the relay frame's source ID (packets from the
   * relay must belong to that peer).
   *
   * @example
   * ```ts
   * // table.dispatch(bytes, { kind: "relay" }, sourcePeerId);
   * ```
   */
  dispatch(bytes: Uint8Array, source: PacketSource, relayPeer?: string): void {
    switch (bytes[0]) {
      case PeerPacketType.Punch: {
        if (source.kind !== "udp") return;
        let punch;
        try {
          punch = decodePunch(bytes);
        } catch {
          return;
        }
        if (punch.to !== this.#ctx.identity.id) return;
        this.#links.get(punch.from)?.punchReceived(source.address);
        return;
      }
      case PeerPacketType.HandshakeInit:
        void this.#responder.respond(bytes).then((accepted) => {
          if (!accepted) return;
          if (relayPeer !== undefined && relayPeer !== accepted.remoteId) return;
          const link = this.#links.get(accepted.remoteId);
          if (!link) return;
          this.#indexes.set(accepted.session.localIndex, link);
          link.acceptHandshake(accepted, source);
        }, (error) => this.#ctx.log?.(`handshake failed: ${error}`));
        return;
      case PeerPacketType.HandshakeResponse: {
        const index = handshakeResponseReceiverIndex(bytes);
        const link = index === undefined ? undefined : this.#indexes.get(index);
        if (!link || (relayPeer !== undefined && relayPeer !== link.peer)) return;
        void link.completeHandshake(bytes, source);
        return;
      }
      case PeerPacketType.Transport: {
        const index = transportReceiverIndex(bytes);
        const link = index === undefined ? undefined : this.#indexes.get(index);
        if (!link || (relayPeer !== undefined && relayPeer !== link.peer)) return;
        try {
          link.transportReceived(bytes, source);
        } catch (error) {
          // Never let one packet break the socket's or the server session's receive loop.
          this.#ctx.log?.(`packet from ${link.peer} not handled: ${error}`);
        }
        return;
      }
      default:
        return;
    }
  }

  /**
   * Runs every link's timers; an error in one link never stops the others.
   *
   * @example
   * ```ts
   * // table.tick();
   * ```
   */
  tick(): void {
    for (const link of this.#links.values()) {
      try {
        link.tick();
      } catch (error) {
        this.#ctx.log?.(`peer ${link.peer}: ${(error as Error).message}`);
      }
    }
  }
}
