/**
 * The client's budget for packets to addresses that never answered (issue 11, "no packet
 * cannon"). An introduction names candidate addresses the client then punches and probes; a
 * stranger who fakes them (a third party's address, `connect` every 4 s) made a victim's client
 * send 188 PUNCH packets a second per session, 3,729/s from 20 sessions, about 380 times the
 * attacker's bytes. In the spirit of ICE consent freshness (RFC 7675: nothing but consent checks
 * goes to an address until it answered, and consent lapses 30 s after the last answer):
 *
 * - an address is *verified* while an authenticated packet (handshake or session) came from it
 *   within the last {@linkcode ProbeBudgetOptions.consentMs} (30 s); packets to it are never
 *   limited here;
 * - to any other address only small packets go (at most
 *   {@linkcode ProbeBudgetOptions.maxPacketBytes}, 200: PUNCH 41 bytes, HANDSHAKE_INIT 149, a
 *   sealed PATH_PROBE about 40) — never data;
 * - each unverified address has a bucket of 32 packets (a punch burst of 2.5 s at 80 ms), refilled
 *   one packet per 4 s during its first 30 s, then one per 30 s: an address that stays silent is
 *   in effect no longer probed;
 * - all unverified addresses together share one bucket of 256 packets refilled at 20 packets/s:
 *   whatever the introductions say, at most 20 × 200 bytes = 4 kB/s (typically 20 × 149 = 3 kB/s)
 *   go to addresses that never answered, after a first burst of at most 51 kB.
 *
 * Measured on virtual time (`probe_budget_test.ts`): an attacker reachable only through the relay
 * whose introductions name 10 fake candidates, connecting again every 4 s for 60 s, got 40
 * packets sent to each fake address (736 each without the budget), 238 bytes/s in all; it is
 * still served over the relay, and another peer connects directly meanwhile.
 *
 * Pure logic: the caller passes the clock.
 *
 * @module
 */
import type { UdpAddress } from "./path_manager.ts";

/** Settings of a {@linkcode ProbeBudget}; every field has a default. */
export interface ProbeBudgetOptions {
  /** Packets an unverified address may get at once (default 32). */
  addressBurst?: number;
  /** One more packet per this time to an unverified address in its first window, ms (default 4000). */
  addressRefillMs?: number;
  /** Length of that first window, from the first packet, ms (default 30,000). */
  silentAfterMs?: number;
  /** One more packet per this time once the address stayed silent that long, ms (default 30,000). */
  silentRefillMs?: number;
  /** Packets all unverified addresses may get at once (default 256). */
  globalBurst?: number;
  /** Packets per second all unverified addresses may get (default 20). */
  globalPerSecond?: number;
  /** How long an answer verifies an address (RFC 7675 consent), ms (default 30,000). */
  consentMs?: number;
  /** Largest packet sent to an unverified address, bytes (default 200). */
  maxPacketBytes?: number;
  /** Most addresses remembered (default 4096; the oldest unverified one is forgotten first). */
  maxAddresses?: number;
}

/**
 * What {@linkcode ProbeBudget.admit} decided: `verified` and `allowed` mean send; the others mean
 * drop the packet.
 */
export type ProbeVerdict =
  | "verified"
  | "allowed"
  | "too-large"
  | "address-exhausted"
  | "budget-exhausted";

interface AddressState {
  /** Verified until (local ms); -Infinity when it never answered. */
  verifiedUntil: number;
  /** Tokens left in the address's bucket. */
  tokens: number;
  /** When the bucket was last refilled. */
  refilledAt: number;
  /** First packet since the address was (last) unverified. */
  firstAt: number;
}

/** Counters of a {@linkcode ProbeBudget}. */
export interface ProbeBudgetStats {
  /** Packets allowed to unverified addresses. */
  allowed: number;
  /** Packets dropped (any reason). */
  dropped: number;
  /** Of those, larger than `maxPacketBytes`. */
  tooLarge: number;
}

function keyOf(address: UdpAddress): string {
  return `${address.host}|${address.port}`;
}

/**
 * Decides which packets may go to which address.
 *
 * @example
 * ```ts
 * const budget = new ProbeBudget({ addressBurst: 2 });
 * const victim = { host: "192.0.2.9", port: 4000 };
 * budget.admit(victim, 41, 0); // "allowed"
 * budget.admit(victim, 41, 0); // "allowed"
 * budget.admit(victim, 41, 0); // "address-exhausted"
 * budget.admit(victim, 1200, 0); // "too-large"
 * budget.answered(victim, 10);
 * budget.admit(victim, 1200, 20); // "verified"
 * ```
 */
export class ProbeBudget {
  readonly #addressBurst: number;
  readonly #addressRefillMs: number;
  readonly #silentAfterMs: number;
  readonly #silentRefillMs: number;
  readonly #globalBurst: number;
  readonly #globalPerMs: number;
  readonly #consentMs: number;
  readonly #maxPacketBytes: number;
  readonly #maxAddresses: number;
  readonly #addresses = new Map<string, AddressState>();
  #globalTokens: number;
  #globalRefilledAt = -Infinity;
  /** The last address admitted as verified, and its state (the bulk path's fast lane). */
  #lastAddress: UdpAddress | undefined;
  #lastState: AddressState | undefined;
  readonly #stats: ProbeBudgetStats = { allowed: 0, dropped: 0, tooLarge: 0 };

  /**
   * Creates a budget (every bucket full).
   *
   * @example
   * ```ts
   * const budget = new ProbeBudget({ globalPerSecond: 10 });
   * ```
   */
  constructor(options: ProbeBudgetOptions = {}) {
    this.#addressBurst = options.addressBurst ?? 32;
    this.#addressRefillMs = options.addressRefillMs ?? 4000;
    this.#silentAfterMs = options.silentAfterMs ?? 30_000;
    this.#silentRefillMs = options.silentRefillMs ?? 30_000;
    this.#globalBurst = options.globalBurst ?? 256;
    this.#globalPerMs = (options.globalPerSecond ?? 20) / 1000;
    this.#consentMs = options.consentMs ?? 30_000;
    this.#maxPacketBytes = options.maxPacketBytes ?? 200;
    this.#maxAddresses = Math.max(1, options.maxAddresses ?? 4096);
    this.#globalTokens = this.#globalBurst;
  }

  /** Counters since creation. */
  get stats(): Readonly<ProbeBudgetStats> {
    return this.#stats;
  }

  /**
   * Whether a packet of `bytes` may go to `to` now (and, if so, charges it).
   *
   * @example
   * ```ts
   * new ProbeBudget().admit({ host: "192.0.2.1", port: 9 }, 41, 0); // "allowed"
   * ```
   */
  admit(to: UdpAddress, bytes: number, now: number): ProbeVerdict {
    if (to === this.#lastAddress && this.#lastState!.verifiedUntil > now) return "verified";
    const key = keyOf(to);
    let state = this.#addresses.get(key);
    if (state && state.verifiedUntil > now) {
      this.#lastAddress = to;
      this.#lastState = state;
      return "verified";
    }
    if (bytes > this.#maxPacketBytes) return this.#drop(true);
    if (state && state.verifiedUntil !== -Infinity) {
      // Consent lapsed: a fresh start, as for a new address (it did answer once).
      this.#addresses.delete(key);
      state = undefined;
    }
    if (!state) {
      state = {
        verifiedUntil: -Infinity,
        tokens: this.#addressBurst,
        refilledAt: now,
        firstAt: now,
      };
      this.#remember(key, state);
    }
    this.#refillAddress(state, now);
    if (state.tokens < 1) return this.#drop(false, "address-exhausted");
    this.#refillGlobal(now);
    if (this.#globalTokens < 1) return this.#drop(false, "budget-exhausted");
    state.tokens -= 1;
    this.#globalTokens -= 1;
    this.#stats.allowed++;
    return "allowed";
  }

  /**
   * An authenticated packet came from `from`: it is verified for `consentMs`.
   *
   * @example
   * ```ts
   * new ProbeBudget().answered({ host: "192.0.2.1", port: 9 }, 0);
   * ```
   */
  answered(from: UdpAddress, now: number): void {
    const key = keyOf(from);
    const state = this.#addresses.get(key);
    if (state) {
      state.verifiedUntil = now + this.#consentMs;
      // Most recently heard of: the last to be forgotten.
      this.#addresses.delete(key);
      this.#addresses.set(key, state);
      return;
    }
    this.#remember(key, {
      verifiedUntil: now + this.#consentMs,
      tokens: this.#addressBurst,
      refilledAt: now,
      firstAt: now,
    });
  }

  /**
   * True while `address` is verified.
   *
   * @example
   * ```ts
   * new ProbeBudget().verified({ host: "192.0.2.1", port: 9 }, 0); // false
   * ```
   */
  verified(address: UdpAddress, now: number): boolean {
    const state = this.#addresses.get(keyOf(address));
    return state !== undefined && state.verifiedUntil > now;
  }

  #drop(tooLarge: boolean, verdict: ProbeVerdict = "too-large"): ProbeVerdict {
    this.#stats.dropped++;
    if (tooLarge) this.#stats.tooLarge++;
    return verdict;
  }

  #refillAddress(state: AddressState, now: number): void {
    // One packet per addressRefillMs in the first window, then one per silentRefillMs.
    const windowEnd = state.firstAt + this.#silentAfterMs;
    let added = 0;
    let from = state.refilledAt;
    if (from < windowEnd) {
      const until = Math.min(now, windowEnd);
      added += (until - from) / this.#addressRefillMs;
      from = until;
    }
    if (now > from) added += (now - from) / this.#silentRefillMs;
    state.tokens = Math.min(this.#addressBurst, state.tokens + added);
    state.refilledAt = now;
  }

  #refillGlobal(now: number): void {
    if (this.#globalRefilledAt !== -Infinity) {
      this.#globalTokens = Math.min(
        this.#globalBurst,
        this.#globalTokens + (now - this.#globalRefilledAt) * this.#globalPerMs,
      );
    }
    this.#globalRefilledAt = now;
  }

  #remember(key: string, state: AddressState): void {
    this.#addresses.set(key, state);
    if (this.#addresses.size <= this.#maxAddresses) return;
    // Forget the oldest address that is not verified (else the oldest).
    let victim: string | undefined;
    let scanned = 0;
    for (const [candidate, value] of this.#addresses) {
      if (value.verifiedUntil === -Infinity) {
        victim = candidate;
        break;
      }
      if (++scanned >= 64) break;
    }
    victim ??= this.#addresses.keys().next().value!;
    const removed = this.#addresses.get(victim);
    this.#addresses.delete(victim);
    if (removed === this.#lastState) {
      this.#lastAddress = undefined;
      this.#lastState = undefined;
    }
  }
}
