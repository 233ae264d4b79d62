/**
 * The client's peers: one {@linkcode PeerLink} per peer ID, the session indexes that route
 * classified TRANSPORT and HANDSHAKE_RESPONSE packets to their link, and the handshake responder that
 * answers HANDSHAKE_INITs from introduced peers. Peers are independent: one slow or vanished peer
 * never holds up another.
 *
 * @module
 */
import type { Identity } from "../shared/identity/mod.ts";
import { HandshakeResponder } from "../shared/peer/handshake.ts";
import type { InboundPacket } from "./inbound_packet.ts";
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
   * Routes a classified peer packet to its link. `relayPeer` is the relay frame's source ID
   * (packets from the relay must belong to that peer).
   *
   * @example
   * ```ts
   * // table.dispatch(classifyPacket(bytes), { kind: "relay" }, sourcePeerId);
   * ```
   */
  dispatch(packet: InboundPacket | undefined, source: PacketSource, relayPeer?: string): void {
    if (!packet) return;
    switch (packet.kind) {
      case "punch":
        if (source.kind !== "udp" || packet.to !== this.#ctx.identity.id) return;
        this.#links.get(packet.from)?.punchReceived(source.address);
        return;
      case "handshake-init":
        if (relayPeer !== undefined && relayPeer !== packet.sender) return;
        if (!this.#links.has(packet.sender)) return;
        void this.#responder.respond(packet.bytes).then((accepted) => {
          if (!accepted) return;
          const link = this.#links.get(accepted.remoteId);
          if (!link) {
            if (accepted.isNew) {
              accepted.session.close();
              this.#indexes.delete(accepted.session.localIndex);
            }
            return;
          }
          this.#indexes.set(accepted.session.localIndex, link);
          link.acceptHandshake(accepted, source);
          // Not used (a tie, a closed link): a resend of this INIT gets a fresh answer.
          if (accepted.session.closed) this.#responder.decline(accepted.session);
        }, (error) => this.#ctx.log?.(`handshake failed: ${error}`));
        return;
      case "handshake-response": {
        const link = this.#indexes.get(packet.receiverIndex);
        if (!link || (relayPeer !== undefined && relayPeer !== link.peer)) return;
        void link.completeHandshake(packet.bytes, source);
        return;
      }
      case "transport": {
        const link = this.#indexes.get(packet.receiverIndex);
        if (!link || (relayPeer !== undefined && relayPeer !== link.peer)) return;
        try {
          link.transportReceived(packet.bytes, source);
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
   * Runs every link's timers now (each link also runs them itself, by deadline); an error in one
   * link never stops the others.
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
