/**
 * An allocation's permissions and channel bindings (RFC 8656 sections 9 and 12): plain tables
 * that take the time as an argument, so expiry is a comparison and the tests drive time.
 * Permissions last 300 s and are keyed by peer IP alone; channel bindings last 600 s and map a
 * channel number to a peer transport address both ways.
 *
 * @module
 */

/** Permission lifetime (RFC 8656 section 9). */
export const PERMISSION_LIFETIME_MS = 300_000;
/** Channel binding lifetime (RFC 8656 section 12). */
export const CHANNEL_LIFETIME_MS = 600_000;

/** A peer transport address. */
export interface PeerAddress {
  /** Literal IP (IPv4 unmapped). */
  readonly hostname: string;
  /** Port. */
  readonly port: number;
}

/** A channel binding. */
export interface ChannelBinding {
  /** The channel number. */
  readonly channel: number;
  /** The peer. */
  readonly peer: PeerAddress;
  /** Expiry (ms on the runtime's clock). */
  expiresAt: number;
}

/** Why {@linkcode PeerTables.bindChannel} refused. */
export type BindRefusal = "channel-in-use" | "peer-has-other-channel" | "too-many";

/**
 * The key of a peer transport address in {@linkcode PeerTables}.
 *
 * @example
 * ```ts
 * import { peerKey } from "./permissions.ts";
 * console.log(peerKey("192.0.2.1", 5)); // "192.0.2.1 5"
 * ```
 */
export function peerKey(hostname: string, port: number): string {
  return `${hostname} ${port}`;
}

/**
 * Permissions and channel bindings of one allocation, bounded in size.
 *
 * @example
 * ```ts
 * import { PeerTables } from "./permissions.ts";
 * const tables = new PeerTables(16, 16);
 * tables.permit("192.0.2.1", 0);
 * console.log(tables.permitted("192.0.2.1", 299_999), tables.permitted("192.0.2.1", 300_000)); // true false
 * ```
 */
export class PeerTables {
  readonly #permissions = new Map<string, number>();
  readonly #byChannel = new Map<number, ChannelBinding>();
  readonly #byPeer = new Map<string, ChannelBinding>();
  readonly #maxPermissions: number;
  readonly #maxChannels: number;

  /**
   * Creates empty tables holding at most the given counts.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * new PeerTables(256, 256);
   * ```
   */
  constructor(maxPermissions: number, maxChannels: number) {
    this.#maxPermissions = maxPermissions;
    this.#maxChannels = maxChannels;
  }

  /** Number of permissions held (expired ones included until purged). */
  get permissionCount(): number {
    return this.#permissions.size;
  }

  /** Number of channel bindings held. */
  get channelCount(): number {
    return this.#byChannel.size;
  }

  /**
   * Whether `count` new permissions (for IPs not yet permitted) would fit.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * console.log(new PeerTables(1, 1).hasRoomFor(["192.0.2.1", "192.0.2.2"], 0)); // false
   * ```
   */
  hasRoomFor(hostnames: readonly string[], now: number): boolean {
    this.purge(now);
    const fresh = new Set(hostnames.filter((h) => !this.#permissions.has(h)));
    return this.#permissions.size + fresh.size <= this.#maxPermissions;
  }

  /**
   * Installs or refreshes the permission for a peer IP.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * new PeerTables(4, 4).permit("2001:db8::1", 0);
   * ```
   */
  permit(hostname: string, now: number): void {
    this.#permissions.set(hostname, now + PERMISSION_LIFETIME_MS);
  }

  /**
   * Whether a permission for the IP is installed at `now`.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * console.log(new PeerTables(4, 4).permitted("192.0.2.1", 0)); // false
   * ```
   */
  permitted(hostname: string, now: number): boolean {
    const expiresAt = this.#permissions.get(hostname);
    return expiresAt !== undefined && expiresAt > now;
  }

  /**
   * Binds (or refreshes) `channel` to `peer`; also installs or refreshes the peer's permission.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * const tables = new PeerTables(4, 4);
   * console.log(tables.bindChannel(0x4000, { hostname: "192.0.2.1", port: 5 }, 0)); // undefined
   * console.log(tables.bindChannel(0x4000, { hostname: "192.0.2.2", port: 5 }, 0)); // "channel-in-use"
   * ```
   */
  bindChannel(channel: number, peer: PeerAddress, now: number): BindRefusal | undefined {
    this.purge(now);
    const key = peerKey(peer.hostname, peer.port);
    const existing = this.#byChannel.get(channel);
    if (existing !== undefined && peerKey(existing.peer.hostname, existing.peer.port) !== key) {
      return "channel-in-use";
    }
    const other = this.#byPeer.get(key);
    if (other !== undefined && other.channel !== channel) return "peer-has-other-channel";
    if (existing === undefined) {
      if (this.#byChannel.size >= this.#maxChannels) return "too-many";
      if (!this.#permissions.has(peer.hostname) && this.#permissions.size >= this.#maxPermissions) {
        return "too-many";
      }
      const binding: ChannelBinding = {
        channel,
        peer: { hostname: peer.hostname, port: peer.port },
        expiresAt: now + CHANNEL_LIFETIME_MS,
      };
      this.#byChannel.set(channel, binding);
      this.#byPeer.set(key, binding);
    } else {
      existing.expiresAt = now + CHANNEL_LIFETIME_MS;
    }
    this.permit(peer.hostname, now);
    return undefined;
  }

  /**
   * The live binding of a channel number, if any.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * console.log(new PeerTables(4, 4).channel(0x4000, 0)); // undefined
   * ```
   */
  channel(channel: number, now: number): ChannelBinding | undefined {
    const binding = this.#byChannel.get(channel);
    return binding !== undefined && binding.expiresAt > now ? binding : undefined;
  }

  /**
   * The live channel bound to a peer transport address, if any.
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * console.log(new PeerTables(4, 4).channelOf("192.0.2.1", 5, 0)); // undefined
   * ```
   */
  channelOf(hostname: string, port: number, now: number): ChannelBinding | undefined {
    return this.channelOfKey(peerKey(hostname, port), now);
  }

  /**
   * As {@linkcode channelOf}, by {@linkcode peerKey} (callers on the hot path cache the key).
   *
   * @example
   * ```ts
   * import { PeerTables, peerKey } from "./permissions.ts";
   * console.log(new PeerTables(4, 4).channelOfKey(peerKey("192.0.2.1", 5), 0)); // undefined
   * ```
   */
  channelOfKey(key: string, now: number): ChannelBinding | undefined {
    const binding = this.#byPeer.get(key);
    return binding !== undefined && binding.expiresAt > now ? binding : undefined;
  }

  /**
   * Drops expired permissions and channel bindings. (An expired channel number stays unusable
   * for other peers until purged, which RFC 8656 section 12 allows: 5 minutes at least.)
   *
   * @example
   * ```ts
   * import { PeerTables } from "./permissions.ts";
   * new PeerTables(4, 4).purge(1_000_000);
   * ```
   */
  purge(now: number): void {
    for (const [hostname, expiresAt] of this.#permissions) {
      if (expiresAt <= now) this.#permissions.delete(hostname);
    }
    for (const [channel, binding] of this.#byChannel) {
      // Keep a number reserved 5 minutes past expiry (RFC 8656 section 12).
      if (binding.expiresAt + PERMISSION_LIFETIME_MS <= now) {
        this.#byChannel.delete(channel);
        this.#byPeer.delete(peerKey(binding.peer.hostname, binding.peer.port));
      }
    }
  }
}
