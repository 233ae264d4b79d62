/**
 * The server's side of STUN freshness (`shared/stun/freshness.ts`): per USERNAME, the highest
 * P2P-FRESHNESS counter accepted and the last few transaction IDs. A request is fresh when its
 * counter is above the last (or, from a client that never sent a counter, when its transaction
 * ID is not among the recent ones); anything else is a replay and must change nothing. Once a
 * USERNAME has sent a counter, requests without one are replays too. The table is bounded (least
 * recently used first out); entries of closed sessions age out, their USERNAMEs are never reused.
 *
 * @module
 */

interface UserState {
  last: bigint;
  ids: string[];
  /** The last accepted request's transaction ID and source, for retransmissions. */
  lastId: string;
  lastSource: string;
}

/**
 * The verdict on one authenticated request: `fresh` (act on it), `retransmit` (the last accepted
 * request again from the same source: answer it, it changes nothing), `replayed` (drop it).
 */
export type FreshnessVerdict = "fresh" | "retransmit" | "replayed";

/**
 * Tracks freshness per USERNAME.
 *
 * @example
 * ```ts
 * const fresh = new StunFreshness();
 * console.log(fresh.check("u", new Uint8Array(12), 5n, "192.0.2.1:4000")); // "fresh"
 * console.log(fresh.check("u", new Uint8Array(12), 5n, "192.0.2.1:4000")); // "retransmit"
 * console.log(fresh.check("u", new Uint8Array(12), 5n, "203.0.113.9:5000")); // "replayed"
 * ```
 */
export class StunFreshness {
  readonly #users = new Map<string, UserState>();
  readonly #maxUsers: number;
  readonly #recentIds: number;

  /**
   * @param maxUsers Most USERNAMEs tracked (default 65,536: above the default 10,000 clients).
   * @param recentIds Transaction IDs remembered per USERNAME without a counter (default 8).
   */
  constructor(maxUsers = 65_536, recentIds = 8) {
    this.#maxUsers = Math.max(1, maxUsers);
    this.#recentIds = Math.max(1, recentIds);
  }

  /** USERNAMEs tracked. */
  get size(): number {
    return this.#users.size;
  }

  /**
   * Judges a request that passed MESSAGE-INTEGRITY for `username`, and remembers it when fresh.
   * `counter` is its P2P-FRESHNESS value (undefined when absent); `source` its `host:port`.
   */
  check(
    username: string,
    transactionId: Uint8Array,
    counter: bigint | undefined,
    source: string,
  ): FreshnessVerdict {
    const id = transactionId.toHex();
    let state = this.#users.get(username);
    if (state === undefined) {
      state = { last: -1n, ids: [], lastId: "", lastSource: "" };
      while (this.#users.size >= this.#maxUsers) {
        this.#users.delete(this.#users.keys().next().value!);
      }
    } else {
      this.#users.delete(username);
    }
    this.#users.set(username, state);
    if (id === state.lastId) return source === state.lastSource ? "retransmit" : "replayed";
    if (counter !== undefined) {
      if (counter <= state.last) return "replayed";
      state.last = counter;
    } else {
      if (state.last >= 0n || state.ids.includes(id)) return "replayed";
      state.ids.push(id);
      if (state.ids.length > this.#recentIds) state.ids.shift();
    }
    state.lastId = id;
    state.lastSource = source;
    return "fresh";
  }

  /** Forgets a USERNAME (its session ended). */
  forget(username: string): void {
    this.#users.delete(username);
  }
}
