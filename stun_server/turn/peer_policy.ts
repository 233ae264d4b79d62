/**
 * Which peer addresses a TURN relay may send to. A public TURN server that relays to its own
 * loopback, to private networks behind it or to link-local addresses is an open door into
 * them (coturn denies these with `no-loopback-peers`, `denied-peer-ip`; RFC 8656 section 21.3.4),
 * so they are denied unless explicitly allowed: loopback by `--allow-loopback-peers` (tests, as
 * coturn's flag), any range by `--turn-allow-peer CIDR`.
 *
 * @module
 */
import { parseIpAddress } from "../../shared/stun/mod.ts";

/** An address range: network bytes and prefix length. */
export interface AddressRange {
  /** Network address bytes (4 or 16). */
  readonly bytes: Uint8Array;
  /** Prefix length in bits. */
  readonly prefix: number;
}

/**
 * Parses `ADDRESS/PREFIX` (or a bare address as a /32 or /128).
 *
 * @throws {RangeError} on anything else.
 *
 * @example
 * ```ts
 * import { parseCidr } from "./peer_policy.ts";
 * console.log(parseCidr("10.0.0.0/8").prefix); // 8
 * ```
 */
export function parseCidr(text: string): AddressRange {
  const [address, prefixText, extra] = text.split("/");
  const bytes = parseIpAddress(address ?? "");
  if (bytes === undefined || extra !== undefined) throw new RangeError(`"${text}" is not a CIDR`);
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) {
    throw new RangeError(`"${text}": prefix must be 0..${max}`);
  }
  return { bytes, prefix };
}

/**
 * Whether `address` (bytes of the same family) lies in `range`.
 *
 * @example
 * ```ts
 * import { inRange, parseCidr } from "./peer_policy.ts";
 * console.log(inRange(Uint8Array.of(10, 1, 2, 3), parseCidr("10.0.0.0/8"))); // true
 * ```
 */
export function inRange(address: Uint8Array, range: AddressRange): boolean {
  if (address.length !== range.bytes.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i] & mask) !== (range.bytes[i] & mask)) return false;
  }
  return true;
}

/** Loopback ranges. */
export const LOOPBACK_RANGES: readonly AddressRange[] = ["127.0.0.0/8", "::1/128"].map(parseCidr);

/** Ranges denied by default besides loopback: private, link-local, unspecified, multicast... */
export const DENIED_RANGES: readonly AddressRange[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "::ffff:0:0/96",
  "64:ff9b::/96",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
].map(parseCidr);

/** Options of {@linkcode PeerPolicy}. */
export interface PeerPolicyOptions {
  /** Allow loopback peers (tests). Default false. */
  allowLoopback?: boolean;
  /** Ranges allowed even though denied by default. */
  allowed?: readonly AddressRange[];
  /** More ranges to deny. */
  denied?: readonly AddressRange[];
}

/**
 * Decides whether a peer address may be relayed to.
 *
 * @example
 * ```ts
 * import { PeerPolicy } from "./peer_policy.ts";
 * const policy = new PeerPolicy({ allowLoopback: true });
 * console.log(policy.allows("127.0.0.1"), policy.allows("10.0.0.1"), policy.allows("8.8.8.8"));
 * // true false true
 * ```
 */
export class PeerPolicy {
  readonly #denied: AddressRange[];
  readonly #allowed: readonly AddressRange[];

  /**
   * Creates the policy.
   *
   * @example
   * ```ts
   * import { PeerPolicy } from "./peer_policy.ts";
   * new PeerPolicy();
   * ```
   */
  constructor(options: PeerPolicyOptions = {}) {
    this.#denied = [...DENIED_RANGES, ...(options.denied ?? [])];
    if (options.allowLoopback !== true) this.#denied.push(...LOOPBACK_RANGES);
    this.#allowed = options.allowed ?? [];
  }

  /**
   * Whether `hostname` (a literal IP) may be a peer.
   *
   * @example
   * ```ts
   * import { PeerPolicy } from "./peer_policy.ts";
   * console.log(new PeerPolicy().allows("192.168.1.1")); // false
   * ```
   */
  allows(hostname: string): boolean {
    const bytes = parseIpAddress(hostname);
    if (bytes === undefined) return false;
    if (this.#allowed.some((range) => inRange(bytes, range))) return true;
    return !this.#denied.some((range) => inRange(bytes, range));
  }
}
