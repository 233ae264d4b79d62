/**
 * Hard-NAT traversal for one peer link, beside the path module (which keeps probing and choosing
 * the path): the peers tell each other their NAT facts and port-mapped address in TRAVERSAL
 * frames (`codec.ts`: sealed in the session, so the server stays a broker that knows nothing of
 * NAT classes), and from the two sides' facts ({@linkcode planDirect}) this module
 *
 * - keeps the side holding a port mapping passive: it sends to the peer only where the peer's
 *   packets came from (or to private addresses), for {@linkcode DEFAULT_PASSIVE_MS} after an
 *   introduction. Behind a per-destination NAT, a packet the mapped side sent first would open a
 *   flow with another public port, and the peer's packets to the mapped port would then clash
 *   with that flow (`natlab/port_mapping_test.ts` shows both orders). When both sides hold
 *   mappings, the initiator sends first.
 * - runs birthday punching when one side maps per destination and the other filters by sender
 *   port (`../birthday/`): the easy side draws a fresh 32-byte key, sends it sealed in
 *   BIRTHDAY_START with its public endpoint, and probes random ports of the hard side's public
 *   address after {@linkcode BIRTHDAY_LEAD_MS}; the hard side opens its sockets toward the easy
 *   endpoint. The address that answered becomes a candidate the link probes at once, and a
 *   probe round trip (the path module's rule) makes it the direct path.
 * - says how a direct path was found (the origin of the peer's address that answered) and why a
 *   peer is relayed ({@linkcode RelayReason}).
 *
 * Measured in the NAT lab (`deno task natlab --runs 20 --pairs port-restricted+symmetric`, real
 * server and clients, 3 labs at once on a shared 2-core machine): port-restricted × symmetric
 * direct by birthday punching in 20/20 runs at 0% loss (median 4.3 s from `connect` to direct,
 * the busier side's median 212 probes, at most 1,725) and 20/20 at 5% loss (median 5.6 s, 297
 * probes, at most 1,162); it always ended relayed before. (Two earlier batches, before fixes, had
 * 18/20 at 5%: a second attempt with a new key started right after a first one found a port whose
 * answer was lost; once, birthday punching never started.) With miniupnpd on either router every
 * pair without `udp-blocked` is direct
 * (15/15 port-mapping rows), the mapped address answering within 0.1-1.8 s.
 *
 * @module
 */
import type { Runtime } from "../../shared/runtime/runtime.ts";
import type { NatClassification } from "../nat_probe/classify.ts";
import {
  type DirectMethod,
  planDirect,
  type PunchPlan,
  type RelayReason,
  type SideFacts,
} from "../nat_probe/explain.ts";
import type { UdpAddress } from "../path_manager.ts";
import type { BirthdayEngine, BirthdayOutcome } from "./birthday_engine.ts";
import { BIRTHDAY_KEY_BYTES, decodeTraversal, encodeTraversal, type NatInfo } from "./codec.ts";

/** How long the mapped side stays passive after an introduction, ms. */
export const DEFAULT_PASSIVE_MS = 10_000;

/** The easy side waits this long after BIRTHDAY_START before probing (the hard side opens). */
export const BIRTHDAY_LEAD_MS = 300;

/** Earliest birthday start after an introduction (plain punching goes first), ms. */
export const BIRTHDAY_AFTER_INTRO_MS = 1500;

/** Pause before another attempt after one found nothing, ms. */
export const BIRTHDAY_RETRY_MS = 60_000;

/** Most birthday attempts per link (each within the budget of `../birthday/birthday.ts`). */
export const MAX_BIRTHDAY_ATTEMPTS = 3;

const MAX_HEARD = 64;

/** NAT_INFO is sent again this many times, this far apart (ms), while not direct. */
const INFO_REPEATS = 3;
const INFO_REPEAT_MS = 2000;

/** What this client knows of itself. */
export interface LocalFacts {
  /** Its NAT, once measured. */
  nat: Pick<NatClassification, "udpReachable" | "mapping" | "filtering"> | undefined;
  /** The address its gateway maps to its socket, if any. */
  mapped: UdpAddress | undefined;
  /** Its public endpoint (STUN), if known. */
  publicEndpoint: UdpAddress | undefined;
}

/** Where a peer's candidate address came from. */
export type CandidateOrigin = "host" | "server-reflexive" | "port-mapped" | "birthday";

/** What a {@linkcode LinkTraversal} needs from its link and client. */
export interface LinkTraversalHooks {
  /** Clock, timers, randomness. */
  runtime: Runtime;
  /** This client's facts now. */
  local: () => LocalFacts;
  /** Sends a TRAVERSAL body to the peer (sealed, over the route or the relay). */
  send: (body: Uint8Array) => void;
  /** Adds addresses as candidates and probes them now. */
  probe: (addresses: UdpAddress[]) => void;
  /** The client's birthday engine (absent: no birthday punching). */
  birthday?: BirthdayEngine;
  /** Never direct. */
  relayOnly?: boolean;
  /** Something the peer event should show changed (the `why`). */
  changed?: () => void;
  /** Debug log. */
  log?: (message: string) => void;
  /** Passive window of the mapped side, ms (default {@linkcode DEFAULT_PASSIVE_MS}). */
  passiveMs?: number;
}

/** How a direct path was found, or why there is none. */
export interface PathExplanation {
  /** Set while direct (or mixed). */
  how?: DirectMethod;
  /** Set while relayed. */
  why?: RelayReason;
}

/** A bounded record of one birthday attempt (for logs and tests). */
export interface BirthdayRecord {
  /** This side's role. */
  role: "easy" | "hard";
  /** Attempt number. */
  attempt: number;
  /** Datagrams this side sent. */
  packetsSent: number;
  /** Time to the answer or the end, ms. */
  elapsedMs: number;
  /** The answering address, if any. */
  remote: UdpAddress | undefined;
}

function key(address: UdpAddress): string {
  return `${address.host}|${address.port}`;
}

/**
 * Private, loopback and link-local addresses: packets to them do not use the public mapping.
 *
 * @example
 * ```ts
 * isPrivateAddress("10.0.1.2"); // true
 * isPrivateAddress("198.18.0.2"); // false
 * ```
 */
export function isPrivateAddress(host: string): boolean {
  if (host.includes(":")) {
    const lower = host.toLowerCase();
    return lower === "::1" || /^f[cd]/.test(lower) || /^fe[89ab]/.test(lower);
  }
  const [a, b] = host.split(".").map(Number);
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 169 && b === 254);
}

/**
 * The traversal state of one peer.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const sent: Uint8Array[] = [];
 * const traversal = new LinkTraversal({
 *   runtime: systemRuntime,
 *   local: () => ({ nat: undefined, mapped: undefined, publicEndpoint: undefined }),
 *   send: (body) => sent.push(body),
 *   probe: () => {},
 * });
 * traversal.sessionUp();
 * console.log(sent.length); // 1 (our NAT facts)
 * console.log(traversal.explain("relayed", undefined, 1).why); // "no answer from candidates"
 * ```
 */
export class LinkTraversal {
  readonly #hooks: LinkTraversalHooks;
  #role: "initiator" | "responder" = "responder";
  #introducedAt = -Infinity;
  readonly #origins = new Map<string, CandidateOrigin>();
  readonly #heard = new Set<string>();
  /** The peer's public addresses as the server saw them (the only birthday destinations). */
  readonly #serverSeen = new Set<string>();
  #peer: NatInfo | undefined;
  #sentInfo = "";
  #infoBody: Uint8Array | undefined;
  #infoRepeats = 0;
  #infoRepeatAt = Infinity;
  #session = false;
  #attempts = 0;
  #nextBirthdayAt = -Infinity;
  #running: { role: "easy" | "hard"; attempt: number; cancel: () => void } | undefined;
  #birthdayFailed = false;
  #birthdayAddress: string | undefined;
  #pendingEasy: { at: number; key: Uint8Array; host: string; attempt: number } | undefined;
  /** Every attempt of this link (at most {@linkcode MAX_BIRTHDAY_ATTEMPTS} per side). */
  readonly attempts: BirthdayRecord[] = [];

  /** @param hooks The link's and client's side. */
  constructor(hooks: LinkTraversalHooks) {
    this.#hooks = hooks;
  }

  /** The peer's NAT facts, once told. */
  get peerFacts(): NatInfo | undefined {
    return this.#peer;
  }

  /** The plan for this pair now. */
  get plan(): PunchPlan {
    const local = this.#hooks.local();
    const mine: SideFacts = { nat: local.nat, portMapped: local.mapped !== undefined };
    const theirs: SideFacts = {
      nat: this.#peer && this.#peer.udp !== "unknown"
        ? {
          udpReachable: this.#peer.udp === "reachable",
          mapping: this.#peer.mapping,
          filtering: this.#peer.filtering,
        }
        : undefined,
      portMapped: this.#peer?.mapped !== undefined,
    };
    return planDirect(mine, theirs, this.#hooks.relayOnly);
  }

  /**
   * A (new) introduction: our role, and where the peer's candidates came from (the server's
   * `public` is server-reflexive, `local` a host address).
   */
  introduced(
    now: number,
    role: "initiator" | "responder",
    candidates: readonly (UdpAddress & { kind?: "public" | "local" })[],
  ): void {
    // The attempt count and retry pause survive a new introduction: the budget is per link.
    this.#role = role;
    this.#introducedAt = now;
    this.learned(candidates);
  }

  /**
   * Candidates the server labelled (`introduce`, or its later `candidates` message); unlabelled
   * ones (in-band, the peer's own word) are ignored here.
   */
  learned(candidates: readonly (UdpAddress & { kind?: "public" | "local" })[]): void {
    for (const candidate of candidates) {
      if (candidate.kind === undefined) continue;
      const id = key(candidate);
      if (candidate.kind !== "local" && this.#serverSeen.size < MAX_HEARD) {
        this.#serverSeen.add(candidate.host);
      }
      const known = this.#origins.get(id);
      if (known === "port-mapped" || known === "birthday") continue;
      this.#origins.set(id, candidate.kind === "local" ? "host" : "server-reflexive");
    }
  }

  /** A session with the peer exists (again): tell it our facts. */
  sessionUp(): void {
    this.#session = true;
    this.#sentInfo = "";
    this.announce();
  }

  /** Sends our facts when they changed since last sent. */
  announce(): void {
    if (!this.#session || this.#hooks.relayOnly) return;
    const local = this.#hooks.local();
    const info: NatInfo = {
      udp: local.nat === undefined ? "unknown" : local.nat.udpReachable ? "reachable" : "blocked",
      mapping: local.nat?.mapping ?? "unknown",
      filtering: local.nat?.filtering ?? "unknown",
      ...(local.mapped ? { mapped: local.mapped } : {}),
    };
    const text = JSON.stringify(info);
    if (text === this.#sentInfo) return;
    this.#sentInfo = text;
    this.#infoBody = encodeTraversal({ type: "nat-info", ...info });
    this.#hooks.send(this.#infoBody);
    // Sent without acknowledgement: repeated a few times (a frame sealed just before the peer
    // replaced the session is lost).
    this.#infoRepeats = INFO_REPEATS;
    this.#infoRepeatAt = this.#hooks.runtime.now() + INFO_REPEAT_MS;
  }

  /** A TRAVERSAL body from the peer (authenticated by the session). */
  receive(body: Uint8Array, now: number): void {
    const message = decodeTraversal(body);
    if (message === undefined || this.#hooks.relayOnly) return;
    switch (message.type) {
      case "nat-info": {
        const { type: _, ...info } = message;
        this.#peer = info;
        if (info.mapped) {
          this.#origins.set(key(info.mapped), "port-mapped");
          this.#hooks.probe([info.mapped]);
        }
        this.#hooks.changed?.();
        return;
      }
      case "birthday-start":
        this.#startHard(message.attempt, message.key, message.easy, now);
        return;
      case "birthday-stop":
        if (this.#running?.role === "hard" && this.#running.attempt === message.attempt) {
          this.#running.cancel();
        }
        return;
    }
  }

  /** A packet of the peer arrived from `from` over UDP: we may answer there. */
  heard(from: UdpAddress): void {
    const id = key(from);
    if (this.#heard.has(id)) return;
    if (this.#heard.size >= MAX_HEARD) this.#heard.delete(this.#heard.values().next().value!);
    this.#heard.add(id);
  }

  /** This side holds a mapping and lets the peer send first (both mapped: the initiator sends). */
  #waitsForPeer(): boolean {
    if (this.#hooks.relayOnly || this.#hooks.local().mapped === undefined) return false;
    return this.#peer?.mapped === undefined || this.#role !== "initiator";
  }

  /** True while this side holds a mapping and waits for the peer to send first. */
  passive(now: number): boolean {
    if (!this.#waitsForPeer()) return false;
    return now < this.#introducedAt + (this.#hooks.passiveMs ?? DEFAULT_PASSIVE_MS);
  }

  /** May a datagram go to `to` now? (No, to a public address not yet heard from, while passive.) */
  allowSend(to: UdpAddress, now: number): boolean {
    if (!this.passive(now) || isPrivateAddress(to.host)) return true;
    return this.#heard.has(key(to));
  }

  /**
   * Starts birthday punching when the plan asks for it and this side leads (the easy side), the
   * path is not direct, and the attempt budget allows. Call on every timer run.
   */
  tick(now: number, direct: boolean): void {
    if (now >= this.#infoRepeatAt) {
      this.#infoRepeats--;
      this.#infoRepeatAt = this.#infoRepeats > 0 && !direct ? now + INFO_REPEAT_MS : Infinity;
      if (this.#infoBody && this.#session) this.#hooks.send(this.#infoBody);
    }
    const pending = this.#pendingEasy;
    if (pending && now >= pending.at) {
      this.#pendingEasy = undefined;
      this.#startEasy(pending, now);
    }
    if (direct || !this.#session || this.#running || this.#pendingEasy) return;
    if (this.#attempts >= MAX_BIRTHDAY_ATTEMPTS || now < this.#nextBirthdayAt) return;
    if (now < this.#introducedAt + BIRTHDAY_AFTER_INTRO_MS) return;
    const plan = this.plan;
    if (plan.kind !== "birthday" || plan.role !== "easy") return;
    const engine = this.#hooks.birthday;
    const endpoint = this.#hooks.local().publicEndpoint;
    const hardHost = this.#peerPublicHost();
    if (!engine || engine.busy("easy") || !endpoint || !hardHost) return;
    this.#attempts++;
    const attempt = this.#attempts;
    const birthdayKey = this.#hooks.runtime.randomBytes(BIRTHDAY_KEY_BYTES);
    this.#hooks.send(
      encodeTraversal({ type: "birthday-start", attempt, key: birthdayKey, easy: endpoint }),
    );
    this.#hooks.log?.(`birthday: attempt ${attempt} as the easy side toward ${hardHost}`);
    this.#pendingEasy = { at: now + BIRTHDAY_LEAD_MS, key: birthdayKey, host: hardHost, attempt };
  }

  /** When {@linkcode tick} next has work. */
  nextDeadline(now: number): number {
    return Math.min(this.#infoRepeatAt, this.#birthdayDeadline(now));
  }

  #birthdayDeadline(now: number): number {
    if (this.#pendingEasy) return this.#pendingEasy.at;
    if (!this.#session || this.#running || this.#attempts >= MAX_BIRTHDAY_ATTEMPTS) {
      return Infinity;
    }
    const plan = this.plan;
    if (plan.kind !== "birthday" || plan.role !== "easy") return Infinity;
    return Math.max(now, this.#nextBirthdayAt, this.#introducedAt + BIRTHDAY_AFTER_INTRO_MS);
  }

  #peerPublicHost(): string | undefined {
    for (const [id, origin] of this.#origins) {
      if (origin === "server-reflexive") return id.slice(0, id.lastIndexOf("|"));
    }
    return undefined;
  }

  #startEasy(
    pending: { key: Uint8Array; host: string; attempt: number },
    _now: number,
  ): void {
    const engine = this.#hooks.birthday;
    if (!engine) return;
    const cancel = engine.startEasy(
      pending.key,
      pending.host,
      (outcome) => this.#done("easy", pending.attempt, outcome),
    );
    if (cancel) this.#running = { role: "easy", attempt: pending.attempt, cancel };
  }

  #startHard(attempt: number, birthdayKey: Uint8Array, easy: UdpAddress, now: number): void {
    const plan = this.plan;
    const engine = this.#hooks.birthday;
    // Only when our own facts agree we are the hard side (a peer cannot make us a packet
    // cannon at will), once per attempt number, within the attempt budget.
    if (plan.kind !== "birthday" || plan.role !== "hard" || !engine || this.#running) return;
    if (this.#attempts >= MAX_BIRTHDAY_ATTEMPTS || attempt <= this.#attempts) return;
    // Toward the address the server saw the peer at, never one the peer merely names.
    if (!this.#serverSeen.has(easy.host)) return;
    this.#attempts = attempt;
    this.#origins.set(key(easy), "birthday");
    const cancel = engine.startHard(birthdayKey, easy, (outcome) => {
      this.#done("hard", attempt, outcome);
    });
    if (cancel) {
      this.#running = { role: "hard", attempt, cancel };
      this.#hooks.log?.(`birthday: attempt ${attempt} as the hard side toward ${key(easy)}`);
    }
    void now;
  }

  #done(role: "easy" | "hard", attempt: number, outcome: BirthdayOutcome): void {
    if (this.#running?.attempt === attempt) this.#running = undefined;
    if (this.attempts.length < 16) {
      this.attempts.push({
        role,
        attempt,
        packetsSent: outcome.packetsSent,
        elapsedMs: outcome.elapsedMs,
        remote: outcome.remote,
      });
    }
    this.#hooks.log?.(
      `birthday: attempt ${attempt} (${role}) ${
        outcome.remote ? `answered by ${key(outcome.remote)}` : "found no port"
      } after ${Math.round(outcome.elapsedMs)} ms, ${outcome.packetsSent} datagrams`,
    );
    if (outcome.remote === undefined) {
      this.#birthdayFailed = true;
      this.#nextBirthdayAt = this.#hooks.runtime.now() + BIRTHDAY_RETRY_MS;
      if (role === "easy") {
        this.#hooks.send(encodeTraversal({ type: "birthday-stop", attempt }));
      }
      this.#hooks.changed?.();
      return;
    }
    // No new attempt for a while, even if this pair does not validate: a new attempt at once
    // (a new key) would find the hard side still holding its sockets for this one.
    this.#nextBirthdayAt = this.#hooks.runtime.now() + BIRTHDAY_RETRY_MS;
    // The easy side learned the hard side's port; the hard side adopted its socket for the easy
    // endpoint. Either way the link probes that address now, and a round trip makes it direct.
    const remote = role === "easy" ? outcome.remote : undefined;
    if (remote) {
      this.#origins.set(key(remote), "birthday");
      this.#birthdayAddress = key(remote);
      this.#hooks.probe([remote]);
    } else {
      for (const [id, origin] of this.#origins) {
        if (origin !== "birthday") continue;
        this.#birthdayAddress = id;
        const at = id.lastIndexOf("|");
        this.#hooks.probe([{ host: id.slice(0, at), port: Number(id.slice(at + 1)) }]);
      }
    }
  }

  /**
   * How the direct path was found (`direct`/`mixed`), or why the peer is relayed (`relayed`).
   * `candidates`: how many candidates the path module holds.
   */
  explain(
    state: "none" | "direct" | "relayed" | "mixed",
    direct: UdpAddress | undefined,
    candidates: number,
  ): PathExplanation {
    if ((state === "direct" || state === "mixed") && direct) {
      const id = key(direct);
      const origin = this.#origins.get(id);
      if (origin === "birthday" || id === this.#birthdayAddress) return { how: "birthday" };
      // The peer's answer from a port nobody announced, after birthday punching ran: the hard
      // side's winning port (its acknowledgement was lost, its path probe came first).
      if (origin === undefined && (this.attempts.length > 0 || this.#running)) {
        return { how: "birthday" };
      }
      // Our mapping let the peer in when we held one and waited for it to send first.
      if (origin === "port-mapped" || this.#waitsForPeer()) return { how: "port-mapped" };
      return { how: origin ?? "peer-reflexive" };
    }
    if (state !== "relayed") return {};
    const plan = this.plan;
    if (plan.kind === "relay") return { why: plan.why };
    if (this.#birthdayFailed) return { why: "birthday punching found no port" };
    if (candidates === 0) return { why: "no direct candidates" };
    return { why: "no answer from candidates" };
  }

  /** Stops a running attempt (the link closes). */
  close(): void {
    this.#pendingEasy = undefined;
    this.#running?.cancel();
    this.#running = undefined;
    this.#session = false;
  }
}
