/**
 * A per-source limit on STUN answers (issue 11): forged-source Binding requests were answered to
 * the forged address at about 60,000/s, making the server a reflector. Each source is counted
 * under its narrow prefix (IPv4 /32, IPv6 /64) and its wide one (/24, /48), see
 * `address_prefix.ts`, with a token bucket each, plus one global bucket for floods from random
 * sources. The table is bounded: when full, the least recently used entry is dropped (a dropped
 * source starts again with a full burst, which the global bucket still caps).
 *
 * Defaults: 20 answers/s (burst 40) per /32 or /64, 200/s (burst 400) per /24 or /48, 20,000/s
 * in total, 16,384 table entries (about 1.5 MB). A client sends one Binding every 15 s and a
 * handful while it punches, far below. Loopback sources (127.0.0.0/8, ::1) are not limited: they
 * cannot be forged from outside the host, and the benchmarks measure the service over loopback.
 *
 * @module
 */
import { sourcePrefixes } from "./address_prefix.ts";

interface Bucket {
  tokens: number;
  at: number;
}

/** Settings of a {@linkcode SourceRateLimiter}; every field has a default. */
export interface SourceRateLimitOptions {
  /** Answers per second per /32 or /64 (default 20). */
  narrowPerSecond?: number;
  /** Burst per /32 or /64 (default 40). */
  narrowBurst?: number;
  /** Answers per second per /24 or /48 (default 200). */
  widePerSecond?: number;
  /** Burst per /24 or /48 (default 400). */
  wideBurst?: number;
  /** Answers per second in total (default 20,000). */
  globalPerSecond?: number;
  /** Most prefixes tracked (default 16,384). */
  maxEntries?: number;
}

/** Why {@linkcode SourceRateLimiter.allow} refused. */
export type RateLimitHit = "narrow" | "wide" | "global";

/**
 * Token buckets per source prefix, in a bounded LRU table.
 *
 * @example
 * ```ts
 * let now = 0;
 * const limiter = new SourceRateLimiter(() => now, { narrowPerSecond: 1, narrowBurst: 2 });
 * console.log(limiter.allow("192.0.2.1"), limiter.allow("192.0.2.1")); // null null
 * console.log(limiter.allow("192.0.2.1")); // "narrow"
 * now += 1000;
 * console.log(limiter.allow("192.0.2.1")); // null
 * ```
 */
export class SourceRateLimiter {
  readonly #clock: () => number;
  readonly #narrow: [number, number];
  readonly #wide: [number, number];
  readonly #globalRate: number;
  readonly #maxEntries: number;
  readonly #table = new Map<string, Bucket>();
  readonly #global: Bucket;

  /**
   * @param clock Milliseconds (the runtime's clock).
   * @param options Rates, bursts and table size.
   */
  constructor(clock: () => number, options: SourceRateLimitOptions = {}) {
    this.#clock = clock;
    this.#narrow = [options.narrowPerSecond ?? 20, options.narrowBurst ?? 40];
    this.#wide = [options.widePerSecond ?? 200, options.wideBurst ?? 400];
    this.#globalRate = options.globalPerSecond ?? 20_000;
    this.#maxEntries = Math.max(2, options.maxEntries ?? 16_384);
    this.#global = { tokens: this.#globalRate, at: clock() };
  }

  /** Prefixes tracked now. */
  get size(): number {
    return this.#table.size;
  }

  /**
   * Takes one answer's worth for `host` (an IPv4/IPv6 literal) from every bucket it counts
   * under; returns null when allowed, else which limit refused (then nothing is taken).
   */
  allow(host: string): RateLimitHit | null {
    if (host === "::1" || host.startsWith("127.")) return null;
    const now = this.#clock();
    const { narrow, wide } = sourcePrefixes(host);
    const n = this.#bucket(narrow, this.#narrow, now);
    const w = wide === narrow ? null : this.#bucket(wide, this.#wide, now);
    refill(this.#global, this.#globalRate, this.#globalRate, now);
    if (n.tokens < 1) return "narrow";
    if (w !== null && w.tokens < 1) return "wide";
    if (this.#global.tokens < 1) return "global";
    n.tokens--;
    if (w !== null) w.tokens--;
    this.#global.tokens--;
    return null;
  }

  #bucket(key: string, [rate, burst]: [number, number], now: number): Bucket {
    let bucket = this.#table.get(key);
    if (bucket === undefined) {
      bucket = { tokens: burst, at: now };
      while (this.#table.size >= this.#maxEntries) {
        this.#table.delete(this.#table.keys().next().value!);
      }
    } else {
      this.#table.delete(key); // re-insert: most recently used last
      refill(bucket, rate, burst, now);
    }
    this.#table.set(key, bucket);
    return bucket;
  }
}

function refill(bucket: Bucket, rate: number, burst: number, now: number): void {
  const elapsed = now - bucket.at;
  bucket.at = now;
  if (elapsed > 0) bucket.tokens = Math.min(burst, bucket.tokens + elapsed * rate / 1000);
}
