/**
 * Birthday punching: a direct UDP path between a peer behind an endpoint-dependent ("hard",
 * symmetric) NAT and one behind an endpoint-independent ("easy") NAT that filters by sender
 * port, the pair plain hole punching cannot join.
 *
 * The hard side opens {@linkcode DEFAULT_HARD_SOCKETS} sockets and sends one authenticated probe
 * from each to the easy side's public endpoint: its NAT gives each a random public port and
 * remembers the flow. The easy side sends probes from its one socket to random ports of the
 * hard side's public address. When a probe hits one of the hard side's open ports, it is let in
 * as the reply of that flow; and the easy side's probe has also opened its own filter for that
 * port. With n = 256 open ports out of the 64,512 a NAT picks from, k probes find one with
 * probability 1 - (1 - n/64512)^k: 50% at 174 probes, 90% at 579, 98% at 1,024, 99.97% at 2,048
 * (Tailscale's figure: about 98% after 1,024).
 *
 * Packet budget (what keeps the client from being a packet cannon toward unverified addresses):
 * the easy side sends at most {@linkcode DEFAULT_BUDGET}.ratePerSecond = 100 probes per second
 * and {@linkcode DEFAULT_BUDGET}.maxProbes = 2,048 per attempt (29-byte payload, 57 bytes on the
 * wire: 5.7 kB/s, 117 kB in all); the hard side sends one probe per socket at the same pace (one
 * verified destination: the easy side's endpoint from signaling) and one refresh per socket every
 * 20 s while waiting (its NAT forgets unanswered flows after 30 s). The first authenticated
 * answer wins; the hard side closes every other socket at once. The winner of each side answers
 * three more times (200, 400 and 800 ms later), so one lost answer does not lose the pair.
 *
 * Both sides use only the injected {@linkcode Runtime}.
 *
 * @module
 */
import type { DatagramSocket, NetAddress, Runtime } from "../../shared/runtime/runtime.ts";
import { decodeProbe, encodeProbe, ProbeType } from "./probe_codec.ts";

/** Sockets the hard side opens. */
export const DEFAULT_HARD_SOCKETS = 256;

/** The easy side's probe budget. */
export const DEFAULT_BUDGET = { ratePerSecond: 100, maxProbes: 2048 } as const;

/** The ports a NAT assigns (and the easy side guesses among). */
export const GUESS_PORTS = { first: 1024, last: 65535 } as const;

/** How the attempt ended. */
export interface BirthdayResult {
  /** The peer's address that answered. */
  remote: NetAddress;
  /** The hard side's winning socket (the easy side keeps its own). */
  socket?: DatagramSocket;
  /** Datagrams this side sent. */
  packetsSent: number;
  /** Time from start to the first authenticated answer, ms. */
  elapsedMs: number;
}

/** Counters, readable while running. */
export interface BirthdayStats {
  /** Datagrams sent so far. */
  packetsSent: number;
}

/** Settings of the hard side. */
export interface BirthdayHardOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** Shared key from the signaling session. */
  key: Uint8Array;
  /** The easy side's public endpoint. */
  peer: NetAddress;
  /** Sockets to open (default 256). */
  sockets?: number;
  /** Address to bind (default `0.0.0.0`). */
  bindHostname?: string;
  /** Opening pace, sockets per second (default 100). */
  ratePerSecond?: number;
  /** Refresh interval of each socket's flow, ms (default 20,000). */
  refreshMs?: number;
  /** Give up after this long, ms (default 30,000). */
  timeoutMs?: number;
}

function randomNonce(runtime: Runtime): Uint8Array {
  return runtime.randomBytes(8);
}

/**
 * The hard side: many sockets toward the easy side; the first that hears an authenticated probe
 * or answer wins and the rest close.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const hard = new BirthdayHard({
 *   runtime: systemRuntime, key: new Uint8Array(32), sockets: 2, timeoutMs: 10,
 *   peer: { transport: "udp", hostname: "127.0.0.1", port: 9 },
 * });
 * console.log(await hard.run()); // undefined (nobody answered in 10 ms)
 * ```
 */
export class BirthdayHard {
  readonly stats: BirthdayStats = { packetsSent: 0 };
  readonly #options: BirthdayHardOptions;
  readonly #sockets: DatagramSocket[] = [];
  readonly #timers = new Set<number>();
  #done = false;
  #finish: ((result: BirthdayResult | undefined) => void) | undefined;

  /** @param options Key, peer, sockets, pace. */
  constructor(options: BirthdayHardOptions) {
    this.#options = options;
  }

  /** Number of sockets open now. */
  get openSockets(): number {
    return this.#sockets.length;
  }

  #timer(callback: () => void, ms: number): void {
    const id = this.#options.runtime.setTimer(() => {
      this.#timers.delete(id);
      callback();
    }, ms);
    this.#timers.add(id);
  }

  #send(socket: DatagramSocket, type: ProbeType): void {
    if (this.#done && type === ProbeType.HardProbe) return;
    this.stats.packetsSent++;
    const bytes = encodeProbe(this.#options.key, type, randomNonce(this.#options.runtime));
    socket.send(bytes, this.#options.peer).catch(() => {});
  }

  /** Opens the sockets and waits for the winner; `undefined` on timeout or {@linkcode cancel}. */
  run(): Promise<BirthdayResult | undefined> {
    const { runtime } = this.#options;
    const count = this.#options.sockets ?? DEFAULT_HARD_SOCKETS;
    const interval = 1000 / (this.#options.ratePerSecond ?? DEFAULT_BUDGET.ratePerSecond);
    const refreshMs = this.#options.refreshMs ?? 20_000;
    const started = runtime.now();
    return new Promise((resolve) => {
      this.#finish = (result) => {
        if (this.#done) return;
        this.#done = true;
        for (const id of this.#timers) runtime.clearTimer(id);
        this.#timers.clear();
        for (const socket of this.#sockets.splice(0)) {
          if (socket !== result?.socket) socket.close();
        }
        if (result?.socket) this.#sockets.push(result.socket);
        resolve(result);
      };
      const open = (index: number) => {
        if (this.#done || index >= count) return;
        let socket: DatagramSocket;
        try {
          socket = runtime.net.listenDatagram({
            hostname: this.#options.bindHostname ?? "0.0.0.0",
            port: 0,
          });
        } catch {
          // Out of ports or descriptors: carry on with what is open.
          return;
        }
        this.#sockets.push(socket);
        void this.#listen(socket, started);
        this.#send(socket, ProbeType.HardProbe);
        const refresh = () => {
          if (this.#done) return;
          this.#send(socket, ProbeType.HardProbe);
          this.#timer(refresh, refreshMs);
        };
        this.#timer(refresh, refreshMs);
        this.#timer(() => open(index + 1), interval);
      };
      open(0);
      this.#timer(() => this.#finish?.(undefined), this.#options.timeoutMs ?? 30_000);
    });
  }

  async #listen(socket: DatagramSocket, started: number): Promise<void> {
    // Bounded: a socket reads at most 64 datagrams (probes are 29 bytes; the buffer 64).
    for (let i = 0; i < 64 && !this.#done; i++) {
      let bytes: Uint8Array;
      let from: NetAddress;
      try {
        [bytes, from] = await socket.receive(new Uint8Array(64));
      } catch {
        return;
      }
      // Only the easy side's address (its port may differ if its NAT remapped it).
      if (from.hostname !== this.#options.peer.hostname) continue;
      const probe = decodeProbe(this.#options.key, bytes);
      if (probe === undefined) continue;
      if (probe.type !== ProbeType.EasyProbe && probe.type !== ProbeType.EasyAck) continue;
      if (probe.type === ProbeType.EasyProbe) this.#send(socket, ProbeType.HardAck);
      if (!this.#done) {
        // Answer a few times more: the easy side stops probing only once it hears us.
        for (const delay of [200, 400, 800]) {
          this.#options.runtime.setTimer(() => {
            if (this.#sockets.includes(socket)) this.#send(socket, ProbeType.HardAck);
          }, delay);
        }
        this.#finish?.({
          remote: from,
          socket,
          packetsSent: this.stats.packetsSent,
          elapsedMs: this.#options.runtime.now() - started,
        });
        // The winner's socket now belongs to whoever adopts it (the client reads it from here
        // on): this loop must not take its next datagram.
        return;
      }
    }
  }

  /** Stops and closes every socket (the winner's too, unless it was handed out by `run`). */
  cancel(): void {
    this.#finish?.(undefined);
    for (const socket of this.#sockets.splice(0)) socket.close();
  }
}

/** Settings of the easy side. */
export interface BirthdayEasyOptions {
  /** Clock, timers, randomness. */
  runtime: Runtime;
  /** Shared key from the signaling session. */
  key: Uint8Array;
  /** The hard side's public IP address. */
  peerAddress: string;
  /** Sends a datagram on the easy side's one socket (the client's, shared). */
  send: (bytes: Uint8Array, to: NetAddress) => void;
  /** Probes per second (default 100). */
  ratePerSecond?: number;
  /** Most probes (default 2,048). */
  maxProbes?: number;
  /** Wait after the last probe for a late answer, ms (default 2,000). */
  lingerMs?: number;
}

/**
 * The easy side: probes random ports of the hard side's address at a paced rate within the
 * budget; datagrams from the shared socket are fed in with {@linkcode handle}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const easy = new BirthdayEasy({
 *   runtime: systemRuntime, key: new Uint8Array(32), peerAddress: "127.0.0.1", maxProbes: 1,
 *   lingerMs: 1, send: () => {},
 * });
 * console.log(await easy.run()); // undefined
 * ```
 */
export class BirthdayEasy {
  readonly stats: BirthdayStats & { probes: number } = { packetsSent: 0, probes: 0 };
  readonly #options: BirthdayEasyOptions;
  readonly #tried = new Set<number>();
  #timer: number | undefined;
  #started = 0;
  #finish: ((result: BirthdayResult | undefined) => void) | undefined;
  #done = false;

  /** @param options Key, peer address, send hook, budget. */
  constructor(options: BirthdayEasyOptions) {
    this.#options = options;
  }

  #nextPort(): number {
    const span = GUESS_PORTS.last - GUESS_PORTS.first + 1;
    // Distinct ports: a repeat guess is wasted budget.
    for (let i = 0; i < 64; i++) {
      const port = GUESS_PORTS.first + Math.floor(this.#options.runtime.random() * span);
      if (!this.#tried.has(port)) {
        this.#tried.add(port);
        return port;
      }
    }
    return GUESS_PORTS.first + Math.floor(this.#options.runtime.random() * span);
  }

  #send(type: ProbeType, to: NetAddress): void {
    this.stats.packetsSent++;
    this.#options.send(
      encodeProbe(this.#options.key, type, this.#options.runtime.randomBytes(8)),
      to,
    );
  }

  /** Probes until an authenticated answer or the budget is spent. */
  run(): Promise<BirthdayResult | undefined> {
    const { runtime } = this.#options;
    const interval = 1000 / (this.#options.ratePerSecond ?? DEFAULT_BUDGET.ratePerSecond);
    const max = Math.min(
      this.#options.maxProbes ?? DEFAULT_BUDGET.maxProbes,
      DEFAULT_BUDGET.maxProbes,
    );
    this.#started = runtime.now();
    return new Promise((resolve) => {
      this.#finish = (result) => {
        if (this.#done) return;
        this.#done = true;
        runtime.clearTimer(this.#timer);
        resolve(result);
      };
      const tick = () => {
        if (this.#done) return;
        if (this.stats.probes >= max) {
          this.#timer = runtime.setTimer(
            () => this.#finish?.(undefined),
            this.#options.lingerMs ?? 2000,
          );
          return;
        }
        this.stats.probes++;
        this.#send(ProbeType.EasyProbe, {
          transport: "udp",
          hostname: this.#options.peerAddress,
          port: this.#nextPort(),
        });
        this.#timer = runtime.setTimer(tick, interval);
      };
      tick();
    });
  }

  /**
   * Offers a received datagram; returns true when it was a probe of this attempt (consumed).
   */
  handle(bytes: Uint8Array, from: NetAddress): boolean {
    if (from.hostname !== this.#options.peerAddress) return false;
    const probe = decodeProbe(this.#options.key, bytes);
    if (probe === undefined) return false;
    if (probe.type !== ProbeType.HardProbe && probe.type !== ProbeType.HardAck) return false;
    if (probe.type === ProbeType.HardProbe) this.#send(ProbeType.EasyAck, from);
    if (!this.#done) {
      if (probe.type === ProbeType.HardAck) this.#send(ProbeType.EasyAck, from);
      // Answer a few times more: the hard side keeps all its sockets open until it hears us,
      // and a lost answer would leave the winning socket to its timeout.
      const to = { ...from };
      for (const delay of [200, 400, 800]) {
        this.#options.runtime.setTimer(() => this.#send(ProbeType.EasyAck, to), delay);
      }
      this.#finish?.({
        remote: { ...from },
        packetsSent: this.stats.packetsSent,
        elapsedMs: this.#options.runtime.now() - this.#started,
      });
    }
    return true;
  }

  /** Stops probing. */
  cancel(): void {
    this.#finish?.(undefined);
  }
}
