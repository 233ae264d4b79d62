/**
 * The receiver's memory of recently received message IDs (the 64-bit wire IDs of
 * {@linkcode encodeEnvelope}), per peer and bounded, so a message sent again (after a channel
 * failure, a re-handshake or a restart of either side) is printed at most once.
 *
 * @module
 */

/** Default IDs remembered per peer. */
export const DEFAULT_RECEIVED_PER_PEER = 4096;
/** Default peers remembered. */
export const DEFAULT_RECEIVED_PEERS = 256;

/**
 * A bounded set of received message IDs per peer (oldest forgotten first).
 *
 * @example
 * ```ts
 * const window = new ReceivedWindow();
 * console.log(window.firstTime("peer", "0000000000000001")); // true
 * console.log(window.firstTime("peer", "0000000000000001")); // false
 * ```
 */
export class ReceivedWindow {
  readonly #perPeer: number;
  readonly #maxPeers: number;
  readonly #peers = new Map<string, Set<string>>();

  /**
   * Creates an empty window.
   *
   * @param perPeer IDs remembered per peer.
   * @param maxPeers Peers remembered (the least recently active is forgotten).
   */
  constructor(perPeer = DEFAULT_RECEIVED_PER_PEER, maxPeers = DEFAULT_RECEIVED_PEERS) {
    this.#perPeer = perPeer;
    this.#maxPeers = maxPeers;
  }

  /**
   * Records `uid` from `peer`; true when it was not seen before (deliver it), false for a
   * duplicate (drop it).
   *
   * @example
   * ```ts
   * new ReceivedWindow().firstTime("p", "00"); // true
   * ```
   */
  firstTime(peer: string, uid: string): boolean {
    let ids = this.#peers.get(peer);
    if (ids?.has(uid)) return false;
    if (!ids) {
      ids = new Set();
      if (this.#peers.size >= this.#maxPeers) {
        this.#peers.delete(this.#peers.keys().next().value!);
      }
    } else {
      this.#peers.delete(peer); // most recently active last
    }
    this.#peers.set(peer, ids);
    ids.add(uid);
    if (ids.size > this.#perPeer) ids.delete(ids.values().next().value!);
    return true;
  }

  /**
   * The remembered IDs, oldest first per peer (for persistence).
   *
   * @example
   * ```ts
   * new ReceivedWindow().snapshot(); // {}
   * ```
   */
  snapshot(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [peer, ids] of this.#peers) out[peer] = [...ids];
    return out;
  }

  /**
   * Restores a {@linkcode ReceivedWindow.snapshot} (bounded again on the way in).
   *
   * @example
   * ```ts
   * new ReceivedWindow().restore({ p: ["00"] });
   * ```
   */
  restore(snapshot: Record<string, string[]>): void {
    for (const [peer, ids] of Object.entries(snapshot)) {
      if (!Array.isArray(ids)) continue;
      for (const uid of ids.slice(-this.#perPeer)) {
        if (typeof uid === "string") this.firstTime(peer, uid);
      }
    }
  }
}
