/**
 * The path state machine of one peer (magicsock style: explicit and observable).
 *
 * States: `connecting` (introduced, no path chosen yet), `direct` (a UDP address validated by an
 * authenticated PATH_PROBE / PATH_RESPONSE round trip), `relayed` (no direct path within
 * `connectTimeoutMs`, or the direct path went silent for `directTimeoutMs`; probing goes on at a
 * bounded rate so the path upgrades to direct when it can) and `disconnected`.
 *
 * Pure logic: the caller passes the clock, sends the probes it is told to, and reports what arrives.
 *
 * @module
 */
import { PunchScheduler, type PunchTiming } from "./punch_scheduler.ts";

/** A peer's path state. */
export type PathState = "connecting" | "direct" | "relayed" | "disconnected";

/** A UDP address. */
export interface UdpAddress {
  /** Literal IP address. */
  host: string;
  /** UDP port. */
  port: number;
}

/** Where a candidate address came from. */
export type CandidateSource = "public" | "local" | "reflexive";

/** Settings of a {@linkcode PathManager}. */
export interface PathManagerOptions extends PunchTiming {
  /** Time without a direct path before falling back to the relay, ms (default 3000). */
  connectTimeoutMs?: number;
  /** Silence on the direct path before it counts as dead, ms (default 8000). */
  directTimeoutMs?: number;
  /** Keepalive probe interval on a direct path, ms (default 2000). */
  keepaliveMs?: number;
  /** Most candidates kept (default 24). */
  maxCandidates?: number;
}

/** A state change reported by {@linkcode PathManager}. */
export interface PathChange {
  /** The new state. */
  state: PathState;
  /** The new path, as shown to users: `"udp ip:port"`, `"relay"` or null. */
  path: string | null;
  /** Why, for logs. */
  reason: string;
}

const MAX_OUTSTANDING_PROBES = 256;
const PROBE_LIFETIME_MS = 10_000;

/**
 * Formats a UDP address as `ip:port` (IPv6 in brackets).
 *
 * @example
 * ```ts
 * formatUdpAddress({ host: "::1", port: 9 }); // "[::1]:9"
 * ```
 */
export function formatUdpAddress(address: UdpAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

function sameAddress(a: UdpAddress, b: UdpAddress): boolean {
  return a.host === b.host && a.port === b.port;
}

/**
 * Tracks candidates, probes and the chosen path of one peer.
 *
 * @example
 * ```ts
 * const path = new PathManager(0);
 * path.introduce(0, [{ host: "10.0.0.2", port: 4000 }], 0);
 * const targets = path.probeTargets(0); // [{ host: "10.0.0.2", port: 4000 }]
 * path.recordProbe("n1", targets[0], 0);
 * path.probeResponse("n1", targets[0], 5); // "validated"
 * console.log(path.state); // "direct"
 * ```
 */
export class PathManager {
  #state: PathState = "connecting";
  #direct: UdpAddress | undefined;
  #lastDirectRx = 0;
  #lastKeepaliveAt = -Infinity;
  #connectingSince: number;
  #candidates: { address: UdpAddress; source: CandidateSource }[] = [];
  readonly #probes = new Map<string, { address: UdpAddress; sentAt: number }>();
  readonly #scheduler: PunchScheduler;
  readonly #connectTimeoutMs: number;
  readonly #directTimeoutMs: number;
  readonly #keepaliveMs: number;
  readonly #maxCandidates: number;
  #probeRttMs: number | undefined;
  #pendingChange: PathChange | undefined;

  /**
   * Creates the path state of a peer, `connecting` from `now`.
   *
   * @example
   * ```ts
   * const path = new PathManager(Date.now(), { connectTimeoutMs: 3000 });
   * ```
   */
  constructor(now: number, options: PathManagerOptions = {}) {
    this.#connectingSince = now;
    this.#scheduler = new PunchScheduler(Infinity, options);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.#directTimeoutMs = options.directTimeoutMs ?? 8000;
    this.#keepaliveMs = options.keepaliveMs ?? 2000;
    this.#maxCandidates = options.maxCandidates ?? 24;
  }

  /** The current state. */
  get state(): PathState {
    return this.#state;
  }

  /** The validated direct address, while `direct`. */
  get directAddress(): UdpAddress | undefined {
    return this.#state === "direct" ? this.#direct : undefined;
  }

  /** The path shown to users. */
  get path(): string | null {
    if (this.#state === "direct" && this.#direct) return `udp ${formatUdpAddress(this.#direct)}`;
    if (this.#state === "relayed") return "relay";
    return null;
  }

  /** Latest RTT measured by a probe round trip, ms. */
  get probeRttMs(): number | undefined {
    return this.#probeRttMs;
  }

  /** Current candidate addresses. */
  get candidates(): readonly UdpAddress[] {
    return this.#candidates.map((c) => c.address);
  }

  /**
   * Takes the state change that happened since the last call, if any.
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * path.takeChange(); // undefined
   * ```
   */
  takeChange(): PathChange | undefined {
    const change = this.#pendingChange;
    this.#pendingChange = undefined;
    return change;
  }

  /**
   * A (new) introduction: the peer's candidates and the local time to start punching.
   *
   * @example
   * ```ts
   * new PathManager(0).introduce(0, [{ host: "192.0.2.1", port: 5 }], 100);
   * ```
   */
  introduce(
    now: number,
    candidates: UdpAddress[],
    punchAt: number,
    source: CandidateSource = "public",
  ): void {
    const reflexive = this.#candidates.filter((c) => c.source === "reflexive");
    this.#candidates = [];
    for (const address of candidates) this.#add(address, source);
    for (const c of reflexive) this.#add(c.address, "reflexive");
    this.#scheduler.restart(Math.max(now, punchAt));
    if (this.#state === "disconnected") {
      this.#set("connecting", "introduced again");
      this.#connectingSince = now;
    }
  }

  /**
   * Adds an address the peer's packets came from (peer-reflexive). Returns true when it is new.
   *
   * @example
   * ```ts
   * new PathManager(0).addReflexive({ host: "198.18.0.9", port: 40000 }); // true
   * ```
   */
  addReflexive(address: UdpAddress): boolean {
    return this.#add(address, "reflexive");
  }

  #add(address: UdpAddress, source: CandidateSource): boolean {
    if (this.#candidates.some((c) => sameAddress(c.address, address))) return false;
    if (this.#candidates.length >= this.#maxCandidates) {
      // Reflexive addresses are the most telling: they replace the oldest reflexive one.
      if (source !== "reflexive") return false;
      const oldest = this.#candidates.findIndex((c) => c.source === "reflexive");
      if (oldest < 0) return false;
      this.#candidates.splice(oldest, 1);
    }
    this.#candidates.push({ address, source });
    return true;
  }

  /**
   * The addresses to probe now (possibly none). While `direct`, a keepalive to the direct address
   * every `keepaliveMs`; otherwise every candidate, at the punch scheduler's pace.
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * path.probeTargets(0); // []: not introduced yet
   * ```
   */
  probeTargets(now: number): UdpAddress[] {
    if (this.#state === "disconnected") return [];
    if (this.#state === "direct" && this.#direct) {
      if (now - this.#lastKeepaliveAt < this.#keepaliveMs) return [];
      this.#lastKeepaliveAt = now;
      return [this.#direct];
    }
    if (this.#candidates.length === 0 || !this.#scheduler.due(now)) return [];
    return this.candidates.slice();
  }

  /** The next local time at which {@linkcode PathManager.probeTargets} or `tick` may act. */
  nextDeadline(now: number): number {
    if (this.#state === "disconnected") return Infinity;
    if (this.#state === "direct") {
      return Math.min(
        this.#lastKeepaliveAt + this.#keepaliveMs,
        this.#lastDirectRx + this.#directTimeoutMs,
      );
    }
    const probeAt = this.#candidates.length > 0 ? this.#scheduler.nextAt(now) : Infinity;
    if (this.#state === "connecting") {
      return Math.min(probeAt, this.#connectingSince + this.#connectTimeoutMs);
    }
    return probeAt;
  }

  /**
   * Remembers a probe sent with `nonce` to `address`.
   *
   * @example
   * ```ts
   * new PathManager(0).recordProbe("abc", { host: "10.0.0.1", port: 1 }, 0);
   * ```
   */
  recordProbe(nonce: string, address: UdpAddress, now: number): void {
    if (this.#probes.size >= MAX_OUTSTANDING_PROBES) {
      for (const [key, probe] of this.#probes) {
        if (now - probe.sentAt > PROBE_LIFETIME_MS || this.#probes.size >= MAX_OUTSTANDING_PROBES) {
          this.#probes.delete(key);
        }
        if (this.#probes.size < MAX_OUTSTANDING_PROBES / 2) break;
      }
    }
    this.#probes.set(nonce, { address, sentAt: now });
  }

  /**
   * An authenticated PATH_RESPONSE with `nonce` came from `from`. `"validated"`: the round trip
   * proves the path (the state becomes `direct` on it if it was not; a live direct path is kept
   * even when another address validates too). `"reflexive"`: it came from
   * another address than the probe went to; that address was added as a candidate (probe it).
   * `"unknown"`: no such probe.
   *
   * @example
   * ```ts
   * new PathManager(0).probeResponse("zz", { host: "10.0.0.1", port: 1 }, 0); // "unknown"
   * ```
   */
  probeResponse(
    nonce: string,
    from: UdpAddress,
    now: number,
  ): "validated" | "reflexive" | "unknown" {
    const probe = this.#probes.get(nonce);
    if (!probe) return "unknown";
    this.#probes.delete(nonce);
    if (!sameAddress(probe.address, from)) {
      this.addReflexive(from);
      return "reflexive";
    }
    const sample = Math.max(0, now - probe.sentAt);
    if (this.#state === "direct" && this.#direct && !sameAddress(this.#direct, from)) {
      // Another address works too, but the live direct path stays: switching between equally
      // valid paths would only make the path flap (and reorder packets in flight).
      return "validated";
    }
    this.#probeRttMs = this.#probeRttMs === undefined
      ? sample
      : this.#probeRttMs * 0.875 + sample * 0.125;
    this.#lastDirectRx = now;
    if (this.#state !== "direct") {
      const previous = this.#state;
      this.#direct = from;
      this.#lastKeepaliveAt = now;
      this.#set("direct", previous === "relayed" ? "upgraded from relay" : "probe round trip");
    }
    return "validated";
  }

  /**
   * Any authenticated packet arrived over UDP from `from`: keeps the direct path alive.
   *
   * @example
   * ```ts
   * new PathManager(0).udpAuthenticated({ host: "10.0.0.1", port: 1 }, 0);
   * ```
   */
  udpAuthenticated(from: UdpAddress, now: number): void {
    if (this.#direct && sameAddress(this.#direct, from)) this.#lastDirectRx = now;
  }

  /**
   * Advances timers: `connecting` → `relayed` after `connectTimeoutMs`; a silent `direct` path →
   * `relayed` (probing continues, to upgrade again).
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * path.tick(5000);
   * console.log(path.state); // "relayed"
   * ```
   */
  tick(now: number): void {
    if (this.#state === "connecting" && now - this.#connectingSince >= this.#connectTimeoutMs) {
      this.#set("relayed", "no direct path in time");
    } else if (this.#state === "direct" && now - this.#lastDirectRx > this.#directTimeoutMs) {
      this.#direct = undefined;
      this.#set("relayed", "direct path went silent");
      this.#scheduler.restart(now);
    }
  }

  /**
   * The peer left: no path until it is introduced again.
   *
   * @example
   * ```ts
   * new PathManager(0).disconnect("peer-left");
   * ```
   */
  disconnect(reason: string): void {
    this.#direct = undefined;
    this.#probes.clear();
    if (this.#state !== "disconnected") this.#set("disconnected", reason);
  }

  #set(state: PathState, reason: string): void {
    this.#state = state;
    this.#pendingChange = { state, path: this.path, reason };
  }
}
