/**
 * Birthday punching inside the client (`../birthday/birthday.ts` does the punching itself): at
 * most one easy-side and one hard-side attempt at a time over all peers, so the client never
 * sends more than one attempt's budget at once ({@linkcode DEFAULT_BUDGET}: 100 probes/s, 2,048
 * probes on the easy side; 256 sockets, one probe each plus a refresh every 20 s, on the hard
 * side). The easy side probes from the client's own socket (its datagrams are fed in with
 * {@linkcode BirthdayEngine.handle}); the hard side's winning socket is adopted: packets to the
 * peer's address leave from it ({@linkcode BirthdayEngine.send}) and what arrives on it is
 * handed to the client's dispatcher, so the peer link validates and uses it as any direct path.
 *
 * @module
 */
import type { DatagramSocket, Runtime } from "../../shared/runtime/runtime.ts";
import { BirthdayEasy, BirthdayHard, DEFAULT_BUDGET } from "../birthday/birthday.ts";
import type { UdpAddress } from "../path_manager.ts";

/** Most adopted sockets kept (one per peer reached by birthday punching). */
export const MAX_ADOPTED_SOCKETS = 16;

/** How long the hard side keeps its sockets open waiting for a hit, ms. */
export const HARD_SIDE_TIMEOUT_MS = Math.ceil(
  (DEFAULT_BUDGET.maxProbes / DEFAULT_BUDGET.ratePerSecond) * 1000,
) + 5000;

/** The outcome of one attempt. */
export interface BirthdayOutcome {
  /** The peer's address that answered, if one did. */
  remote: UdpAddress | undefined;
  /** Datagrams this side sent in the attempt. */
  packetsSent: number;
  /** Time from the start to the answer (or the end), ms. */
  elapsedMs: number;
}

/** Settings of a {@linkcode BirthdayEngine}. */
export interface BirthdayEngineOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** Sends on the client's own socket. */
  sendMain: (bytes: Uint8Array, to: UdpAddress) => void;
  /** Hands a datagram that arrived on an adopted socket to the client's dispatcher. */
  dispatch: (bytes: Uint8Array, from: UdpAddress) => void;
  /** Address the hard side's sockets bind (default `0.0.0.0`). */
  bindHostname?: string;
  /** Debug log. */
  log?: (message: string) => void;
}

function key(address: UdpAddress): string {
  return `${address.host}|${address.port}`;
}

/**
 * Runs birthday attempts for the client's links.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const engine = new BirthdayEngine({
 *   runtime: systemRuntime, sendMain: () => {}, dispatch: () => {},
 * });
 * console.log(engine.busy("easy")); // false
 * engine.close();
 * ```
 */
export class BirthdayEngine {
  readonly #options: BirthdayEngineOptions;
  #easy: BirthdayEasy | undefined;
  #hard: BirthdayHard | undefined;
  readonly #adopted = new Map<string, DatagramSocket>();
  #closed = false;
  /** Datagrams sent by every attempt so far. */
  packetsSent = 0;

  /** @param options Runtime, the main socket's send, the dispatcher. */
  constructor(options: BirthdayEngineOptions) {
    this.#options = options;
  }

  /** True while an attempt of that side runs (a second one waits). */
  busy(side: "easy" | "hard"): boolean {
    return side === "easy" ? this.#easy !== undefined : this.#hard !== undefined;
  }

  /**
   * Starts the easy side: paced probes from the client's socket to random ports of `peerHost`.
   * Returns a cancel function, or `undefined` when an easy attempt already runs.
   */
  startEasy(
    keyBytes: Uint8Array,
    peerHost: string,
    onDone: (outcome: BirthdayOutcome) => void,
  ): (() => void) | undefined {
    if (this.#easy || this.#closed) return undefined;
    const { runtime } = this.#options;
    const started = runtime.now();
    const easy = new BirthdayEasy({
      runtime,
      key: keyBytes,
      peerAddress: peerHost,
      send: (bytes, to) => this.#options.sendMain(bytes, { host: to.hostname, port: to.port }),
    });
    this.#easy = easy;
    void easy.run().then((result) => {
      if (this.#easy === easy) this.#easy = undefined;
      this.packetsSent += easy.stats.packetsSent;
      onDone({
        remote: result && { host: result.remote.hostname, port: result.remote.port },
        packetsSent: easy.stats.packetsSent,
        elapsedMs: runtime.now() - started,
      });
    });
    return () => easy.cancel();
  }

  /**
   * Starts the hard side: sockets toward the easy side's `peer` endpoint; the winner is adopted
   * for `peer`. Returns a cancel function, or `undefined` when a hard attempt already runs.
   */
  startHard(
    keyBytes: Uint8Array,
    peer: UdpAddress,
    onDone: (outcome: BirthdayOutcome) => void,
  ): (() => void) | undefined {
    if (this.#hard || this.#closed) return undefined;
    const { runtime } = this.#options;
    const started = runtime.now();
    const hard = new BirthdayHard({
      runtime,
      key: keyBytes,
      peer: { transport: "udp", hostname: peer.host, port: peer.port },
      bindHostname: this.#options.bindHostname,
      timeoutMs: HARD_SIDE_TIMEOUT_MS,
    });
    this.#hard = hard;
    void hard.run().then((result) => {
      if (this.#hard === hard) this.#hard = undefined;
      this.packetsSent += hard.stats.packetsSent;
      if (result?.socket) {
        if (this.#closed) result.socket.close();
        else this.#adopt(result.socket, peer);
      }
      onDone({
        remote: result && { host: result.remote.hostname, port: result.remote.port },
        packetsSent: hard.stats.packetsSent,
        elapsedMs: runtime.now() - started,
      });
    });
    return () => hard.cancel();
  }

  /** Offers a datagram of the client's socket to the easy attempt; true when it took it. */
  handle(bytes: Uint8Array, from: UdpAddress): boolean {
    return this.#easy?.handle(bytes, { transport: "udp", hostname: from.host, port: from.port }) ??
      false;
  }

  /** Sends on the adopted socket for `to`, if there is one; false otherwise. */
  send(bytes: Uint8Array, to: UdpAddress): boolean {
    const socket = this.#adopted.get(key(to));
    if (socket === undefined) return false;
    socket.send(bytes, { transport: "udp", hostname: to.host, port: to.port }).catch(() => {});
    return true;
  }

  /** True when packets to `to` leave from an adopted socket. */
  adopted(to: UdpAddress): boolean {
    return this.#adopted.has(key(to));
  }

  #adopt(socket: DatagramSocket, peer: UdpAddress): void {
    const id = key(peer);
    this.#adopted.get(id)?.close();
    this.#adopted.delete(id);
    if (this.#adopted.size >= MAX_ADOPTED_SOCKETS) {
      const [oldest, old] = this.#adopted.entries().next().value!;
      old.close();
      this.#adopted.delete(oldest);
    }
    this.#adopted.set(id, socket);
    this.#options.log?.(
      `birthday: socket ${socket.addr.port} adopted for ${peer.host}:${peer.port}`,
    );
    void this.#read(socket, id);
  }

  async #read(socket: DatagramSocket, id: string): Promise<void> {
    const buffer = new Uint8Array(65_536);
    let errors = 0;
    // Ends when the socket closes (replaced, released, or the client stops), or after 64 errors
    // in a row (ICMP errors surface as receive errors: a few are normal).
    while (!this.#closed && this.#adopted.get(id) === socket && errors < 64) {
      let bytes: Uint8Array;
      let from;
      try {
        [bytes, from] = await socket.receive(buffer);
        errors = 0;
      } catch (error) {
        if (error instanceof Deno.errors.BadResource) return;
        errors++;
        continue;
      }
      try {
        this.#options.dispatch(bytes.slice(), { host: from.hostname, port: from.port });
      } catch (error) {
        this.#options.log?.(`birthday socket: ${error}`);
      }
    }
  }

  /**
   * Closes the adopted socket for `peer` (the link is gone).
   *
   * @example
   * ```ts
   * // engine.release({ host: "198.18.0.2", port: 40000 });
   * ```
   */
  release(peer: UdpAddress): void {
    const socket = this.#adopted.get(key(peer));
    if (socket === undefined) return;
    this.#adopted.delete(key(peer));
    socket.close();
  }

  /** Stops every attempt and closes every adopted socket. */
  close(): void {
    this.#closed = true;
    this.#easy?.cancel();
    this.#hard?.cancel();
    for (const socket of this.#adopted.values()) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
    this.#adopted.clear();
  }
}
