/**
 * One TURN allocation (RFC 8656 section 2.2): the relayed UDP socket, its lifetime, its
 * permissions and channels, and the peer-to-client direction of the relay (Data indications,
 * or ChannelData once a channel is bound). The client-to-peer direction is driven by the
 * server (`turn_server.ts`), which owns the lookups.
 *
 * @module
 */
import type { DatagramSocket, NetAddress, Runtime, TimerId } from "../../shared/runtime/mod.ts";
import {
  addData,
  addXorPeerAddress,
  StunMessageWriter,
  TurnMethod,
  unmapIpv4,
} from "../../shared/stun/mod.ts";
import { encodeMessageType } from "../../shared/stun/header.ts";
import type { ClientLink } from "./client_link.ts";
import { peerKey, PeerTables } from "./permissions.ts";

/** What an allocation asks of its server for each relayed packet. */
export interface RelayHooks {
  /** Whether `bytes` more may be relayed for this allocation now (bandwidth limits). */
  admit(allocation: Allocation, bytes: number): boolean;
  /** A packet from a peer was relayed to the client. */
  relayedToClient(bytes: number): void;
  /** A packet from a peer was dropped (no permission, over the limit). */
  droppedFromPeer(reason: "no-permission" | "bandwidth" | "error"): void;
  /** The allocation's lifetime ran out. */
  expired(allocation: Allocation): void;
}

const DATA_INDICATION = encodeMessageType(TurnMethod.Data, 1);
/** Room before received peer data for a ChannelData header. */
const HEADROOM = 4;
const RECEIVE_BYTES = 65_536;
const MAX_PERMISSIONS = 256;
const MAX_CHANNELS = 256;

/**
 * A live allocation. Created by the TURN server after a successful Allocate.
 *
 * @example
 * ```ts
 * // Allocations are made by TurnServer; see turn_server.ts.
 * import type { Allocation } from "./allocation.ts";
 * const describe = (a: Allocation) => `${a.username} ${a.relayed.port}`;
 * ```
 */
export class Allocation {
  /** The client's five-tuple. */
  readonly link: ClientLink;
  /** The authenticated user who made it. */
  readonly username: string;
  /** The relayed transport address. */
  readonly relayed: NetAddress;
  /** Permissions and channels. */
  readonly peers: PeerTables = new PeerTables(MAX_PERMISSIONS, MAX_CHANNELS);
  /** Transaction ID of the Allocate that created it (for retransmissions). */
  readonly transactionId: string;
  /** The success response to that Allocate (resent on a retransmission). */
  readonly response: Uint8Array;
  /** Expiry on the runtime's clock (ms). */
  expiresAt: number;

  readonly #socket: DatagramSocket;
  readonly #runtime: Runtime;
  readonly #hooks: RelayHooks;
  readonly #writer = new StunMessageWriter(RECEIVE_BYTES + 64);
  #timer: TimerId | undefined;
  #closed = false;
  readonly #peerAddresses = new WeakMap<object, NetAddress>();
  readonly #sources = new WeakMap<NetAddress, { hostname: string; key: string }>();
  readonly #loop: Promise<void>;

  /**
   * Wraps a bound relay socket and starts relaying from peers.
   *
   * @example
   * ```ts
   * import type { Allocation } from "./allocation.ts";
   * let made: Allocation | undefined; // see TurnServer
   * ```
   */
  constructor(
    runtime: Runtime,
    link: ClientLink,
    username: string,
    socket: DatagramSocket,
    lifetimeMs: number,
    transactionId: string,
    response: Uint8Array,
    hooks: RelayHooks,
  ) {
    this.#runtime = runtime;
    this.link = link;
    this.username = username;
    this.#socket = socket;
    this.relayed = {
      transport: "udp",
      hostname: unmapIpv4(socket.addr.hostname),
      port: socket.addr.port,
    };
    this.transactionId = transactionId;
    this.response = response;
    this.#hooks = hooks;
    this.expiresAt = runtime.now() + lifetimeMs;
    this.#arm(lifetimeMs);
    this.#loop = this.#receive();
  }

  /** Whether it was closed (expired, deleted, connection lost). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sets the remaining lifetime.
   *
   * @example
   * ```ts
   * import type { Allocation } from "./allocation.ts";
   * const extend = (a: Allocation) => a.refresh(600_000);
   * ```
   */
  refresh(lifetimeMs: number): void {
    this.expiresAt = this.#runtime.now() + lifetimeMs;
    this.#arm(lifetimeMs);
  }

  /**
   * Sends data from the client to a peer through the relayed socket (permission already
   * checked by the caller). Failures are ignored: UDP is lossy.
   *
   * @example
   * ```ts
   * import type { Allocation } from "./allocation.ts";
   * const relay = (a: Allocation) => a.sendToPeer(Uint8Array.of(1), { hostname: "192.0.2.1", port: 9 });
   * ```
   */
  sendToPeer(data: Uint8Array, peer: { hostname: string; port: number }): void {
    if (this.#closed) return;
    const socket = this.#socket;
    const to = this.#peerAddresses.get(peer) ??
      { transport: "udp" as const, hostname: peer.hostname, port: peer.port };
    this.#peerAddresses.set(peer, to);
    socket.send(socket.copiesOnSend ? data : data.slice(), to).catch(() => {});
  }

  /**
   * Frees the relayed socket and timers. Idempotent; resolves when the receive loop ended.
   *
   * @example
   * ```ts
   * import type { Allocation } from "./allocation.ts";
   * const free = (a: Allocation) => a.close();
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#runtime.clearTimer(this.#timer);
      try {
        this.#socket.close();
      } catch {
        // already closed
      }
    }
    return this.#loop;
  }

  #arm(lifetimeMs: number): void {
    this.#runtime.clearTimer(this.#timer);
    this.#timer = this.#runtime.setTimer(() => {
      if (!this.#closed) this.#hooks.expired(this);
    }, lifetimeMs);
  }

  async #receive(): Promise<void> {
    const buffer = new Uint8Array(HEADROOM + RECEIVE_BYTES);
    const into = buffer.subarray(HEADROOM);
    let failures = 0;
    while (!this.#closed) {
      let data: Uint8Array, from: NetAddress;
      try {
        [data, from] = await this.#socket.receive(into);
      } catch {
        if (this.#closed || ++failures > 100) return;
        continue;
      }
      failures = 0;
      try {
        this.#fromPeer(buffer, data, from);
      } catch {
        // Never expected (a bug): one packet must not stop the relay.
        this.#hooks.droppedFromPeer("error");
      }
    }
  }

  #fromPeer(buffer: Uint8Array, data: Uint8Array, from: NetAddress): void {
    const now = this.#runtime.now();
    // Batched sockets hand out one address object per source: its unmapped IP and table key are
    // computed once.
    let source = this.#sources.get(from);
    if (source === undefined) {
      const unmapped = unmapIpv4(from.hostname);
      source = { hostname: unmapped, key: peerKey(unmapped, from.port) };
      this.#sources.set(from, source);
    }
    const hostname = source.hostname;
    if (!this.peers.permitted(hostname, now)) {
      this.#hooks.droppedFromPeer("no-permission");
      return;
    }
    if (!this.#hooks.admit(this, data.length)) {
      this.#hooks.droppedFromPeer("bandwidth");
      return;
    }
    const binding = this.peers.channelOfKey(source.key, now);
    if (binding !== undefined && data.length <= 0xffff) {
      // ChannelData: header written in the headroom, padded to 4 bytes over TCP.
      buffer[0] = binding.channel >> 8;
      buffer[1] = binding.channel & 0xff;
      buffer[2] = data.length >> 8;
      buffer[3] = data.length & 0xff;
      let length = HEADROOM + data.length;
      if (this.link.transport === "tcp") {
        const padded = HEADROOM + ((data.length + 3) & ~3);
        buffer.fill(0, length, padded);
        length = padded;
      }
      this.link.send(buffer.subarray(0, length));
    } else {
      const writer = this.#writer;
      writer.startRaw(DATA_INDICATION, this.#runtime.randomBytes(12));
      addXorPeerAddress(writer, { hostname, port: from.port });
      addData(writer, data);
      this.link.send(writer.bytes());
    }
    this.#hooks.relayedToClient(data.length);
  }
}
