/**
 * The path module of one peer: it owns every candidate address, all probing (hole punching,
 * validation, keepalives) and the choice of path, as a typed state with an observer (magicsock
 * style: explicit and observable, never a display string).
 *
 * States ({@linkcode PathState}):
 * - `none`: no usable path yet (introduced, punching, within `connectTimeoutMs`), or none at all
 *   (the server says the peer is gone and no direct path is proven).
 * - `direct`: a UDP address proven both ways by an authenticated PATH_PROBE / PATH_RESPONSE round
 *   trip within `doubtAfterMs` (keepalive probes refresh the proof every `keepaliveMs`).
 * - `mixed`: the direct path is in doubt (no proof for `doubtAfterMs`): traffic goes over the
 *   relay and the direct path at once, and the direct address is probed every `doubtProbeMs`.
 *   Proof brings it back to `direct`; `directTimeoutMs` without proof drops it to `relayed`.
 * - `relayed`: over a relay: the rendezvous server's (path `relay`) or a TURN server's (path
 *   `turn host:port`; which one is the caller's choice, `relay_paths.ts`). Probing goes on (a fast burst at each introduction or path
 *   loss, then every `slowIntervalMs`), so the path upgrades as soon as a direct one works.
 *
 * Only a round trip proves a path: a packet merely received on it does not (with UDP lost in one
 * direction the receiving side would otherwise keep a path the other side cannot use). Both
 * sides thus detect one-way loss and fall back together. This is QUIC's path validation
 * (RFC 9000, 8.2) kept up as ICE consent freshness is (RFC 7675: lost consent after 30 s; here a
 * path in doubt after 4 s already carries traffic over the relay too).
 *
 * Measured in the NAT lab (`deno task natlab --impaired`, two runs): port-restricted pairs with
 * 10 ms / 150 ms asymmetric delay direct after 0.7 s, restricted-cone × symmetric 1.2 s, 10 % loss
 * with 40 ms delay 0.4-0.6 s, 25 % loss 0.8-0.9 s; every one of them ended relayed before.
 *
 * Pure logic: the caller passes the clock, sends the probes it is told to, reports what arrives,
 * and arms one timer at {@linkcode PathManager.nextDeadline}.
 *
 * @module
 */
import { PunchScheduler, type PunchTiming } from "./punch_scheduler.ts";
import { makeRoomForProbe } from "./probe_table.ts";

/** A peer's path state. */
export type PathState = "none" | "direct" | "relayed" | "mixed";

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
  /** Time from the introduction without a direct path before using the relay, ms (default 3000). */
  connectTimeoutMs?: number;
  /** Time without proof before the direct path is in doubt (`mixed`), ms (default 4000). */
  doubtAfterMs?: number;
  /** Time without proof before the direct path is dropped (`relayed`), ms (default 8000). */
  directTimeoutMs?: number;
  /** Keepalive probe interval on a direct path, ms (default 2000). */
  keepaliveMs?: number;
  /** Probe interval once a keepalive went unanswered, and while `mixed`, ms (default 500). */
  doubtProbeMs?: number;
  /** Most candidates kept (default 24). */
  maxCandidates?: number;
  /**
   * Unanswered probe rounds after the burst, spaced `slowIntervalMs` doubling every two rounds
   * up to `maxSlowIntervalMs`, before the pair is judged not direct-capable and settles on the
   * relay (default 8: about a minute).
   */
  maxAttempts?: number;
  /** Longest spacing of those rounds, ms (default 16,000). */
  maxSlowIntervalMs?: number;
  /** Once settled, the slow periodic retry of direct, ms (default 300,000). */
  retryAfterMs?: number;
  /**
   * After a proven direct path is lost, rounds stay every `slowIntervalMs` this long before they
   * count as attempts (the pair is known to be direct-capable), ms (default 120,000).
   */
  keepTryingMs?: number;
}

/** A state change reported by {@linkcode PathManager}. */
export interface PathChange {
  /** The new state. */
  state: PathState;
  /** True when the relay was settled on: the pair is judged not direct-capable for now. */
  settled?: boolean;
  /** The new path, as shown to users: `"udp ip:port"`, `"udp ip:port + relay"`, `"relay"`, null. */
  path: string | null;
  /** Why, for logs. */
  reason: string;
}

/** Where to send a packet now. */
export interface Route {
  /** The direct address, when it is used. */
  udp?: UdpAddress;
  /** Whether the relay is used too (or alone). */
  relay: boolean;
}

const MAX_OUTSTANDING_PROBES = 256;
const PROBE_LIFETIME_MS = 10_000;
/** The empty answer of {@linkcode PathManager.udpAuthenticated} (no allocation per packet). */
const NO_ADDRESSES: readonly UdpAddress[] = Object.freeze([]);

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
  #state: PathState = "none";
  #direct: UdpAddress | undefined;
  #lastProofAt = -Infinity;
  #lastKeepaliveAt = -Infinity;
  #connectUntil = -Infinity;
  #relayAvailable = false;
  /** How the relay in use is shown (`relay`: the server's; `turn host:port`). */
  #relayLabel = "relay";
  /** The peer's TURN relayed addresses: relay paths, never direct candidates. */
  #relayAddresses: UdpAddress[] = [];
  #introduced = false;
  #candidates: { address: UdpAddress; source: CandidateSource }[] = [];
  readonly #probes = new Map<string, { address: UdpAddress; sentAt: number }>();
  readonly #scheduler: PunchScheduler;
  readonly #connectTimeoutMs: number;
  readonly #doubtAfterMs: number;
  readonly #directTimeoutMs: number;
  readonly #keepaliveMs: number;
  readonly #doubtProbeMs: number;
  readonly #maxCandidates: number;
  #probeRttMs: number | undefined;
  /**
   * Another address of the peer proven by a round trip while `direct` (the peer's NAT mapping
   * changed, or it roamed): the path moves there once the current one leaves a probe unanswered.
   */
  #alternate: { address: UdpAddress; provenAt: number; sentAt: number } | undefined;
  /** When each address the peer sent from (other than the direct one) was last probed. */
  readonly #sourceProbedAt = new Map<string, number>();
  #unansweredReported = -Infinity;
  /** When the current punch burst started (rounds after it count as attempts). */
  #burstStartAt = Infinity;
  readonly #burstMs: number;
  readonly #slowIntervalMs: number;
  readonly #maxSlowIntervalMs: number;
  readonly #maxAttempts: number;
  readonly #retryAfterMs: number;
  readonly #keepTryingMs: number;
  /** Unanswered rounds after the burst (counted toward the verdict). */
  #attempts = 0;
  /** Earliest time of the next round after the burst (backoff). */
  #nextRoundAt = -Infinity;
  /** A direct path was proven once on this link: the pair is direct-capable. */
  #provenOnce = false;
  /** When the last proven direct path was lost. */
  #lostAt = -Infinity;
  /** Settled on the relay: no probing until `#retryAt` or a trigger. */
  #settled: { reason: string; retryAt: number } | undefined;
  #pendingChange: PathChange | undefined;
  readonly #observers = new Set<(change: PathChange) => void>();

  /**
   * Creates the path state of a peer (`none` until introduced).
   *
   * @example
   * ```ts
   * const path = new PathManager(0, { connectTimeoutMs: 3000 });
   * ```
   */
  constructor(_now: number, options: PathManagerOptions = {}) {
    this.#scheduler = new PunchScheduler(Infinity, options);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.#doubtAfterMs = options.doubtAfterMs ?? 4000;
    this.#directTimeoutMs = Math.max(
      options.directTimeoutMs ?? 8000,
      (options.doubtAfterMs ?? 0) + 1,
    );
    this.#keepaliveMs = options.keepaliveMs ?? 2000;
    this.#doubtProbeMs = options.doubtProbeMs ?? 500;
    this.#maxCandidates = options.maxCandidates ?? 24;
    this.#burstMs = options.burstMs ?? 5000;
    this.#slowIntervalMs = options.slowIntervalMs ?? 2000;
    this.#maxSlowIntervalMs = Math.max(this.#slowIntervalMs, options.maxSlowIntervalMs ?? 16_000);
    this.#maxAttempts = options.maxAttempts ?? 8;
    this.#retryAfterMs = options.retryAfterMs ?? 300_000;
    this.#keepTryingMs = options.keepTryingMs ?? 120_000;
  }

  /**
   * Set once the pair is judged not direct-capable for now (every probe round of a burst and of
   * `maxAttempts` slower ones went unanswered): why, and when direct is tried again unless a
   * trigger comes first (new candidates, an introduction, a packet from a new address of the
   * peer, {@linkcode PathManager.retry}).
   */
  get settled(): { reason: string; retryAt: number } | undefined {
    return this.#settled;
  }

  /**
   * Tries direct again now (a new burst; the verdict, if any, is forgotten): our network changed
   * (a new public address, a new registration), or another trigger.
   *
   * @example
   * ```ts
   * new PathManager(0).retry(0, "our public address changed");
   * ```
   */
  retry(now: number, _reason: string): void {
    this.#unsettle();
    if (this.#introduced && this.#state !== "direct") this.#restartPunching(now);
  }

  #unsettle(): void {
    this.#settled = undefined;
    this.#attempts = 0;
    this.#nextRoundAt = -Infinity;
  }

  #restartPunching(at: number): void {
    this.#scheduler.restart(at);
    this.#burstStartAt = at;
    this.#attempts = 0;
    this.#nextRoundAt = -Infinity;
  }

  /**
   * Whether a round of candidate probes is due at `now`, after the burst with backoff and a
   * verdict; marks it sent when it is.
   */
  #roundDue(now: number): boolean {
    if (this.#candidates.length === 0 || !this.#introduced) return false;
    if (this.#settled) {
      if (now < this.#settled.retryAt) return false;
      // The slow periodic retry: a new burst.
      this.#unsettle();
      this.#restartPunching(now);
    }
    const afterBurst = now >= this.#burstStartAt + this.#burstMs;
    if (afterBurst && now < this.#nextRoundAt) return false;
    if (!this.#scheduler.due(now)) return false;
    if (afterBurst && this.#state !== "direct" && this.#state !== "mixed") {
      const knownCapable = this.#provenOnce && now - this.#lostAt < this.#keepTryingMs;
      if (knownCapable) {
        this.#nextRoundAt = now + this.#slowIntervalMs;
      } else {
        this.#attempts++;
        const spacing = Math.min(
          this.#maxSlowIntervalMs,
          this.#slowIntervalMs * 2 ** Math.floor(this.#attempts / 2),
        );
        this.#nextRoundAt = now + spacing;
      }
    }
    return true;
  }

  /** After a round: settles on the relay once `maxAttempts` rounds went unanswered. */
  #maybeSettle(now: number): void {
    if (this.#settled || this.#attempts < this.#maxAttempts || this.#state !== "relayed") return;
    const reason = `no direct path after a punch burst and ${this.#attempts} slower rounds: ` +
      `not direct-capable for now (direct tried again on a network change, new candidates, or in ${
        Math.round(this.#retryAfterMs / 1000)
      } s)`;
    this.#settled = { reason, retryAt: now + this.#retryAfterMs };
    this.#set("relayed", reason, true);
  }

  /** The current state. */
  get state(): PathState {
    return this.#state;
  }

  /** True while introduced and still within the connect window (no path chosen yet). */
  get connecting(): boolean {
    return this.#state === "none" && this.#introduced && this.#relayAvailable;
  }

  /** The direct address in use (`direct` or `mixed`). */
  get directAddress(): UdpAddress | undefined {
    return this.#state === "direct" || this.#state === "mixed" ? this.#direct : undefined;
  }

  /** True while the direct path is proven (`direct`). */
  get directValidated(): boolean {
    return this.#state === "direct";
  }

  /** Where packets go now. */
  get route(): Route {
    switch (this.#state) {
      case "direct":
        return { udp: this.#direct, relay: false };
      case "mixed":
        return { udp: this.#direct, relay: this.#relayAvailable };
      case "relayed":
        return { relay: true };
      default:
        return { relay: false };
    }
  }

  /** The path shown to users. */
  get path(): string | null {
    switch (this.#state) {
      case "direct":
        return `udp ${formatUdpAddress(this.#direct!)}`;
      case "mixed":
        return `udp ${formatUdpAddress(this.#direct!)}${
          this.#relayAvailable ? ` + ${this.#relayLabel}` : ""
        }`;
      case "relayed":
        return this.#relayLabel;
      default:
        return null;
    }
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
   * Calls `observer` on every state change; returns the unsubscribe function.
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * const off = path.observe((change) => console.log(change.state));
   * off();
   * ```
   */
  observe(observer: (change: PathChange) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
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
   * A (new) introduction: the peer's candidates and the local time to start punching. The relay
   * is usable again (the server brokered the pair).
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
    this.#unsettle();
    this.#restartPunching(Math.max(now, punchAt));
    this.#introduced = true;
    const wasAvailable = this.#relayAvailable;
    this.#relayAvailable = true;
    if (this.#state === "none") {
      // A first introduction waits for a direct path a moment; a later one (the peer came back)
      // uses the relay at once.
      this.#connectUntil = wasAvailable || this.#connectUntil === -Infinity
        ? now + this.#connectTimeoutMs
        : now;
      if (this.#connectUntil <= now) this.#set("relayed", "introduced again");
    }
  }

  /**
   * More candidates of the peer (sent in-band, or pushed by the server): added, and a new punch
   * burst starts if any is new (unless `direct`). Returns the new ones: probe them now, whatever
   * the state (a new public address of a peer we are direct with is its NAT mapping changing:
   * the current path may be dead already).
   *
   * @example
   * ```ts
   * new PathManager(0).addCandidates(0, [{ host: "192.0.2.1", port: 5 }]); // [{ host: "192.0.2.1", port: 5 }]
   * ```
   */
  addCandidates(now: number, candidates: readonly UdpAddress[]): UdpAddress[] {
    const added = candidates.filter((address) => this.#add(address, "public"));
    if (added.length > 0 && this.#state !== "direct") {
      this.#unsettle();
      this.#restartPunching(now);
    }
    return added;
  }

  /**
   * The server says the relay cannot reach the peer (it left) or can again.
   *
   * @example
   * ```ts
   * new PathManager(0).setRelayAvailable(false);
   * ```
   */
  setRelayAvailable(available: boolean, now?: number): void {
    if (this.#relayAvailable === available) return;
    this.#relayAvailable = available;
    if (!available && this.#state === "relayed") this.#set("none", "relay cannot reach the peer");
    else if (
      available && this.#state === "none" && this.#connectUntil !== -Infinity &&
      (now === undefined || now >= this.#connectUntil)
    ) {
      this.#set("relayed", "relay available");
    } else if (this.#state === "mixed") {
      this.#set("mixed", available ? "relay available" : "relay cannot reach the peer");
    }
  }

  /**
   * Which relay carries the relayed traffic, as shown in {@linkcode PathManager.path} (`relay`
   * for the rendezvous server's, `turn host:port` for a TURN server's): a change of it while
   * relayed is a path change.
   *
   * @example
   * ```ts
   * new PathManager(0).setRelayLabel("turn 192.0.2.1:3478");
   * ```
   */
  setRelayLabel(label: string, reason = "relay switched"): void {
    if (label === this.#relayLabel) return;
    this.#relayLabel = label;
    if (this.#state === "relayed" || (this.#state === "mixed" && this.#relayAvailable)) {
      this.#set(this.#state, reason);
    }
  }

  /**
   * The peer's TURN relayed addresses: they lead through the peer's TURN server, so they are
   * removed from the direct candidates (and never become the direct path).
   *
   * @example
   * ```ts
   * new PathManager(0).setRelayAddresses([{ host: "203.0.113.5", port: 50000 }]);
   * ```
   */
  setRelayAddresses(addresses: readonly UdpAddress[]): void {
    this.#relayAddresses = addresses.map((a) => ({ host: a.host, port: a.port }));
    this.#candidates = this.#candidates.filter((c) => !this.#isRelayAddress(c.address));
    if (this.#direct && this.#isRelayAddress(this.#direct) && this.#state !== "none") {
      this.#direct = undefined;
      this.#set(this.#relayAvailable ? "relayed" : "none", "that path was the peer's TURN relay");
    }
  }

  #isRelayAddress(address: UdpAddress): boolean {
    return this.#relayAddresses.some((a) => sameAddress(a, address));
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
    const added = this.#add(address, "reflexive");
    // The peer sends from a new address (its mapping changed): worth trying again.
    if (added) this.#unsettle();
    return added;
  }

  #add(address: UdpAddress, source: CandidateSource): boolean {
    if (this.#candidates.some((c) => sameAddress(c.address, address))) return false;
    if (this.#isRelayAddress(address)) return false;
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
   * The addresses to probe now (possibly none): while `direct`, a keepalive every `keepaliveMs`
   * (every `doubtProbeMs` once one went unanswered); while `mixed`, the direct address every
   * `doubtProbeMs` and every candidate at the punch pace; otherwise every candidate at the punch
   * scheduler's pace.
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * path.probeTargets(0); // []: not introduced yet
   * ```
   */
  probeTargets(now: number): UdpAddress[] {
    if (this.#state === "direct" && this.#direct) {
      if (now < this.#keepaliveAt()) return [];
      this.#lastKeepaliveAt = now;
      return [this.#direct];
    }
    const targets: UdpAddress[] = [];
    if (this.#state === "mixed" && this.#direct && now >= this.#keepaliveAt()) {
      this.#lastKeepaliveAt = now;
      targets.push(this.#direct);
    }
    if (this.#roundDue(now)) {
      for (const c of this.candidates) {
        if (!targets.some((t) => sameAddress(t, c))) targets.push(c);
      }
      this.#maybeSettle(now);
    }
    return targets;
  }

  #keepaliveAt(): number {
    if (this.#state === "mixed") return this.#lastKeepaliveAt + this.#doubtProbeMs;
    // Another address was just proven: check the current path at once (is it still alive?).
    if (this.#alternate && this.#lastKeepaliveAt < this.#alternate.sentAt) return -Infinity;
    // A keepalive not answered within a round trip or so is followed by quicker probes.
    const answered = this.#lastProofAt >= this.#lastKeepaliveAt;
    return this.#lastKeepaliveAt + (answered ? this.#keepaliveMs : this.#doubtProbeMs);
  }

  /** The next local time at which {@linkcode PathManager.probeTargets} or `tick` may act. */
  nextDeadline(now: number): number {
    if (this.#state === "direct") {
      // The unanswered-probe time serves the alternate switch and `directUnanswered` alike.
      return Math.min(
        this.#keepaliveAt(),
        this.#lastProofAt + this.#doubtAfterMs,
        this.#unansweredAt() > now || this.#alternate ? this.#unansweredAt() : Infinity,
      );
    }
    let at = Infinity;
    if (this.#candidates.length > 0 && this.#introduced) {
      at = this.#settled
        ? this.#settled.retryAt
        : now >= this.#burstStartAt + this.#burstMs
        ? Math.max(this.#scheduler.nextAt(now), this.#nextRoundAt)
        : this.#scheduler.nextAt(now);
    }
    if (this.#state === "mixed") {
      at = Math.min(at, this.#keepaliveAt(), this.#lastProofAt + this.#directTimeoutMs);
    }
    if (this.#state === "none" && this.#relayAvailable && this.#connectUntil > -Infinity) {
      at = Math.min(at, this.#connectUntil);
    }
    return at;
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
    makeRoomForProbe(this.#probes, now, MAX_OUTSTANDING_PROBES, PROBE_LIFETIME_MS);
    this.#probes.set(nonce, { address, sentAt: now });
  }

  /**
   * An authenticated PATH_RESPONSE with `nonce` came from `from`. `"validated"`: the round trip
   * proves the path (the state becomes `direct` on it; a live direct path is kept even when
   * another address validates too). `"reflexive"`: it came from another address than the probe
   * went to; that address was added as a candidate (probe it). `"unknown"`: no such probe.
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
      // Another address works too. A live direct path stays (switching between equally valid
      // paths would only make the path flap and reorder packets in flight), but one that leaves
      // a probe unanswered gives way to it: the peer's mapping changed.
      this.#alternate = { address: from, provenAt: now, sentAt: probe.sentAt };
      this.#switchToAlternate(now);
      return "validated";
    }
    this.#probeRttMs = this.#probeRttMs === undefined
      ? sample
      : this.#probeRttMs * 0.875 + sample * 0.125;
    this.#lastProofAt = now;
    this.#provenOnce = true;
    this.#unsettle();
    if (this.#state !== "direct") {
      this.#alternate = undefined;
      const previous = this.#state;
      this.#direct = from;
      this.#lastKeepaliveAt = now;
      this.#set(
        "direct",
        previous === "relayed"
          ? "upgraded from relay"
          : previous === "mixed"
          ? "direct path confirmed"
          : "probe round trip",
      );
    }
    return "validated";
  }

  /**
   * Any authenticated packet arrived over UDP from `from`; returns the addresses worth probing
   * now. It does not prove a path (only a round trip does), but:
   * - a packet from the direct address while in doubt earns a probe of it at once;
   * - a packet from another address while `direct` or `mixed` means the peer now sends from
   *   there (its NAT mapping expired or was rebuilt, or it roamed): that address becomes a
   *   candidate and is probed at once (at most every `doubtProbeMs`), and so is the current
   *   direct address. The path moves to the new address when its round trip completes and the
   *   current one leaves its probe unanswered (QUIC's migration on a new peer address, RFC 9000
   *   9.3, validated first as in 8.2; Tailscale magicsock learns endpoints the same way).
   *
   * @example
   * ```ts
   * new PathManager(0).udpAuthenticated({ host: "10.0.0.1", port: 1 }, 0); // []
   * ```
   */
  udpAuthenticated(from: UdpAddress, now: number): readonly UdpAddress[] {
    // Called for every authenticated packet: the common answers allocate nothing.
    const direct = this.#direct;
    if (!direct || (this.#state !== "direct" && this.#state !== "mixed")) return NO_ADDRESSES;
    const quick = Math.min(100, this.#doubtProbeMs);
    if (sameAddress(direct, from)) {
      return this.#state === "mixed" && now >= this.#lastKeepaliveAt + quick
        ? [from]
        : NO_ADDRESSES;
    }
    this.#add(from, "reflexive");
    const key = formatUdpAddress(from);
    if (now < (this.#sourceProbedAt.get(key) ?? -Infinity) + this.#doubtProbeMs) {
      return NO_ADDRESSES;
    }
    if (this.#sourceProbedAt.size >= this.#maxCandidates) {
      for (const [k, at] of this.#sourceProbedAt) {
        if (now - at >= this.#doubtProbeMs) this.#sourceProbedAt.delete(k);
      }
      if (this.#sourceProbedAt.size >= this.#maxCandidates) return NO_ADDRESSES;
    }
    this.#sourceProbedAt.set(key, now);
    const targets = [from];
    if (now >= this.#lastKeepaliveAt + quick) {
      this.#lastKeepaliveAt = now;
      targets.push(direct);
    }
    return targets;
  }

  /**
   * True while `direct` and the latest probe of the direct path has gone unanswered for about
   * two round trips: the first sign that the path (or a NAT mapping on it) may be gone.
   *
   * @example
   * ```ts
   * new PathManager(0).directUnanswered(0); // false
   * ```
   */
  directUnanswered(now: number): boolean {
    return now >= this.#unansweredAt();
  }

  /**
   * Like {@linkcode PathManager.directUnanswered}, but true once per unanswered probe (the
   * caller acts on it once: e.g. checks its own NAT mapping with STUN).
   *
   * @example
   * ```ts
   * new PathManager(0).takeDirectUnanswered(0); // false
   * ```
   */
  takeDirectUnanswered(now: number): boolean {
    if (!this.directUnanswered(now) || this.#unansweredReported === this.#lastKeepaliveAt) {
      return false;
    }
    this.#unansweredReported = this.#lastKeepaliveAt;
    return true;
  }

  /** Time a probe of the direct path may take before it counts as unanswered, ms. */
  #answerWaitMs(): number {
    return Math.min(this.#doubtProbeMs, Math.max(50, 2 * (this.#probeRttMs ?? this.#doubtProbeMs)));
  }

  /** The time at which a fresh alternate replaces the direct path, if its probe stays unanswered. */
  #unansweredAt(): number {
    if (this.#state !== "direct" || this.#lastProofAt >= this.#lastKeepaliveAt) return Infinity;
    return this.#lastKeepaliveAt + this.#answerWaitMs();
  }

  /** Moves the direct path to the alternate address when it is due (see `#alternate`). */
  #switchToAlternate(now: number): void {
    const alternate = this.#alternate;
    if (!alternate) return;
    // The current path was proven after the alternate's probe left, or the alternate is too old
    // to trust: forget it.
    if (alternate.sentAt < this.#lastProofAt || now - alternate.provenAt >= this.#doubtAfterMs) {
      this.#alternate = undefined;
      return;
    }
    if (now < this.#unansweredAt()) return;
    this.#alternate = undefined;
    this.#direct = alternate.address;
    this.#lastProofAt = alternate.provenAt;
    this.#lastKeepaliveAt = alternate.provenAt;
    this.#set("direct", "the peer's address changed");
  }

  /**
   * Advances timers: `none` → `relayed` after the connect window; `direct` → `mixed` after
   * `doubtAfterMs` without proof; `mixed` → `relayed` (or `none` without a relay) after
   * `directTimeoutMs` (probing continues, to upgrade again).
   *
   * @example
   * ```ts
   * const path = new PathManager(0);
   * path.introduce(0, [], 0);
   * path.tick(5000);
   * console.log(path.state); // "relayed"
   * ```
   */
  tick(now: number): void {
    this.#switchToAlternate(now);
    if (this.#state === "none") {
      if (this.#relayAvailable && this.#introduced && now >= this.#connectUntil) {
        // With no candidate (--relay-only, or none announced) nothing was tried: say so.
        this.#set(
          "relayed",
          this.#candidates.length === 0 ? "no direct candidates to try" : "no direct path in time",
        );
      }
    } else if (this.#state === "direct" && now - this.#lastProofAt >= this.#doubtAfterMs) {
      this.#set("mixed", "direct path in doubt");
    }
    if (this.#state === "mixed" && now - this.#lastProofAt >= this.#directTimeoutMs) {
      this.#direct = undefined;
      this.#lostAt = now;
      this.#set(this.#relayAvailable ? "relayed" : "none", "direct path went silent");
      this.#restartPunching(now);
    }
  }

  /**
   * The peer closed its side (it exited): no path until it is introduced again; candidates are
   * kept for the next punch.
   *
   * @example
   * ```ts
   * new PathManager(0).peerGone("peer closed the connection");
   * ```
   */
  peerGone(reason: string): void {
    this.#direct = undefined;
    this.#probes.clear();
    this.#relayAvailable = false;
    this.#restartPunching(Infinity);
    if (this.#state !== "none") this.#set("none", reason);
  }

  /**
   * Forgets the path (the link is closed for good, or the peer must be introduced again).
   *
   * @example
   * ```ts
   * new PathManager(0).reset("client exit");
   * ```
   */
  reset(reason: string): void {
    this.#direct = undefined;
    this.#probes.clear();
    this.#introduced = false;
    this.#relayAvailable = false;
    this.#connectUntil = -Infinity;
    this.#unsettle();
    this.#restartPunching(Infinity);
    if (this.#state !== "none") this.#set("none", reason);
  }

  #set(state: PathState, reason: string, settled = false): void {
    if (state !== "direct") this.#alternate = undefined;
    this.#state = state;
    const change: PathChange = settled
      ? { state, path: this.path, reason, settled }
      : { state, path: this.path, reason };
    this.#pendingChange = change;
    for (const observer of this.#observers) observer(change);
  }
}
