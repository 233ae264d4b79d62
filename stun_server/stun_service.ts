/**
 * The server's STUN port: RFC 8489 Binding (with RFC 5780 behaviour discovery when given an
 * alternate address or port), and TURN (RFC 8656, `turn/`) over UDP and over TCP on the same
 * port. Answers authenticate registered clients with short-term credentials; everything else is
 * dropped and counted.
 *
 * Sockets: one UDP socket per local address (and per alternate address and port), so every
 * answer leaves from the address the request arrived at. Bound to all interfaces, the service
 * enumerates the host's addresses and re-enumerates every few seconds, binding new addresses
 * and closing gone ones (coturn binds one socket per listening address; a wildcard socket
 * answers from whatever source the kernel picks, which Chromium and NATs discard). One TCP
 * listener on the same port carries STUN and TURN framed as RFC 8656 section 11.2 says
 * (STUN messages and ChannelData padded to 4 bytes).
 *
 * Policy, in the order a datagram meets it:
 *
 * 1. ChannelData (first two bits 01) goes to the TURN server (dropped without one).
 * 2. Not STUN-shaped (fewer than 20 bytes, leading bits set, length field not matching the
 *    datagram) is dropped (`notStun`). Responses are never answered (`notRequest`), nor are
 *    indications other than TURN's Send. Requests of TURN methods go to the TURN server, other
 *    methods than Binding are dropped (`unsupportedMethod`). No reply is an amplifier.
 * 3. RFC 3489 ("classic STUN") Binding requests, recognized by the missing magic cookie, are
 *    accepted: the answer copies the request's 128-bit transaction ID and carries MAPPED-ADDRESS
 *    only, as RFC 8489 section 12 asks. They must be exactly framed and carry no
 *    comprehension-required attribute other than a flag-less CHANGE-REQUEST, else they get 420.
 * 4. A malformed message or one whose FINGERPRINT does not match is dropped (`malformed`,
 *    `badFingerprint`).
 * 5. With USERNAME: short-term authentication (RFC 8489 section 9.1.3): 400 when USERNAME or
 *    MESSAGE-INTEGRITY(-SHA256) is missing, 401 on an unknown user or a bad integrity, else a
 *    signed answer and the user directory is told.
 * 6. An unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES; so do
 *    CHANGE-REQUEST flags and RESPONSE-PORT the service cannot honour (no alternate address or
 *    port configured, or over TCP).
 * 7. Otherwise: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, with RFC 5780 RESPONSE-ORIGIN and
 *    OTHER-ADDRESS, SOFTWARE, and FINGERPRINT when the request had one; sent from the socket
 *    CHANGE-REQUEST names, to the port RESPONSE-PORT names.
 *
 * Speed: one receive buffer per socket and one response writer per service, validation on the
 * raw bytes before decoding, sends not awaited (failures counted). Measured (bench/README.md, busy
 * 2-core machine): 12.8 µs of CPU per Binding on Deno's sockets (a plain Deno responder: 11.5),
 * 5.8 µs on the batched sockets of `--batched-udp`; coturn `-m 1` 7.7 µs.
 *
 * @module
 */
import { decodeFreshness, P2P_FRESHNESS_ATTRIBUTE } from "../shared/stun/freshness.ts";
import type { StunFreshness } from "./stun_freshness.ts";
import {
  type DatagramSocket,
  type NetAddress,
  type Runtime,
  type StreamConn,
  type StreamListener,
  systemRuntime,
  type TimerId,
} from "../shared/runtime/mod.ts";
import {
  addAddressAttribute,
  addErrorCode,
  addFingerprint,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addUnknownAttributes,
  AttributeType,
  decodeStunMessage,
  decodeTextValue,
  getResponsePort,
  HEADER_LENGTH,
  looksLikeStun,
  streamFrameLength,
  type StunMessage,
  StunMessageWriter,
  TurnAttributeType,
  unmapIpv4,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "../shared/stun/mod.ts";
import { type ClientLink, fiveTupleKey } from "./turn/client_link.ts";
import { TURN_COMPREHENDED, TURN_METHODS, type TurnServer } from "./turn/turn_server.ts";

/** The directory of STUN users (registered clients) the service authenticates against. */
export interface StunUserDirectory {
  /** Short-term MESSAGE-INTEGRITY key for a USERNAME (the UTF-8 bytes of its password), or undefined if unknown. */
  keyFor(username: string): Uint8Array | undefined;
  /** Called after a Binding request with this USERNAME passed MESSAGE-INTEGRITY; `address` is its source (IPv4-mapped IPv6 already turned into IPv4). */
  onAuthenticatedBinding(username: string, address: { hostname: string; port: number }): void;
}

/** Something noteworthy and rare (never per answered packet) the service reports. */
export type StunServiceEvent =
  | { type: "listening"; addresses: NetAddress[] }
  | { type: "addresses-changed"; added: string[]; removed: string[] }
  | { type: "bind-failed"; address: string; error: string }
  | { type: "ipv6-unavailable"; error: string }
  | { type: "tcp-unavailable"; error: string }
  | { type: "send-failed"; error: string }
  | { type: "receive-failed"; error: string }
  | { type: "directory-failed"; error: string }
  | { type: "internal-error"; error: string }
  | { type: "closed" };

/** RFC 5780: the alternate address and/or port of this server. */
export interface AlternateAddress {
  /** A second local address of the same family as `hostname` (needs `hostname`). */
  hostname?: string;
  /** A second port. */
  port?: number;
}

/** Options of {@linkcode StunService.listen}. */
export interface StunServiceOptions {
  /**
   * Address to bind. Default: every local address (IPv4 and IPv6, link-local IPv6 excepted),
   * one socket each, re-enumerated every {@linkcode addressRefreshMs}; where addresses cannot be
   * listed, the wildcard (`::` dual-stack, else `0.0.0.0`).
   */
  hostname?: string;
  /** UDP (and TCP) port (default 54321; 0 picks a free one). */
  port?: number;
  /** SOFTWARE attribute of answers (default `p2p-stun`; empty string: none). */
  software?: string;
  /** Registered clients' credentials; without it every USERNAME is unknown (401). */
  users?: StunUserDirectory;
  /** Rare events (listening, send/receive failures, close) for logging. */
  onEvent?: (event: StunServiceEvent) => void;
  /** Clock, timers and sockets (default: the system's). */
  runtime?: Runtime;
  /**
   * Lists the local addresses to bind when no hostname is given (default: the runtime's
   * `net.interfaceAddresses`, the system's; a network without it binds the wildcard).
   */
  localAddresses?: () => string[];
  /** How often local addresses are re-enumerated, ms (default 5000; 0: never). */
  addressRefreshMs?: number;
  /** Also serve STUN/TURN over TCP on the same port (default true). */
  tcp?: boolean;
  /** Most open TCP connections (default 1024). */
  maxTcpConnections?: number;
  /** A TCP connection without an allocation is closed after this long without a frame (default 60 s). */
  tcpIdleMs?: number;
  /** RFC 5780 behaviour discovery: the alternate address and/or port. */
  alternate?: AlternateAddress;
  /** The TURN server to hand TURN messages and ChannelData to (default: none, dropped). */
  turn?: TurnServer;
  /** Per-source answer limit (issue 11; `stun_rate_limit.ts`); absent: unlimited. */
  rateLimit?: { allow(host: string): unknown };
  /** Replay filter of authenticated requests (issue 11; `stun_freshness.ts`). */
  freshness?: StunFreshness;
}

/** Why a datagram was dropped without an answer. */
export interface StunDropCounters {
  /** Not STUN-shaped: too short, leading bits set, length field mismatch. */
  notStun: number;
  /** A response or an indication (never answered). */
  notRequest: number;
  /** A request of another method than Binding (and TURN's, when TURN is on). */
  unsupportedMethod: number;
  /** Malformed attributes. */
  malformed: number;
  /** FINGERPRINT present but wrong. */
  badFingerprint: number;
  /** Over the per-source answer rate. */
  rateLimited: number;
  /** An authenticated request seen before (a replay): it changes nothing. */
  replayed: number;
}

/** Live counters of a {@linkcode StunService}. */
export interface StunServiceStats {
  /** Datagrams (and TCP frames) received. */
  received: number;
  /** Success responses sent. */
  answered: number;
  /** Error responses sent (400, 401, 420). */
  errors: number;
  /** Authenticated Bindings (also counted in `answered`). */
  authenticated: number;
  /** Sends that failed. */
  sendFailures: number;
  /** Datagrams whose handling threw (a bug; reported as `internal-error` events). */
  internalErrors: number;
  /** TURN messages and ChannelData handed to the TURN server. */
  turn: number;
  /** TCP connections accepted so far. */
  tcpAccepted: number;
  /** TCP connections refused (over the limit). */
  tcpRefused: number;
  /** Dropped datagrams by reason. */
  dropped: StunDropCounters;
}

/** Default UDP port of the STUN service. */
export const DEFAULT_STUN_PORT = 54321;
/** Default SOFTWARE attribute value. */
export const DEFAULT_SOFTWARE = "p2p-stun";

const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const BINDING_ERROR = 0x0111;
const RECEIVE_BUFFER_BYTES = 65_536;
const TCP_BUFFER_BYTES = 20 + 65_535 + 4;
const TCP_QUEUE_LIMIT = 1 << 20;

/** Comprehension-required attributes the service processes in RFC 5389+ Binding requests. */
const COMPREHENDED: ReadonlySet<number> = new Set([
  AttributeType.Username,
  AttributeType.MessageIntegrity,
  AttributeType.MessageIntegritySha256,
  AttributeType.ChangeRequest,
  AttributeType.Priority,
  AttributeType.UseCandidate,
  TurnAttributeType.ResponsePort,
  TurnAttributeType.Padding,
]);
/** ... and in RFC 3489 requests. */
const COMPREHENDED_LEGACY: ReadonlySet<number> = new Set([AttributeType.ChangeRequest]);

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function softwareBytes(software: string | undefined): Uint8Array | undefined {
  const text = software ?? DEFAULT_SOFTWARE;
  if (text === "") return undefined;
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 763 || [...text].length > 127) {
    throw new RangeError("SOFTWARE is at most 127 characters and 763 bytes");
  }
  return bytes;
}

function isAddressInUse(error: unknown): boolean {
  return error instanceof Deno.errors.AddrInUse ||
    (error instanceof Error && /address.*in use/i.test(error.message));
}

function familyOf(hostname: string): "IPv4" | "IPv6" {
  return hostname.includes(":") ? "IPv6" : "IPv4";
}

/** One bound UDP socket and its RFC 5780 role. */
class UdpEndpoint {
  readonly socket: DatagramSocket;
  /** The bound address (IPv4-mapped unmapped). */
  readonly address: NetAddress;
  /** 1 when bound to the alternate address. */
  readonly altIp: boolean;
  /** 1 when bound to the alternate port. */
  readonly altPort: boolean;
  loop: Promise<void> = Promise.resolve();
  closed = false;
  /** Five-tuple keys by source address object. */
  readonly keys = new WeakMap<NetAddress, string>();

  constructor(socket: DatagramSocket, altIp: boolean, altPort: boolean) {
    this.socket = socket;
    this.address = {
      transport: "udp",
      hostname: unmapIpv4(socket.addr.hostname),
      port: socket.addr.port,
    };
    this.altIp = altIp;
    this.altPort = altPort;
  }
}

/** Where an answer goes: a UDP endpoint and destination, or a TCP client. */
interface Origin {
  /** The UDP socket the request arrived on (undefined over TCP). */
  endpoint: UdpEndpoint | undefined;
  /** The TCP client (undefined over UDP). */
  tcp: TcpClient | undefined;
  /** The requester's address as the socket reported it. */
  source: NetAddress;
}

/**
 * A running STUN service.
 *
 * @example
 * ```ts
 * import { StunService } from "./stun_service.ts";
 * const service = StunService.listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(service.addresses[0].port > 0); // true
 * console.log(service.stats.received); // 0
 * await service.close();
 * ```
 */
export class StunService {
  /** Live counters. */
  readonly stats: StunServiceStats = {
    received: 0,
    answered: 0,
    errors: 0,
    authenticated: 0,
    sendFailures: 0,
    internalErrors: 0,
    turn: 0,
    tcpAccepted: 0,
    tcpRefused: 0,
    dropped: {
      notStun: 0,
      notRequest: 0,
      unsupportedMethod: 0,
      malformed: 0,
      badFingerprint: 0,
      rateLimited: 0,
      replayed: 0,
    },
  };

  readonly #runtime: Runtime;
  readonly #options: StunServiceOptions;
  readonly #users: StunUserDirectory | undefined;
  readonly #rateLimit: { allow(host: string): unknown } | undefined;
  readonly #freshness: StunFreshness | undefined;
  readonly #onEvent: (event: StunServiceEvent) => void;
  readonly #software: Uint8Array | undefined;
  readonly #writer = new StunMessageWriter(1280);
  readonly #endpoints = new Map<string, UdpEndpoint>();
  readonly #turn: TurnServer | undefined;
  readonly #port: number;
  readonly #altPort: number | undefined;
  readonly #rfc5780: boolean;
  readonly #tcpClients = new Set<TcpClient>();
  #listener: StreamListener | undefined;
  #acceptLoop: Promise<void> = Promise.resolve();
  #refreshTimer: TimerId | undefined;
  #failedBinds = new Set<string>();
  #closing = false;
  #closed: Promise<void> | undefined;
  #sendsInFlight = 0;
  #drained: PromiseWithResolvers<void> | undefined;

  private constructor(
    runtime: Runtime,
    options: StunServiceOptions,
    endpoints: UdpEndpoint[],
    port: number,
    altPort: number | undefined,
    listener: StreamListener | undefined,
  ) {
    this.#runtime = runtime;
    this.#options = options;
    this.#users = options.users;
    this.#rateLimit = options.rateLimit;
    this.#freshness = options.freshness;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#software = softwareBytes(options.software);
    this.#turn = options.turn;
    this.#port = port;
    this.#altPort = altPort;
    this.#rfc5780 = options.alternate !== undefined;
    for (const endpoint of endpoints) this.#adopt(endpoint);
    this.#listener = listener;
    if (listener !== undefined) this.#acceptLoop = this.#accept(listener);
    this.#safeEvent({ type: "listening", addresses: this.addresses });
    this.#scheduleRefresh();
  }

  /** The bound UDP addresses, the main port's first. */
  get addresses(): NetAddress[] {
    const all = [...this.#endpoints.values()];
    return [
      ...all.filter((e) => !e.altPort && !e.altIp),
      ...all.filter((e) => e.altPort || e.altIp),
    ].map((e) => e.socket.addr);
  }

  /** The TCP listener's address, if TCP is served. */
  get tcpAddress(): NetAddress | undefined {
    return this.#listener?.addr;
  }

  /**
   * Binds the sockets and starts answering.
   *
   * @throws when the port cannot be bound (e.g. `Deno.errors.AddrInUse`), or on a bad option.
   *
   * @example
   * ```ts
   * import { StunService } from "./stun_service.ts";
   * const service = StunService.listen({ port: 0, software: "demo" });
   * console.log(service.addresses.length >= 1); // true
   * await service.close();
   * ```
   */
  static listen(options: StunServiceOptions = {}): StunService {
    softwareBytes(options.software); // validated before anything is bound
    const runtime = options.runtime ?? systemRuntime;
    if (options.alternate?.hostname !== undefined) {
      if (options.hostname === undefined) {
        throw new RangeError("an alternate address needs a primary address (--host)");
      }
      if (familyOf(options.alternate.hostname) !== familyOf(options.hostname)) {
        throw new RangeError("the alternate address must be of the primary address's family");
      }
    }
    const requested = options.port ?? DEFAULT_STUN_PORT;
    // With port 0 the TCP port is picked first, then UDP on the same number; retry if taken.
    for (let attempt = 0;; attempt++) {
      try {
        return StunService.#bindAll(runtime, options, requested);
      } catch (error) {
        if (requested !== 0 || attempt >= 20 || !isAddressInUse(error)) throw error;
      }
    }
  }

  /** Where local addresses come from: the option, else the runtime's network (none: wildcard). */
  static #lister(runtime: Runtime, options: StunServiceOptions): () => string[] {
    if (options.localAddresses !== undefined) return options.localAddresses;
    const net = runtime.net;
    return net.interfaceAddresses === undefined ? () => [] : () => net.interfaceAddresses!();
  }

  static #bindAll(runtime: Runtime, options: StunServiceOptions, requested: number): StunService {
    const onEvent = (event: StunServiceEvent) => {
      try {
        options.onEvent?.(event);
      } catch {
        // A logger that throws must not stop the service from starting.
      }
    };
    const endpoints: UdpEndpoint[] = [];
    let listener: StreamListener | undefined;
    const closeAll = () => {
      for (const e of endpoints) e.socket.close();
      listener?.close();
    };
    try {
      let hosts: string[];
      if (options.hostname !== undefined) hosts = [options.hostname];
      else hosts = StunService.#lister(runtime, options)();
      let port = requested;
      const listenTcp = () => {
        const tcpHost = options.hostname ?? "::";
        try {
          try {
            return runtime.net.listen({ hostname: tcpHost, port });
          } catch (error) {
            if (options.hostname !== undefined || isAddressInUse(error)) throw error;
            return runtime.net.listen({ hostname: "0.0.0.0", port });
          }
        } catch (error) {
          if (!isAddressInUse(error)) throw error;
          throw new Deno.errors.AddrInUse(
            `tcp port ${port} (STUN/TURN over TCP; --no-stun-tcp turns it off) is in use`,
          );
        }
      };
      if (options.tcp !== false && port === 0) {
        // A busy host has far more TCP sockets than UDP ones: let TCP pick the free port first.
        listener = listenTcp();
        port = listener.addr.port;
      }
      if (hosts.length === 0) {
        // Addresses cannot be listed: one wildcard socket (answers may leave from another address).
        let socket: DatagramSocket;
        let v6 = true;
        try {
          socket = runtime.net.listenDatagram({ hostname: "::", port });
        } catch (error) {
          if (isAddressInUse(error) || error instanceof TypeError) throw error;
          onEvent({ type: "ipv6-unavailable", error: errorText(error) });
          socket = runtime.net.listenDatagram({ hostname: "0.0.0.0", port });
          v6 = false;
        }
        endpoints.push(new UdpEndpoint(socket, false, false));
        port = socket.addr.port;
        // Where `::` is IPv6-only, a second socket serves IPv4.
        try {
          if (v6) {
            endpoints.push(
              new UdpEndpoint(
                runtime.net.listenDatagram({ hostname: "0.0.0.0", port }),
                false,
                false,
              ),
            );
          }
        } catch (error) {
          if (!isAddressInUse(error)) throw error;
        }
      } else {
        for (const host of hosts) {
          try {
            const socket = runtime.net.listenDatagram({ hostname: host, port });
            port = socket.addr.port;
            endpoints.push(new UdpEndpoint(socket, false, false));
          } catch (error) {
            // The explicitly requested address must bind; enumerated ones may fail one by one.
            if (options.hostname !== undefined || isAddressInUse(error)) throw error;
            onEvent({ type: "bind-failed", address: host, error: errorText(error) });
          }
        }
        if (endpoints.length === 0) throw new Deno.errors.AddrNotAvailable("no address bound");
      }
      let altPort = options.alternate?.port;
      const altHost = options.alternate?.hostname;
      if (options.alternate !== undefined) {
        const primaryHosts = endpoints.map((e) => e.address.hostname);
        const plan: [string, boolean, boolean][] = [];
        if (altPort !== undefined) { for (const h of primaryHosts) plan.push([h, false, true]); }
        if (altHost !== undefined) {
          plan.push([altHost, true, false]);
          if (altPort !== undefined) plan.push([altHost, true, true]);
        }
        for (const [host, isAltIp, isAltPort] of plan) {
          const socket = runtime.net.listenDatagram({
            hostname: host,
            port: isAltPort ? altPort! : port,
          });
          if (isAltPort) altPort = socket.addr.port;
          endpoints.push(new UdpEndpoint(socket, isAltIp, isAltPort));
        }
      }
      if (options.tcp !== false && listener === undefined) {
        try {
          listener = listenTcp();
        } catch (error) {
          // UDP is the STUN port's main job: without TCP the service still runs, and says so.
          if (!isAddressInUse(error)) throw error;
          onEvent({ type: "tcp-unavailable", error: errorText(error) });
        }
      }
      return new StunService(runtime, options, endpoints, port, altPort, listener);
    } catch (error) {
      closeAll();
      throw error;
    }
  }

  /**
   * Stops answering: closes the sockets and TCP connections, waits for the loops and pending
   * sends. Idempotent.
   *
   * @example
   * ```ts
   * import { StunService } from "./stun_service.ts";
   * const service = StunService.listen({ hostname: "127.0.0.1", port: 0 });
   * await service.close();
   * await service.close(); // no-op
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#runtime.clearTimer(this.#refreshTimer);
      const endpoints = [...this.#endpoints.values()];
      for (const endpoint of endpoints) this.#retire(endpoint);
      try {
        this.#listener?.close();
      } catch {
        // already closed
      }
      for (const client of this.#tcpClients) client.close();
      await Promise.all(endpoints.map((e) => e.loop));
      await this.#acceptLoop;
      if (this.#sendsInFlight > 0) {
        this.#drained = Promise.withResolvers<void>();
        await this.#drained.promise;
      }
      this.#safeEvent({ type: "closed" });
    })();
    return this.#closed;
  }

  #adopt(endpoint: UdpEndpoint): void {
    this.#endpoints.set(`${endpoint.address.hostname} ${endpoint.address.port}`, endpoint);
    endpoint.loop = this.#serve(endpoint);
  }

  #retire(endpoint: UdpEndpoint): void {
    endpoint.closed = true;
    this.#endpoints.delete(`${endpoint.address.hostname} ${endpoint.address.port}`);
    try {
      endpoint.socket.close();
    } catch {
      // already closed
    }
  }

  #scheduleRefresh(): void {
    const every = this.#options.addressRefreshMs ?? 5000;
    if (this.#options.hostname !== undefined || every <= 0 || this.#closing) return;
    if (
      [...this.#endpoints.values()].some((e) =>
        e.address.hostname === "::" || e.address.hostname === "0.0.0.0"
      )
    ) {
      return; // wildcard fallback: nothing to track
    }
    this.#refreshTimer = this.#runtime.setTimer(() => {
      try {
        this.#refreshAddresses();
      } catch (error) {
        this.#safeEvent({ type: "internal-error", error: errorText(error) });
      }
      this.#scheduleRefresh();
    }, every);
  }

  /** Binds sockets for new local addresses and closes those of vanished ones. */
  #refreshAddresses(): void {
    if (this.#closing) return;
    const wanted = new Set(StunService.#lister(this.#runtime, this.#options)());
    if (wanted.size === 0) return; // listing failed: keep what we have
    const bound = new Map<string, UdpEndpoint[]>();
    for (const endpoint of this.#endpoints.values()) {
      if (endpoint.altIp) continue;
      const list = bound.get(endpoint.address.hostname) ?? [];
      list.push(endpoint);
      bound.set(endpoint.address.hostname, list);
    }
    const added: string[] = [], removed: string[] = [];
    for (const [host, endpoints] of bound) {
      if (!wanted.has(host)) {
        for (const endpoint of endpoints) this.#retire(endpoint);
        removed.push(host);
      }
    }
    for (const host of wanted) {
      if (bound.has(host)) continue;
      const ports: [number, boolean][] = [[this.#port, false]];
      if (this.#altPort !== undefined) ports.push([this.#altPort, true]);
      let ok = true;
      for (const [port, isAltPort] of ports) {
        try {
          this.#adopt(
            new UdpEndpoint(
              this.#runtime.net.listenDatagram({ hostname: host, port }),
              false,
              isAltPort,
            ),
          );
        } catch (error) {
          ok = false;
          if (!this.#failedBinds.has(host)) {
            this.#failedBinds.add(host);
            this.#safeEvent({ type: "bind-failed", address: host, error: errorText(error) });
          }
        }
      }
      if (ok) {
        this.#failedBinds.delete(host);
        added.push(host);
      }
    }
    if (added.length > 0 || removed.length > 0) {
      this.#safeEvent({ type: "addresses-changed", added, removed });
    }
  }

  async #serve(endpoint: UdpEndpoint): Promise<void> {
    const buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
    let consecutiveFailures = 0;
    while (!this.#closing && !endpoint.closed) {
      let received: [Uint8Array, NetAddress];
      try {
        received = await endpoint.socket.receive(buffer);
      } catch (error) {
        if (this.#closing || endpoint.closed || error instanceof Deno.errors.BadResource) return;
        this.#safeEvent({ type: "receive-failed", error: errorText(error) });
        // A socket that keeps failing is broken: stop instead of spinning.
        if (++consecutiveFailures >= 100) return;
        continue;
      }
      consecutiveFailures = 0;
      try {
        this.#handle(received[0], { endpoint, tcp: undefined, source: received[1] });
      } catch (error) {
        // Never expected; one bad datagram must not stop the service.
        this.stats.internalErrors++;
        this.#safeEvent({ type: "internal-error", error: errorText(error) });
      }
    }
  }

  async #accept(listener: StreamListener): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      let conn: StreamConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) return;
        if (++failures >= 100) return;
        continue;
      }
      failures = 0;
      if (this.#tcpClients.size >= (this.#options.maxTcpConnections ?? 1024)) {
        this.stats.tcpRefused++;
        try {
          conn.close();
        } catch {
          // gone
        }
        continue;
      }
      this.stats.tcpAccepted++;
      const client = new TcpClient(this, conn, this.#runtime, this.#options.tcpIdleMs ?? 60_000);
      this.#tcpClients.add(client);
      client.done.then(() => {
        this.#tcpClients.delete(client);
        this.#turn?.linkClosed(client.key);
      });
    }
  }

  /** A frame arrived on a TCP connection (called by {@linkcode TcpClient}). */
  handleTcpFrame(frame: Uint8Array, client: TcpClient): void {
    try {
      this.#handle(frame, { endpoint: undefined, tcp: client, source: client.conn.remoteAddr });
    } catch (error) {
      this.stats.internalErrors++;
      this.#safeEvent({ type: "internal-error", error: errorText(error) });
    }
  }

  /** Whether a TCP client's five-tuple holds an allocation (keeps the connection open). */
  hasAllocation(key: string): boolean {
    return this.#turn?.hasAllocation(key) ?? false;
  }

  /** The five-tuple key of a UDP source (cached per address object: batched sockets reuse them). */
  #udpKey(endpoint: UdpEndpoint, source: NetAddress): string {
    let key = endpoint.keys.get(source);
    if (key === undefined) {
      key = fiveTupleKey(
        "udp",
        { hostname: unmapIpv4(source.hostname), port: source.port },
        endpoint.address,
      );
      endpoint.keys.set(source, key);
    }
    return key;
  }

  #linkFor(origin: Origin): ClientLink {
    if (origin.tcp !== undefined) return origin.tcp;
    const endpoint = origin.endpoint!;
    const client: NetAddress = {
      transport: "udp",
      hostname: unmapIpv4(origin.source.hostname),
      port: origin.source.port,
    };
    const source = origin.source;
    const send = (bytes: Uint8Array) =>
      this.#sendBytes(endpoint.socket.copiesOnSend ? bytes : bytes.slice(), source, endpoint);
    return {
      transport: "udp",
      client,
      server: endpoint.address,
      key: this.#udpKey(endpoint, source),
      send,
    };
  }

  #handle(data: Uint8Array, origin: Origin): void {
    const stats = this.stats;
    stats.received++;
    const source = origin.source;
    if ((data[0] & 0xc0) === 0x40) {
      if (this.#turn === undefined) {
        stats.dropped.notStun++;
        return;
      }
      stats.turn++;
      const key = origin.tcp !== undefined
        ? origin.tcp.key
        : this.#udpKey(origin.endpoint!, source);
      this.#turn.handleChannelData(data, key);
      return;
    }
    // Cheap checks on the raw bytes first.
    if (!looksLikeStun(data, true)) {
      stats.dropped.notStun++;
      return;
    }
    const type = (data[0] << 8) | data[1];
    if (type !== BINDING_REQUEST) {
      this.#other(data, type, origin);
      return;
    }
    if (
      this.#rateLimit !== undefined && this.#rateLimit.allow(unmapIpv4(source.hostname)) !== null
    ) {
      stats.dropped.rateLimited++;
      return;
    }
    const legacy = data[4] !== 0x21 || data[5] !== 0x12 || data[6] !== 0xa4 || data[7] !== 0x42;
    if (data.length === HEADER_LENGTH) {
      // Fast path for the common attribute-less request: nothing to decode or check.
      this.#answer(data, unmapIpv4(source.hostname), origin, legacy, false);
      return;
    }
    let message: StunMessage;
    try {
      message = decodeStunMessage(data, {
        allowLegacy: true,
        comprehended: legacy ? COMPREHENDED_LEGACY : COMPREHENDED,
      });
    } catch {
      stats.dropped.malformed++;
      return;
    }
    const withFingerprint = !legacy && message.has(AttributeType.Fingerprint);
    if (withFingerprint && !verifyFingerprint(message)) {
      stats.dropped.badFingerprint++;
      return;
    }
    const hostname = unmapIpv4(source.hostname);
    const writer = this.#writer;

    let key: Uint8Array | undefined;
    let sha256 = false;
    if (!legacy) {
      const username = message.get(AttributeType.Username);
      const integrity = message.get(AttributeType.MessageIntegrity) ??
        message.get(AttributeType.MessageIntegritySha256);
      if (username !== undefined || integrity !== undefined) {
        if (username === undefined || integrity === undefined) {
          this.#sendError(message, 400, undefined, false, withFingerprint, origin);
          return;
        }
        let name: string;
        try {
          name = decodeTextValue(AttributeType.Username, username.value);
        } catch {
          this.#sendError(message, 400, undefined, false, withFingerprint, origin);
          return;
        }
        key = this.#keyFor(name);
        sha256 = integrity.type === AttributeType.MessageIntegritySha256;
        const good = key !== undefined &&
          (sha256
            ? verifyMessageIntegritySha256(message, key)
            : verifyMessageIntegrity(message, key));
        if (!good) {
          this.#sendError(message, 401, undefined, false, withFingerprint, origin);
          return;
        }
        const route = this.#route(message, origin, key, sha256);
        if (route === undefined) return;
        const freshnessValue = message.get(P2P_FRESHNESS_ATTRIBUTE)?.value;
        const verdict = this.#freshness?.check(
          name,
          message.transactionId,
          freshnessValue === undefined ? undefined : decodeFreshness(freshnessValue),
          `${hostname}|${source.port}`,
        ) ?? "fresh";
        if (verdict === "replayed") {
          stats.dropped.replayed++; // a replay changes nothing and is not answered
          return;
        }
        // Accepted: tell the directory, then answer (signed, with FINGERPRINT).
        stats.authenticated++;
        try {
          if (verdict === "fresh") {
            this.#users!.onAuthenticatedBinding(name, { hostname, port: source.port });
          }
        } catch (error) {
          this.#safeEvent({ type: "directory-failed", error: errorText(error) });
        }
        writer.startAnswer(BINDING_SUCCESS, message.raw);
        addAddressAttribute(writer, AttributeType.XorMappedAddress, hostname, source.port, true);
        this.#add5780(origin, route.from);
        if (this.#software !== undefined) {
          writer.addAttribute(AttributeType.Software, this.#software);
        }
        if (sha256) addMessageIntegritySha256(writer, key!);
        else addMessageIntegrity(writer, key!);
        addFingerprint(writer);
        stats.answered++;
        this.#send(origin, route.from, route.port);
        return;
      }
    }
    const route = this.#route(message, origin, undefined, false);
    if (route === undefined) return;
    this.#answer(data, hostname, origin, legacy, withFingerprint, route.from, route.port);
  }

  /** Everything that is not a Binding request: TURN, or dropped. */
  #other(data: Uint8Array, type: number, origin: Origin): void {
    const stats = this.stats;
    const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
    const cls = ((type & 0x0100) >> 7) | ((type & 0x0010) >> 4);
    const turn = this.#turn;
    const isTurn = turn !== undefined && TURN_METHODS.has(method) &&
      (cls === 0 || (cls === 1 && method === 0x006));
    if (!isTurn) {
      if (cls !== 0) stats.dropped.notRequest++;
      else stats.dropped.unsupportedMethod++;
      return;
    }
    let message: StunMessage;
    try {
      message = decodeStunMessage(data, { comprehended: TURN_COMPREHENDED });
    } catch {
      stats.dropped.malformed++;
      return;
    }
    if (message.has(AttributeType.Fingerprint) && !verifyFingerprint(message)) {
      stats.dropped.badFingerprint++;
      return;
    }
    stats.turn++;
    turn.handleMessage(message, this.#linkFor(origin));
  }

  /**
   * Where an answer leaves from and goes to (RFC 5780 CHANGE-REQUEST, RESPONSE-PORT); sends 420
   * and returns undefined when the request asks for what this service cannot do, or has other
   * unknown comprehension-required attributes.
   */
  #route(
    message: StunMessage,
    origin: Origin,
    key: Uint8Array | undefined,
    sha256: boolean,
  ): { from: UdpEndpoint | undefined; port: number } | undefined {
    let unknown: number[] = [...message.unknownRequired];
    let from = origin.endpoint;
    let port = origin.source.port;
    const change = message.get(AttributeType.ChangeRequest);
    if (change !== undefined) {
      const flags = change.value.length === 4 ? change.value[3] & 0x06 : -1;
      if (flags !== 0) {
        const target = flags > 0 && origin.endpoint !== undefined
          ? this.#changed(origin.endpoint, (flags & 0x04) !== 0, (flags & 0x02) !== 0)
          : undefined;
        if (target === undefined) unknown.push(AttributeType.ChangeRequest);
        else from = target;
      }
    }
    const responsePort = message.get(TurnAttributeType.ResponsePort);
    if (responsePort !== undefined) {
      let value: number | undefined;
      try {
        value = getResponsePort(message);
      } catch {
        value = undefined;
      }
      if (!this.#rfc5780 || origin.endpoint === undefined || value === undefined) {
        unknown.push(TurnAttributeType.ResponsePort);
      } else port = value;
    }
    if (unknown.length === 0) return { from, port };
    unknown = [...new Set(unknown)];
    // The error goes where RESPONSE-PORT asked (when honoured): that is where the client listens.
    this.#sendError(
      message,
      420,
      unknown,
      sha256,
      !message.isLegacy && message.has(AttributeType.Fingerprint),
      origin,
      key,
      port,
    );
    return undefined;
  }

  /** The socket with the other address and/or port than `endpoint`'s (RFC 5780). */
  #changed(endpoint: UdpEndpoint, ip: boolean, port: boolean): UdpEndpoint | undefined {
    if (!this.#rfc5780) return undefined;
    const other = this.#otherOf(endpoint, ip, port);
    if (other === undefined) return undefined;
    return this.#endpoints.get(`${other.hostname} ${other.port}`);
  }

  /** The address with the IP and/or port swapped for the alternate (RFC 5780 roles). */
  #otherOf(
    endpoint: UdpEndpoint,
    ip: boolean,
    port: boolean,
  ): { hostname: string; port: number } | undefined {
    const alternate = this.#options.alternate;
    let hostname = endpoint.address.hostname;
    let portNumber = endpoint.address.port;
    if (ip) {
      if (alternate?.hostname === undefined) return undefined;
      hostname = endpoint.altIp ? this.#options.hostname! : alternate.hostname;
    }
    if (port) {
      if (this.#altPort === undefined) return undefined;
      portNumber = endpoint.altPort ? this.#port : this.#altPort;
    }
    return { hostname, port: portNumber };
  }

  /** RESPONSE-ORIGIN and OTHER-ADDRESS, when RFC 5780 is on. */
  #add5780(origin: Origin, from: UdpEndpoint | undefined): void {
    if (!this.#rfc5780) return;
    const writer = this.#writer;
    const local = from?.address ?? origin.tcp?.server;
    if (local !== undefined) {
      addAddressAttribute(writer, AttributeType.ResponseOrigin, local.hostname, local.port);
    }
    if (origin.endpoint !== undefined) {
      const hasIp = this.#options.alternate?.hostname !== undefined;
      const other = this.#otherOf(origin.endpoint, hasIp, this.#altPort !== undefined);
      if (other !== undefined) {
        addAddressAttribute(writer, AttributeType.OtherAddress, other.hostname, other.port);
      }
    }
  }

  /** Answers a plain (unauthenticated) Binding request `data`. */
  #answer(
    data: Uint8Array,
    hostname: string,
    origin: Origin,
    legacy: boolean,
    withFingerprint: boolean,
    from: UdpEndpoint | undefined = origin.endpoint,
    port: number = origin.source.port,
  ): void {
    const writer = this.#writer;
    const sourcePort = origin.source.port;
    writer.startAnswer(BINDING_SUCCESS, data);
    if (legacy) {
      addAddressAttribute(writer, AttributeType.MappedAddress, hostname, sourcePort);
    } else {
      addAddressAttribute(writer, AttributeType.XorMappedAddress, hostname, sourcePort, true);
      // MAPPED-ADDRESS for RFC 3489-era clients: the XOR-MAPPED value un-XORed.
      const xorAt = HEADER_LENGTH + 4;
      const valueLength = writer.buffer[xorAt + 1] === 1 ? 8 : 20;
      const at = writer.reserveAttribute(AttributeType.MappedAddress, valueLength);
      const buffer = writer.buffer;
      buffer[at] = 0;
      buffer[at + 1] = buffer[xorAt + 1];
      // XOR key: magic cookie and transaction ID (header bytes 4..20); the port uses its first
      // two bytes, the address all of them.
      buffer[at + 2] = buffer[xorAt + 2] ^ buffer[4];
      buffer[at + 3] = buffer[xorAt + 3] ^ buffer[5];
      for (let i = 4; i < valueLength; i++) buffer[at + i] = buffer[xorAt + i] ^ buffer[i];
      this.#add5780(origin, from);
      if (this.#software !== undefined) writer.addAttribute(AttributeType.Software, this.#software);
      if (withFingerprint) addFingerprint(writer);
    }
    this.stats.answered++;
    this.#send(origin, from, port);
  }

  #sendError(
    message: StunMessage,
    code: number,
    unknown: readonly number[] | undefined,
    sha256: boolean,
    withFingerprint: boolean,
    origin: Origin,
    key?: Uint8Array,
    port: number = origin.source.port,
  ): void {
    const writer = this.#writer;
    writer.startAnswer(BINDING_ERROR, message.raw);
    addErrorCode(writer, code);
    if (unknown !== undefined) addUnknownAttributes(writer, unknown);
    if (key !== undefined) {
      if (sha256) addMessageIntegritySha256(writer, key);
      else addMessageIntegrity(writer, key);
    }
    if (withFingerprint) addFingerprint(writer);
    this.stats.errors++;
    this.#send(origin, origin.endpoint, port);
  }

  #keyFor(username: string): Uint8Array | undefined {
    if (this.#users === undefined) return undefined;
    try {
      return this.#users.keyFor(username);
    } catch (error) {
      this.#safeEvent({ type: "directory-failed", error: errorText(error) });
      return undefined;
    }
  }

  /** Sends the writer's message. */
  #send(origin: Origin, from: UdpEndpoint | undefined, port: number): void {
    if (origin.tcp !== undefined) {
      origin.tcp.send(this.#writer.bytes());
      return;
    }
    // The send is not awaited, so it gets its own copy of the response bytes (unless the socket
    // copies them itself).
    const to = port === origin.source.port ? origin.source : { ...origin.source, port };
    const endpoint = from ?? origin.endpoint!;
    const bytes = this.#writer.bytes();
    this.#sendBytes(endpoint.socket.copiesOnSend ? bytes : bytes.slice(), to, endpoint);
  }

  #sendBytes(bytes: Uint8Array, to: NetAddress, endpoint: UdpEndpoint): void {
    this.#sendsInFlight++;
    endpoint.socket.send(bytes, to).then(this.#onSent, this.#onSendFailed);
  }

  readonly #onSent = (): void => {
    if (--this.#sendsInFlight === 0) this.#drained?.resolve();
  };

  readonly #onSendFailed = (error: unknown): void => {
    this.stats.sendFailures++;
    if (!this.#closing) this.#safeEvent({ type: "send-failed", error: errorText(error) });
    this.#onSent();
  };

  #safeEvent(event: StunServiceEvent): void {
    try {
      this.#onEvent(event);
    } catch {
      // A logger that throws must not take the service down.
    }
  }
}

/**
 * One TCP connection on the STUN port: frames STUN messages and ChannelData out of the byte
 * stream (RFC 8656 section 11.2), and queues answers with a bounded backlog. It is a TURN
 * {@linkcode ClientLink}: its allocation lives as long as the connection.
 */
class TcpClient implements ClientLink {
  readonly transport = "tcp" as const;
  readonly conn: StreamConn;
  readonly client: NetAddress;
  readonly server: NetAddress;
  readonly key: string;
  readonly done: Promise<void>;
  readonly #service: StunService;
  readonly #runtime: Runtime;
  readonly #idleMs: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  #closed = false;
  #idleTimer: TimerId | undefined;

  constructor(service: StunService, conn: StreamConn, runtime: Runtime, idleMs: number) {
    this.#service = service;
    this.conn = conn;
    this.#runtime = runtime;
    this.#idleMs = idleMs;
    this.client = {
      transport: "tcp",
      hostname: unmapIpv4(conn.remoteAddr.hostname),
      port: conn.remoteAddr.port,
    };
    this.server = {
      transport: "tcp",
      hostname: unmapIpv4(conn.localAddr.hostname),
      port: conn.localAddr.port,
    };
    this.key = fiveTupleKey("tcp", this.client, this.server);
    try {
      conn.setNoDelay?.(true);
    } catch {
      // not supported
    }
    this.#armIdle();
    this.done = this.#read();
  }

  send(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (this.#queued + bytes.length > TCP_QUEUE_LIMIT) return; // a slow reader loses packets, as UDP would
    this.#queue.push(bytes.slice());
    this.#queued += bytes.length;
    if (!this.#writing) this.#flush();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#runtime.clearTimer(this.#idleTimer);
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  #armIdle(): void {
    this.#runtime.clearTimer(this.#idleTimer);
    this.#idleTimer = this.#runtime.setTimer(() => {
      if (this.#service.hasAllocation(this.key)) this.#armIdle();
      else this.close();
    }, this.#idleMs);
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const chunk = this.#queue.shift()!;
        let offset = 0;
        while (offset < chunk.length) offset += await this.conn.write(chunk.subarray(offset));
        this.#queued -= chunk.length;
      }
    } catch {
      this.close();
    } finally {
      this.#writing = false;
    }
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(TCP_BUFFER_BYTES);
    let filled = 0;
    try {
      while (!this.#closed) {
        const n = await this.conn.read(buffer.subarray(filled));
        if (n === null) break;
        filled += n;
        let start = 0;
        for (;;) {
          const available = buffer.subarray(start, filled);
          const length = streamFrameLength(available);
          if (length === undefined) break;
          if (length < 0) throw new Error("not STUN or ChannelData");
          if (available.length < length) break;
          this.#armIdle();
          this.#service.handleTcpFrame(buffer.subarray(start, start + length), this);
          start += length;
        }
        if (start > 0) {
          buffer.copyWithin(0, start, filled);
          filled -= start;
        }
      }
    } catch {
      // reset, closed, or garbage: the connection ends
    } finally {
      this.close();
    }
  }
}
