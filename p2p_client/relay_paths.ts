/**
 * The relay paths of one peer and the choice between them: the rendezvous server's relay
 * (signaling TCP) and one path per TURN server of the config (RFC 8656), each validated by an
 * authenticated PATH_PROBE / PATH_RESPONSE round trip through it, as direct paths are (QUIC path
 * validation, RFC 9000 8.2): a TURN allocation proves nothing about the peer until a probe sent
 * through it comes back.
 *
 * A TURN path is "our allocation on server S, to the peer's address T": probes go through every
 * allocation to every candidate of the peer (its public, local and relayed addresses), and the
 * target whose answer comes back through the allocation is kept. Keepalive probes every
 * `keepaliveMs` keep measuring its round trip; `expireMs` without an answer drops it.
 *
 * The server relay is probed too (over the signaling connection), so both kinds have a measured
 * round trip. Policy `any` takes the one with the lower round trip, switching only for a clear
 * gain (25 % and 1 ms): a path switch resends what is unacknowledged, so flapping between two
 * equal relays would only cost. `server` and `turn` restrict the choice (`--relay`).
 *
 * Measured (`e2e/turn_coturn_test.ts`, coturn 4.6.1 in a namespace, direct UDP dropped, two
 * runs): both clients showed `turn 127.0.0.1:3479` 3.01 s after the introduction: the 3 s connect
 * window, in which a direct path is preferred, dominates; the TURN path was ready within it.
 *
 * Pure logic: the caller passes the clock, sends the probes it is told to and reports answers.
 *
 * @module
 */
import type { UdpAddress } from "./path_manager.ts";
import { makeRoomForProbe } from "./probe_table.ts";

/** Which relays may carry a peer's packets (`--relay`). */
export type RelayPolicy = "server" | "turn" | "any";

/**
 * The relays a client offers (`--relay` values), for validation.
 *
 * @example
 * ```ts
 * RELAY_POLICIES.includes("turn"); // true
 * ```
 */
export const RELAY_POLICIES: readonly RelayPolicy[] = ["server", "turn", "any"];

/** A relay: the rendezvous server's, or the TURN allocation with this ID. */
export type RelayId = "server" | number;

/** A TURN allocation usable now. */
export interface TurnRelayInfo {
  /** The client's ID for it. */
  id: number;
  /** How it is shown: `turn host:port`. */
  label: string;
}

/** A probe to send: through `relay`, to `target` (TURN) or over the server relay. */
export interface RelayProbe {
  /** Through which relay. */
  relay: RelayId;
  /** The peer's address the probe goes to (TURN only). */
  target?: UdpAddress;
}

/** Timing of {@linkcode RelayPaths}. */
export interface RelayPathsOptions {
  /** Probe pace while a TURN path is not validated, for the first `fastForMs` (default 1000). */
  fastProbeMs?: number;
  /** How long the fast pace lasts (default 10,000). */
  fastForMs?: number;
  /** Probe pace afterwards, and keepalive pace of validated paths (default 5000). */
  keepaliveMs?: number;
  /** No answer for this long drops a validated TURN path (default 15,000). */
  expireMs?: number;
}

interface TurnPath {
  label: string;
  target: UdpAddress | undefined;
  rttMs: number | undefined;
  lastProofAt: number;
  lastProbeAt: number;
  startedAt: number;
}

const MAX_PROBES = 256;
const PROBE_LIFETIME_MS = 15_000;

function same(a: UdpAddress, b: UdpAddress): boolean {
  return a.host === b.host && a.port === b.port;
}

function smooth(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous * 0.875 + sample * 0.125;
}

/**
 * Relay path validation, RTT and choice for one peer.
 *
 * @example
 * ```ts
 * const relays = new RelayPaths();
 * const probes = relays.probes(0, [{ id: 1, label: "turn 192.0.2.1:3478" }], [
 *   { host: "198.51.100.7", port: 4000 },
 * ], false);
 * relays.recordProbe("n1", probes[0], 0);
 * relays.probeResponse("n1", 1, { host: "198.51.100.7", port: 4000 }, 12); // true
 * relays.choose(12, "any", false); // 1
 * relays.label(1); // "turn 192.0.2.1:3478"
 * ```
 */
export class RelayPaths {
  readonly #turn = new Map<number, TurnPath>();
  readonly #probes = new Map<string, { relay: RelayId; target?: UdpAddress; sentAt: number }>();
  #serverRttMs: number | undefined;
  #lastServerProbeAt = -Infinity;
  #chosen: RelayId | undefined;
  readonly #fastProbeMs: number;
  readonly #fastForMs: number;
  readonly #keepaliveMs: number;
  readonly #expireMs: number;

  /**
   * Creates the relay state of a peer (no path validated).
   *
   * @example
   * ```ts
   * new RelayPaths({ keepaliveMs: 5000 });
   * ```
   */
  constructor(options: RelayPathsOptions = {}) {
    this.#fastProbeMs = options.fastProbeMs ?? 1000;
    this.#fastForMs = options.fastForMs ?? 10_000;
    this.#keepaliveMs = options.keepaliveMs ?? 5000;
    this.#expireMs = options.expireMs ?? 15_000;
  }

  /** The relay chosen by the last {@linkcode RelayPaths.choose}. */
  get chosen(): RelayId | undefined {
    return this.#chosen;
  }

  /** Measured round trip over the server relay, ms. */
  get serverRttMs(): number | undefined {
    return this.#serverRttMs;
  }

  /**
   * The validated target of TURN relay `id`.
   *
   * @example
   * ```ts
   * new RelayPaths().target(1); // undefined
   * ```
   */
  target(id: number): UdpAddress | undefined {
    return this.#turn.get(id)?.target;
  }

  /**
   * Round trip through relay `id`, ms, when measured.
   *
   * @example
   * ```ts
   * new RelayPaths().rttMs("server"); // undefined
   * ```
   */
  rttMs(id: RelayId): number | undefined {
    return id === "server" ? this.#serverRttMs : this.#turn.get(id)?.rttMs;
  }

  /**
   * How relay `id` is shown: `relay` for the server's, `turn host:port` for a TURN server.
   *
   * @example
   * ```ts
   * new RelayPaths().label("server"); // "relay"
   * ```
   */
  label(id: RelayId): string {
    return id === "server" ? "relay" : this.#turn.get(id)?.label ?? "turn";
  }

  /**
   * The probes due now: through each TURN relay in `relays`, to every candidate while not
   * validated (fast at first, then every `keepaliveMs`), to the validated target every
   * `keepaliveMs`; over the server relay every `keepaliveMs` while `serverUsable`. Relays gone
   * from `relays` are forgotten.
   *
   * @example
   * ```ts
   * new RelayPaths().probes(0, [], [], true); // [{ relay: "server" }]
   * ```
   */
  probes(
    now: number,
    relays: readonly TurnRelayInfo[],
    candidates: readonly UdpAddress[],
    serverUsable: boolean,
  ): RelayProbe[] {
    this.#sync(now, relays);
    const out: RelayProbe[] = [];
    for (const [id, path] of this.#turn) {
      if (path.target && now - path.lastProofAt >= this.#expireMs) {
        path.target = undefined;
        path.rttMs = undefined;
        path.startedAt = now;
      }
      if (path.target) {
        if (now >= path.lastProbeAt + this.#keepaliveMs) {
          path.lastProbeAt = now;
          out.push({ relay: id, target: path.target });
        }
      } else if (candidates.length > 0 && now >= path.lastProbeAt + this.#pace(path, now)) {
        path.lastProbeAt = now;
        for (const target of candidates) out.push({ relay: id, target });
      }
    }
    if (serverUsable && now >= this.#lastServerProbeAt + this.#keepaliveMs) {
      this.#lastServerProbeAt = now;
      out.push({ relay: "server" });
    }
    return out;
  }

  #pace(path: TurnPath, now: number): number {
    return now - path.startedAt < this.#fastForMs ? this.#fastProbeMs : this.#keepaliveMs;
  }

  #sync(now: number, relays: readonly TurnRelayInfo[]): void {
    for (const id of this.#turn.keys()) {
      if (!relays.some((r) => r.id === id)) this.#turn.delete(id);
    }
    for (const relay of relays) {
      if (!this.#turn.has(relay.id)) {
        this.#turn.set(relay.id, {
          label: relay.label,
          target: undefined,
          rttMs: undefined,
          lastProofAt: -Infinity,
          lastProbeAt: -Infinity,
          startedAt: now,
        });
      }
    }
  }

  /**
   * When {@linkcode RelayPaths.probes} next has something to send or expire.
   *
   * @example
   * ```ts
   * new RelayPaths().nextDeadline(0, false, 0); // Infinity
   * ```
   */
  nextDeadline(now: number, serverUsable: boolean, candidateCount: number): number {
    let at = serverUsable ? this.#lastServerProbeAt + this.#keepaliveMs : Infinity;
    for (const path of this.#turn.values()) {
      if (path.target) {
        at = Math.min(at, path.lastProbeAt + this.#keepaliveMs, path.lastProofAt + this.#expireMs);
      } else if (candidateCount > 0) {
        at = Math.min(at, path.lastProbeAt + this.#pace(path, now));
      }
    }
    return at;
  }

  /**
   * Remembers a probe sent with `nonce`.
   *
   * @example
   * ```ts
   * new RelayPaths().recordProbe("ab", { relay: "server" }, 0);
   * ```
   */
  recordProbe(nonce: string, probe: RelayProbe, now: number): void {
    makeRoomForProbe(this.#probes, now, MAX_PROBES, PROBE_LIFETIME_MS);
    this.#probes.set(nonce, { relay: probe.relay, target: probe.target, sentAt: now });
  }

  /**
   * A PATH_RESPONSE with `nonce` came back through `relay` (from `from`, for TURN). True when it
   * answered one of our relay probes (the path is then validated and its RTT sampled).
   *
   * @example
   * ```ts
   * new RelayPaths().probeResponse("zz", "server", undefined, 5); // false
   * ```
   */
  probeResponse(
    nonce: string,
    relay: RelayId,
    from: UdpAddress | undefined,
    now: number,
  ): boolean {
    const probe = this.#probes.get(nonce);
    if (!probe || probe.relay !== relay) return false;
    this.#probes.delete(nonce);
    const sample = Math.max(0, now - probe.sentAt);
    if (relay === "server") {
      this.#serverRttMs = smooth(this.#serverRttMs, sample);
      return true;
    }
    const path = this.#turn.get(relay);
    if (!path || !probe.target || !from || !same(probe.target, from)) return false;
    if (path.target && !same(path.target, from)) {
      // Another target answers too; the one in use stays (no flapping between equals).
      return true;
    }
    path.target = from;
    path.rttMs = smooth(path.rttMs, sample);
    path.lastProofAt = now;
    return true;
  }

  /**
   * Chooses the relay for the peer's packets: among the server relay (`serverUsable`, policy not
   * `turn`) and the validated TURN paths (policy not `server`), the lowest round trip; the current
   * choice is kept unless another is clearly faster. Undefined: no relay can carry them.
   *
   * @example
   * ```ts
   * new RelayPaths().choose(0, "any", true); // "server"
   * new RelayPaths().choose(0, "turn", true); // undefined
   * ```
   */
  choose(now: number, policy: RelayPolicy, serverUsable: boolean): RelayId | undefined {
    const available: RelayId[] = [];
    if (policy !== "turn" && serverUsable) available.push("server");
    if (policy !== "server") {
      for (const [id, path] of this.#turn) {
        if (path.target && now - path.lastProofAt < this.#expireMs) available.push(id);
      }
    }
    if (available.length === 0) {
      this.#chosen = undefined;
      return undefined;
    }
    const rtt = (id: RelayId) => this.rttMs(id) ?? Infinity;
    let best = available[0];
    for (const id of available) if (rtt(id) < rtt(best)) best = id;
    const current = this.#chosen;
    if (current !== undefined && available.includes(current) && best !== current) {
      const gain = rtt(current) === Infinity
        ? rtt(best) < Infinity
        : rtt(best) < rtt(current) * 0.75 - 1;
      if (!gain) best = current;
    }
    this.#chosen = best;
    return best;
  }

  /**
   * Forgets every TURN path and measurement (the peer went away).
   *
   * @example
   * ```ts
   * new RelayPaths().reset();
   * ```
   */
  reset(): void {
    this.#turn.clear();
    this.#probes.clear();
    this.#serverRttMs = undefined;
    this.#lastServerProbeAt = -Infinity;
    this.#chosen = undefined;
  }
}
