/**
 * The server's STUN service (RFC 8489 Binding on UDP): answers Binding requests with the
 * requester's reflexive address, authenticates registered clients with short-term credentials,
 * and drops (and counts) everything else.
 *
 * Policy, in the order a datagram meets it:
 *
 * 1. Not STUN-shaped (fewer than 20 bytes, leading bits set, length field not matching the
 *    datagram) is dropped (`notStun`). Nothing that is not a request is ever answered: responses
 *    and indications are dropped (`notRequest`), requests of other methods than Binding too
 *    (`unsupportedMethod`). No reply is an amplifier.
 * 2. RFC 3489 ("classic STUN") Binding requests, recognized by the missing magic cookie, are
 *    accepted: the answer copies the request's 128-bit transaction ID and carries MAPPED-ADDRESS
 *    only, as RFC 8489 section 12 asks. They must be exactly framed (the length field matches the
 *    datagram, attributes well formed) and carry no comprehension-required attribute other than a
 *    flag-less CHANGE-REQUEST, else they get 420.
 * 3. A malformed message (bad attribute framing) or one whose FINGERPRINT does not match is
 *    dropped (`malformed`, `badFingerprint`).
 * 4. With USERNAME: short-term authentication (RFC 8489 section 9.1.3). USERNAME without
 *    MESSAGE-INTEGRITY(-SHA256) or the reverse gets 400; an unknown USERNAME or a bad integrity
 *    gets 401 (without MESSAGE-INTEGRITY); a good one gets XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY
 *    (or -SHA256, as the request used) and FINGERPRINT, and the user directory is told.
 * 5. An unknown comprehension-required attribute (or a CHANGE-REQUEST asking for another
 *    address or port, which this single-address server cannot honour) gets 420 with
 *    UNKNOWN-ATTRIBUTES.
 * 6. Otherwise: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, SOFTWARE, and FINGERPRINT when the request
 *    had one.
 *
 * Error responses carry FINGERPRINT when the request did. Sources that are IPv4-mapped IPv6
 * addresses (a dual-stack socket's view of IPv4 peers) are answered as IPv4.
 *
 * Speed: one receive buffer and one response writer per service, validation on the raw bytes
 * before decoding, sends not awaited (failures counted).
 *
 * @module
 */
import { decodeFreshness, P2P_FRESHNESS_ATTRIBUTE } from "../shared/stun/freshness.ts";
import type { StunFreshness } from "./stun_freshness.ts";
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
  HEADER_LENGTH,
  looksLikeStun,
  type StunMessage,
  StunMessageWriter,
  unmapIpv4,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "../shared/stun/mod.ts";

/** The directory of STUN users (registered clients) the service authenticates against. */
export interface StunUserDirectory {
  /** Short-term MESSAGE-INTEGRITY key for a USERNAME (the UTF-8 bytes of its password), or undefined if unknown. */
  keyFor(username: string): Uint8Array | undefined;
  /** Called after a Binding request with this USERNAME passed MESSAGE-INTEGRITY; `address` is its source (IPv4-mapped IPv6 already turned into IPv4). */
  onAuthenticatedBinding(username: string, address: { hostname: string; port: number }): void;
}

/** Something noteworthy and rare (never per answered packet) the service reports. */
export type StunServiceEvent =
  | { type: "listening"; addresses: Deno.NetAddr[] }
  | { type: "ipv6-unavailable"; error: string }
  | { type: "send-failed"; error: string }
  | { type: "receive-failed"; error: string }
  | { type: "directory-failed"; error: string }
  | { type: "internal-error"; error: string }
  | { type: "closed" };

/** Options of {@linkcode StunService.listen}. */
export interface StunServiceOptions {
  /**
   * Address to bind. Default: all interfaces, IPv6 and IPv4 (`::`, dual-stack; a second
   * `0.0.0.0` socket where `::` is IPv6-only; `0.0.0.0` alone where IPv6 is unavailable).
   */
  hostname?: string;
  /** UDP port (default 54321; 0 picks a free one). */
  port?: number;
  /** SOFTWARE attribute of answers (default `p2p-stun`; empty string: none). */
  software?: string;
  /** Registered clients' credentials; without it every USERNAME is unknown (401). */
  users?: StunUserDirectory;
  /** Rare events (listening, send/receive failures, close) for logging. */
  onEvent?: (event: StunServiceEvent) => void;
  /** Binds a UDP socket (injected in tests; default `Deno.listenDatagram`). */
  listenDatagram?: (options: Deno.UdpListenOptions & { transport: "udp" }) => Deno.DatagramConn;
  /** Per-source answer limit (issue 11; `stun_rate_limit.ts`); null/absent: unlimited. */
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
  /** A request of another method than Binding. */
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
  /** Datagrams received. */
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
const RECEIVE_BUFFER_BYTES = 2048;

/** Comprehension-required attributes the service processes in RFC 5389+ requests. */
const COMPREHENDED: ReadonlySet<number> = new Set([
  AttributeType.Username,
  AttributeType.MessageIntegrity,
  AttributeType.MessageIntegritySha256,
  AttributeType.ChangeRequest,
  AttributeType.Priority,
  AttributeType.UseCandidate,
]);
/** ... and in RFC 3489 requests. */
const COMPREHENDED_LEGACY: ReadonlySet<number> = new Set([AttributeType.ChangeRequest]);

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function defaultListenDatagram(
  options: Deno.UdpListenOptions & { transport: "udp" },
): Deno.DatagramConn {
  if (typeof Deno.listenDatagram !== "function") {
    throw new TypeError("Deno.listenDatagram is unavailable: run with --unstable-net");
  }
  return Deno.listenDatagram(options);
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
  return error instanceof Deno.errors.AddrInUse;
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
  /** The bound UDP addresses (one, or two where `::` is IPv6-only). */
  readonly addresses: Deno.NetAddr[];
  /** Live counters. */
  readonly stats: StunServiceStats = {
    received: 0,
    answered: 0,
    errors: 0,
    authenticated: 0,
    sendFailures: 0,
    internalErrors: 0,
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

  readonly #connections: Deno.DatagramConn[];
  readonly #users: StunUserDirectory | undefined;
  readonly #rateLimit: { allow(host: string): unknown } | undefined;
  readonly #freshness: StunFreshness | undefined;
  readonly #onEvent: (event: StunServiceEvent) => void;
  readonly #software: Uint8Array | undefined;
  readonly #writer = new StunMessageWriter(1280);
  readonly #loops: Promise<void>[];
  #closing = false;
  #closed: Promise<void> | undefined;
  #sendsInFlight = 0;
  #drained: PromiseWithResolvers<void> | undefined;

  private constructor(connections: Deno.DatagramConn[], options: StunServiceOptions) {
    this.#connections = connections;
    this.addresses = connections.map((c) => c.addr as Deno.NetAddr);
    this.#users = options.users;
    this.#rateLimit = options.rateLimit;
    this.#freshness = options.freshness;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#software = softwareBytes(options.software);
    this.#loops = connections.map((connection) => this.#serve(connection));
    this.#safeEvent({ type: "listening", addresses: this.addresses });
  }

  /**
   * Binds the UDP socket(s) and starts answering.
   *
   * @throws when the port cannot be bound (e.g. `Deno.errors.AddrInUse`).
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
    const listen = options.listenDatagram ?? defaultListenDatagram;
    const port = options.port ?? DEFAULT_STUN_PORT;
    const onEvent = (event: StunServiceEvent) => {
      try {
        options.onEvent?.(event);
      } catch {
        // A logger that throws must not stop the service from starting.
      }
    };
    if (options.hostname !== undefined) {
      return new StunService(
        [listen({ transport: "udp", hostname: options.hostname, port })],
        options,
      );
    }
    let v6: Deno.DatagramConn;
    try {
      v6 = listen({ transport: "udp", hostname: "::", port });
    } catch (error) {
      if (isAddressInUse(error) || error instanceof TypeError) throw error;
      onEvent({ type: "ipv6-unavailable", error: errorText(error) });
      return new StunService([listen({ transport: "udp", hostname: "0.0.0.0", port })], options);
    }
    // On Linux (bindv6only=0) `::` is dual-stack and 0.0.0.0 on the same port is taken; where
    // `::` is IPv6-only, a second socket serves IPv4.
    const boundPort = (v6.addr as Deno.NetAddr).port;
    let v4: Deno.DatagramConn | undefined;
    try {
      v4 = listen({ transport: "udp", hostname: "0.0.0.0", port: boundPort });
    } catch (error) {
      if (!isAddressInUse(error)) {
        v6.close();
        throw error;
      }
    }
    return new StunService(v4 === undefined ? [v6] : [v6, v4], options);
  }

  /**
   * Stops answering: closes the socket(s), waits for the receive loops and pending sends.
   * Idempotent.
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
      for (const connection of this.#connections) {
        try {
          connection.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(this.#loops);
      if (this.#sendsInFlight > 0) {
        this.#drained = Promise.withResolvers<void>();
        await this.#drained.promise;
      }
      this.#safeEvent({ type: "closed" });
    })();
    return this.#closed;
  }

  async #serve(connection: Deno.DatagramConn): Promise<void> {
    const buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
    let consecutiveFailures = 0;
    while (!this.#closing) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await connection.receive(buffer);
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) return;
        this.#safeEvent({ type: "receive-failed", error: errorText(error) });
        // A socket that keeps failing is broken: stop instead of spinning.
        if (++consecutiveFailures >= 100) return;
        continue;
      }
      consecutiveFailures = 0;
      try {
        this.#handle(received[0], received[1] as Deno.NetAddr, connection);
      } catch (error) {
        // Never expected; one bad datagram must not stop the service.
        this.stats.internalErrors++;
        this.#safeEvent({ type: "internal-error", error: errorText(error) });
      }
    }
  }

  #handle(data: Uint8Array, source: Deno.NetAddr, connection: Deno.DatagramConn): void {
    const stats = this.stats;
    stats.received++;
    // Cheap checks on the raw bytes first.
    if (!looksLikeStun(data, true)) {
      stats.dropped.notStun++;
      return;
    }
    const type = (data[0] << 8) | data[1];
    if (type !== BINDING_REQUEST) {
      if ((type & 0x0110) !== 0) stats.dropped.notRequest++;
      else stats.dropped.unsupportedMethod++;
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
      this.#answer(data, unmapIpv4(source.hostname), source, legacy, false, connection);
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
          this.#sendError(message, 400, undefined, false, withFingerprint, source, connection);
          return;
        }
        let name: string;
        try {
          name = decodeTextValue(AttributeType.Username, username.value);
        } catch {
          this.#sendError(message, 400, undefined, false, withFingerprint, source, connection);
          return;
        }
        key = this.#keyFor(name);
        sha256 = integrity.type === AttributeType.MessageIntegritySha256;
        const good = key !== undefined &&
          (sha256
            ? verifyMessageIntegritySha256(message, key)
            : verifyMessageIntegrity(message, key));
        if (!good) {
          this.#sendError(message, 401, undefined, false, withFingerprint, source, connection);
          return;
        }
        if (!this.#rejectUnknown(message, key, sha256, source, connection)) {
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
          if (this.#software !== undefined) {
            writer.addAttribute(AttributeType.Software, this.#software);
          }
          if (sha256) addMessageIntegritySha256(writer, key!);
          else addMessageIntegrity(writer, key!);
          addFingerprint(writer);
          stats.answered++;
          this.#send(source, connection);
        }
        return;
      }
    }
    if (this.#rejectUnknown(message, undefined, false, source, connection)) return;

    this.#answer(data, hostname, source, legacy, withFingerprint, connection);
  }

  /** Answers a plain (unauthenticated) Binding request `data`. */
  #answer(
    data: Uint8Array,
    hostname: string,
    source: Deno.NetAddr,
    legacy: boolean,
    withFingerprint: boolean,
    connection: Deno.DatagramConn,
  ): void {
    const writer = this.#writer;
    writer.startAnswer(BINDING_SUCCESS, data);
    if (legacy) {
      addAddressAttribute(writer, AttributeType.MappedAddress, hostname, source.port);
    } else {
      addAddressAttribute(writer, AttributeType.XorMappedAddress, hostname, source.port, true);
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
      if (this.#software !== undefined) writer.addAttribute(AttributeType.Software, this.#software);
      if (withFingerprint) addFingerprint(writer);
    }
    this.stats.answered++;
    this.#send(source, connection);
  }

  /**
   * Sends 420 (and returns true) when the request has unknown comprehension-required attributes
   * or asks for a change of address or port.
   */
  #rejectUnknown(
    message: StunMessage,
    key: Uint8Array | undefined,
    sha256: boolean,
    source: Deno.NetAddr,
    connection: Deno.DatagramConn,
  ): boolean {
    let unknown = message.unknownRequired;
    const change = message.get(AttributeType.ChangeRequest);
    if (change !== undefined && (change.value.length !== 4 || (change.value[3] & 0x06) !== 0)) {
      unknown = [...unknown, AttributeType.ChangeRequest];
    }
    if (unknown.length === 0) return false;
    this.#sendError(
      message,
      420,
      unknown,
      sha256,
      !message.isLegacy && message.has(AttributeType.Fingerprint),
      source,
      connection,
      key,
    );
    return true;
  }

  #sendError(
    message: StunMessage,
    code: number,
    unknown: readonly number[] | undefined,
    sha256: boolean,
    withFingerprint: boolean,
    source: Deno.NetAddr,
    connection: Deno.DatagramConn,
    key?: Uint8Array,
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
    this.#send(source, connection);
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

  #send(to: Deno.NetAddr, connection: Deno.DatagramConn): void {
    // The send is not awaited, so it gets its own copy of the response bytes.
    const bytes = this.#writer.bytes().slice();
    this.#sendsInFlight++;
    connection.send(bytes, to).then(this.#onSent, this.#onSendFailed);
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
