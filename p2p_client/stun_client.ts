/**
 * The client side of authenticated STUN on the shared UDP socket: Binding requests to the
 * server's STUN port with USERNAME / MESSAGE-INTEGRITY (short-term, keyed by `stunPassword`) and
 * FINGERPRINT, retransmitted per RFC 8489 (RTO 500 ms doubling, at most 7 sends, the
 * last one waited on for 16 RTO), repeated every
 * `keepaliveMs` as a NAT keepalive. The server learns the public endpoint from these requests and
 * reports it over TCP (`endpoint`); the mapped address in the response is reported here too.
 *
 * @module
 */
import type { UdpAddress } from "./path_manager.ts";
import { STUN_MAX_SENDS, stunRetransmitWaitMs } from "../shared/stun/retransmit.ts";

/** The STUN codec operations the client needs (plugged in from `shared/stun`). */
export interface StunBindingCodec {
  /** Encodes an authenticated Binding request with a new transaction ID. */
  encodeRequest(
    transactionId: Uint8Array,
    username: string,
    password: string,
  ): Uint8Array;
  /**
   * Decodes a Binding response. Returns its transaction ID and either the XOR-MAPPED-ADDRESS or
   * an error code; undefined for anything else (not a response, bad integrity).
   */
  decodeResponse(
    bytes: Uint8Array,
    password: string,
  ):
    | { transactionId: Uint8Array; mapped: UdpAddress }
    | { transactionId: Uint8Array; errorCode: number }
    | undefined;
}

/** Settings and hooks of a {@linkcode StunClient}. */
export interface StunClientOptions {
  /** The codec. */
  codec: StunBindingCodec;
  /** Sends a datagram on the shared socket. */
  send: (bytes: Uint8Array, to: UdpAddress) => void;
  /** The mapped (public) address changed. */
  onMapped: (address: UdpAddress) => void;
  /**
   * While {@linkcode StunClient.watch}ing: the server answers again after a request that got no
   * answer (the network healed, or the server is back).
   */
  onReachable?: () => void;
  /** A round of retransmissions got no answer, or an error response. */
  onFailure?: (reason: string) => void;
  /** Clock, ms. */
  now: () => number;
  /** 12 random bytes. */
  randomTransactionId: () => Uint8Array;
  /** Interval between keepalive requests, ms (default 15,000). */
  keepaliveMs?: number;
  /** Initial retransmission timeout, ms (default 500). */
  rtoMs?: number;
  /** Most sends per transaction (default 7, RFC 8489 Rc). */
  maxSends?: number;
}

interface Transaction {
  id: Uint8Array;
  request: Uint8Array;
  sends: number;
  nextAt: number;
}

/**
 * Keeps the public endpoint learned and the NAT binding open.
 *
 * @example
 * ```ts
 * // const stun = new StunClient({ codec, send, onMapped: (a) => console.log(a) });
 * // stun.configure({ host: "127.0.0.1", port: 54321 }, "user", "pass");
 * // timer.arm(stun.nextDeadline()); // then stun.tick() when due
 * ```
 */
export class StunClient {
  readonly #options: StunClientOptions;
  readonly #now: () => number;
  #server: UdpAddress | undefined;
  #username = "";
  #password = "";
  #transaction: Transaction | undefined;
  #nextRequestAt = 0;
  #lastStartedAt = -Infinity;
  /** While not registered: the interval of reachability requests (see `watch`). */
  #watchMs: number | undefined;
  #watchMissed = false;
  #mapped: UdpAddress | undefined;

  /**
   * Creates a client (idle until {@linkcode StunClient.configure}).
   *
   * @example
   * ```ts
   * // new StunClient({ codec, send, onMapped });
   * ```
   */
  constructor(options: StunClientOptions) {
    this.#options = options;
    this.#now = options.now;
  }

  /** The last mapped address. */
  get mapped(): UdpAddress | undefined {
    return this.#mapped;
  }

  /**
   * Points the client at a server with fresh credentials (after each registration) and sends a
   * request at once.
   *
   * @example
   * ```ts
   * // stun.configure({ host: "127.0.0.1", port: 54321 }, registered.stunUsername, registered.stunPassword);
   * ```
   */
  configure(server: UdpAddress, username: string, password: string): void {
    this.#watchMs = undefined;
    this.#server = server;
    this.#username = username;
    this.#password = password;
    this.#transaction = undefined;
    this.#nextRequestAt = this.#now();
    this.tick();
  }

  /**
   * Asks for the mapped address now, unless a request is in flight or one started within
   * `minIntervalMs`: a direct path just left a probe unanswered, and the cause may be our own NAT
   * mapping expiring (a new public port nobody knows yet; the keepalive would find it only up to
   * 15 s later). With `restart`, a request in flight is replaced by a new one. Returns true when
   * a request went out.
   *
   * @example
   * ```ts
   * // stun.refresh(); // false while idle or a request is in flight
   * ```
   */
  refresh(minIntervalMs = 1000, restart = false): boolean {
    if (!this.#server || (this.#transaction && !restart)) return false;
    const now = this.#now();
    if (now < this.#lastStartedAt + minIntervalMs) return false;
    // `restart`: a new transaction replaces one in flight (its retransmissions slow down fast;
    // a fresh one asks again at once).
    this.#transaction = undefined;
    this.#nextRequestAt = now;
    this.tick();
    return true;
  }

  /**
   * Stops sending (while not registered).
   *
   * @example
   * ```ts
   * // stun.pause();
   * ```
   */
  pause(): void {
    this.#server = undefined;
    this.#transaction = undefined;
    this.#watchMs = undefined;
  }

  /**
   * While the client is not registered: one request every `intervalMs` to the last server, each
   * given up at the next, and {@linkcode StunClientOptions.onReachable} when an answer (a 401 for
   * the credentials of the lost registration counts) follows one that got none. A healed
   * partition or a restarted server is thus noticed within `intervalMs`, while the signaling
   * reconnection may be sleeping in its backoff. Ends with {@linkcode StunClient.configure} or
   * {@linkcode StunClient.pause}. Does nothing without a server.
   *
   * @example
   * ```ts
   * // stun.watch(1000);
   * ```
   */
  watch(intervalMs: number): void {
    if (!this.#server) return;
    this.#watchMs = intervalMs;
    this.#watchMissed = false;
    this.#transaction = undefined;
    this.#nextRequestAt = this.#now();
    this.tick();
  }

  /**
   * When {@linkcode StunClient.tick} next has work (runtime ms), or `Infinity` while idle.
   *
   * @example
   * ```ts
   * // timer.arm(stun.nextDeadline());
   * ```
   */
  nextDeadline(): number {
    if (!this.#server) return Infinity;
    if (this.#watchMs !== undefined) return this.#nextRequestAt;
    return this.#transaction ? this.#transaction.nextAt : this.#nextRequestAt;
  }

  /**
   * Runs timers: starts a keepalive request when due, retransmits the pending one.
   *
   * @example
   * ```ts
   * // stun.tick();
   * ```
   */
  tick(): void {
    const server = this.#server;
    if (!server) return;
    const now = this.#now();
    if (this.#watchMs !== undefined) {
      if (now < this.#nextRequestAt) return;
      if (this.#transaction) this.#watchMissed = true;
      const id = this.#options.randomTransactionId();
      const request = this.#options.codec.encodeRequest(id, this.#username, this.#password);
      this.#transaction = { id, request, sends: 1, nextAt: Infinity };
      this.#nextRequestAt = now + this.#watchMs;
      this.#options.send(request, server);
      return;
    }
    const maxSends = this.#options.maxSends ?? STUN_MAX_SENDS;
    if (!this.#transaction && now >= this.#nextRequestAt) {
      const id = this.#options.randomTransactionId();
      this.#transaction = {
        id,
        request: this.#options.codec.encodeRequest(id, this.#username, this.#password),
        sends: 0,
        nextAt: now,
      };
      this.#lastStartedAt = now;
      this.#nextRequestAt = now + (this.#options.keepaliveMs ?? 15_000);
    }
    const transaction = this.#transaction;
    if (!transaction || now < transaction.nextAt) return;
    if (transaction.sends >= maxSends) {
      this.#transaction = undefined;
      this.#options.onFailure?.(`no STUN answer from ${server.host}:${server.port}`);
      return;
    }
    transaction.sends++;
    // RFC 8489: RTO doubling; the last send waits 16 RTO (Rm) instead of doubling again.
    transaction.nextAt = now +
      stunRetransmitWaitMs(transaction.sends, this.#options.rtoMs, maxSends);
    this.#options.send(transaction.request, server);
  }

  /**
   * Handles a STUN datagram from the socket. Returns true when it answered our transaction.
   *
   * @example
   * ```ts
   * // stun.receive(bytes, from);
   * ```
   */
  receive(bytes: Uint8Array, from: UdpAddress): boolean {
    const transaction = this.#transaction;
    const server = this.#server;
    if (!transaction || !server || from.port !== server.port) return false;
    const decoded = this.#options.codec.decodeResponse(bytes, this.#password);
    if (!decoded || decoded.transactionId.toHex() !== transaction.id.toHex()) return false;
    this.#transaction = undefined;
    if (this.#watchMs !== undefined) {
      if (this.#watchMissed) this.#options.onReachable?.();
      this.#watchMissed = false;
      return true;
    }
    if ("errorCode" in decoded) {
      this.#options.onFailure?.(
        `STUN error ${decoded.errorCode} from ${server.host}:${server.port}`,
      );
      return true;
    }
    const previous = this.#mapped;
    this.#mapped = decoded.mapped;
    if (
      !previous || previous.host !== decoded.mapped.host || previous.port !== decoded.mapped.port
    ) {
      this.#options.onMapped(decoded.mapped);
    }
    return true;
  }
}
