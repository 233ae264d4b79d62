/**
 * Address prefixes for per-source limits. Counting per /128 let one IPv6 subscriber (who gets a
 * whole /64, 2^64 addresses) open 6,400 connections from 100 addresses (issue 11); counting per
 * IPv4 /32 let an attacker with a handful of addresses in one /24 multiply its share. A source is
 * therefore counted under two prefixes: IPv4 /32 and /24, IPv6 /64 and /48 (the usual end-site
 * and site allocations, RFC 6177). A limit on the narrow prefix stops one host; a larger limit on
 * the wide one stops a neighbourhood of hosts acting together, without locking out a NAT's many
 * users (they share one /32 anyway).
 *
 * @module
 */
import { ipv6GroupsOf } from "../shared/signaling/ipv6.ts";

/** The two prefixes a source is counted under: narrow (/32, /64) and wide (/24, /48). */
export interface SourcePrefixes {
  /** IPv4 /32 or IPv6 /64, as a map key (`4/203.0.113.7`, `6/2001:db8:0:1`). */
  readonly narrow: string;
  /** IPv4 /24 or IPv6 /48 (`4/203.0.113`, `6/2001:db8:0`). */
  readonly wide: string;
}

/**
 * Expands an IPv6 address to its eight 16-bit groups (lower-case hex without leading zeros), or
 * null when it is not an IPv6 literal. An embedded IPv4 tail (`::ffff:1.2.3.4`) is converted.
 *
 * @example
 * ```ts
 * console.log(ipv6Groups("2001:db8::1")); // ["2001","db8","0","0","0","0","0","1"]
 * ```
 */
export function ipv6Groups(host: string): string[] | null {
  return ipv6GroupsOf(host)?.map((g) => g.toString(16)) ?? null;
}

/**
 * The prefixes `host` (an IPv4 or IPv6 literal; IPv4-mapped IPv6 counts as IPv4) is counted
 * under. Anything else (a name in a test network) is its own narrow and wide prefix.
 *
 * @example
 * ```ts
 * console.log(sourcePrefixes("203.0.113.7")); // { narrow: "4/203.0.113.7", wide: "4/203.0.113" }
 * console.log(sourcePrefixes("2001:db8:0:1::5").narrow); // "6/2001:db8:0:1"
 * ```
 */
export function sourcePrefixes(host: string): SourcePrefixes {
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(host);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    return { narrow: `4/${a}.${b}.${c}.${d}`, wide: `4/${a}.${b}.${c}` };
  }
  const groups = ipv6Groups(host);
  if (groups === null) return { narrow: `?/${host}`, wide: `?/${host}` };
  if (
    groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff"
  ) {
    const n = (parseInt(groups[6], 16) << 16 >>> 0) + parseInt(groups[7], 16);
    return sourcePrefixes(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  return { narrow: `6/${groups.slice(0, 4).join(":")}`, wide: `6/${groups.slice(0, 3).join(":")}` };
}

/** Which limit a {@linkcode PrefixCounter} refused on. */
export type PrefixLimitHit = "narrow" | "wide";

/**
 * Counts something (connections, registrations) per narrow and wide prefix, with a limit for
 * each. Entries vanish when their count returns to 0, so the table holds only live sources.
 *
 * @example
 * ```ts
 * const counter = new PrefixCounter(2, 3);
 * console.log(counter.tryAdd("192.0.2.1"), counter.tryAdd("192.0.2.1")); // null null
 * console.log(counter.tryAdd("192.0.2.1")); // "narrow"
 * console.log(counter.tryAdd("192.0.2.2"), counter.tryAdd("192.0.2.3")); // null "wide"
 * counter.remove("192.0.2.1");
 * ```
 */
export class PrefixCounter {
  readonly #narrowLimit: number;
  readonly #wideLimit: number;
  readonly #counts = new Map<string, number>();

  /**
   * @param narrowLimit Most per /32 or /64.
   * @param wideLimit Most per /24 or /48.
   */
  constructor(narrowLimit: number, wideLimit: number) {
    this.#narrowLimit = narrowLimit;
    this.#wideLimit = wideLimit;
  }

  /** Counts one more for `host` unless a limit would be passed; returns which one, or null. */
  tryAdd(host: string): PrefixLimitHit | null {
    const { narrow, wide } = sourcePrefixes(host);
    if ((this.#counts.get(narrow) ?? 0) >= this.#narrowLimit) return "narrow";
    if (wide !== narrow && (this.#counts.get(wide) ?? 0) >= this.#wideLimit) return "wide";
    this.#counts.set(narrow, (this.#counts.get(narrow) ?? 0) + 1);
    if (wide !== narrow) this.#counts.set(wide, (this.#counts.get(wide) ?? 0) + 1);
    return null;
  }

  /** Gives one back for `host`. */
  remove(host: string): void {
    const { narrow, wide } = sourcePrefixes(host);
    for (const key of wide === narrow ? [narrow] : [narrow, wide]) {
      const count = (this.#counts.get(key) ?? 1) - 1;
      if (count <= 0) this.#counts.delete(key);
      else this.#counts.set(key, count);
    }
  }

  /** The count under `host`'s narrow and wide prefixes. */
  countOf(host: string): { narrow: number; wide: number } {
    const { narrow, wide } = sourcePrefixes(host);
    return { narrow: this.#counts.get(narrow) ?? 0, wide: this.#counts.get(wide) ?? 0 };
  }

  /** Prefixes tracked now (table size). */
  get size(): number {
    return this.#counts.size;
  }
}
