/**
 * The client's one UDP socket, shared by STUN, hole punching and peer traffic: a receive loop
 * that classifies each datagram once into a typed packet (`classifyPacket`) and hands it to the
 * matching handler, and a send function that never blocks its caller.
 *
 * @module
 */
import { classifyPacket, type InboundPacket } from "./inbound_packet.ts";
import { PeerPacketType } from "../shared/peer/packet.ts";

/** Datagrams above this size of type TRANSPORT_LARGE are lent to the handler, not copied. */
const LEND_MIN_BYTES = 4096;
import type { UdpAddress } from "./path_manager.ts";
import type { DatagramSocket, NetAddress } from "../shared/runtime/mod.ts";

export type { DatagramSocket };

/** Handlers of a {@linkcode UdpMux}. */
export interface UdpMuxHandlers {
  /** A STUN message. */
  stun: (bytes: Uint8Array, from: UdpAddress) => void;
  /** A peer packet (PUNCH, HANDSHAKE_INIT/RESPONSE, TRANSPORT), classified. */
  peer: (packet: Exclude<InboundPacket, { kind: "stun" }>, from: UdpAddress) => void;
  /** Anything else (birthday-punching probes); true when taken, else it counts as dropped. */
  other?: (bytes: Uint8Array, from: UdpAddress) => boolean;
}

/** Largest datagram accepted: STUN responses are small, peer packets at most 1200 bytes. */
const MAX_DATAGRAM_BYTES = 65_536;

/**
 * Demultiplexes the shared socket.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * const socket = systemRuntime.net.listenDatagram({ hostname: "127.0.0.1", port: 0 });
 * const mux = new UdpMux(socket, { stun: () => {}, peer: () => {} });
 * mux.start();
 * mux.close();
 * ```
 */
export class UdpMux {
  readonly #socket: DatagramSocket;
  readonly #handlers: UdpMuxHandlers;
  #closed = false;
  #loop: Promise<void> | undefined;
  #dropped = 0;
  #sendErrors = 0;

  /**
   * Wraps a bound socket.
   *
   * @example
   * ```ts
   * // new UdpMux(runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 }), handlers);
   * ```
   */
  constructor(socket: DatagramSocket, handlers: UdpMuxHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
  }

  /** The local port. */
  get port(): number {
    return this.#socket.addr.port;
  }

  /** Datagrams dropped as unknown or oversized. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Sends that failed (unreachable destinations and the like). */
  get sendErrors(): number {
    return this.#sendErrors;
  }

  /**
   * Starts the receive loop.
   *
   * @example
   * ```ts
   * // mux.start();
   * ```
   */
  start(): void {
    this.#loop ??= this.#receiveLoop();
  }

  /**
   * Sends a datagram without waiting (the promise returned settles once the socket is done with
   * `bytes`); failures are counted, never thrown.
   *
   * @example
   * ```ts
   * // mux.send(bytes, { host: "127.0.0.1", port: 4000 });
   * ```
   */
  send(bytes: Uint8Array, to: UdpAddress): Promise<void> | undefined {
    if (this.#closed) return undefined;
    // The promise settles once the socket is done with `bytes` (their buffer may then be reused).
    return this.#socket.send(bytes, { transport: "udp", hostname: to.host, port: to.port }).then(
      () => {},
      () => {
        this.#sendErrors++;
      },
    );
  }

  /**
   * Closes the socket and ends the loop.
   *
   * @example
   * ```ts
   * // await mux.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    await this.#loop;
  }

  async #receiveLoop(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    while (!this.#closed) {
      let bytes: Uint8Array;
      let addr: NetAddress;
      try {
        [bytes, addr] = await this.#socket.receive(buffer);
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        // ICMP errors surface as receive errors on some systems: keep going.
        continue;
      }
      if (bytes.length > MAX_DATAGRAM_BYTES) {
        this.#dropped++;
        continue;
      }
      const from = addr;
      const address = { host: from.hostname, port: from.port };
      // A large TRANSPORT packet (bulk data) is lent, not copied: the peer link opens it in place
      // and whatever keeps its bytes copies them, all before this loop receives again (a copy of
      // every 64 KiB packet kept the client's memory tens of MiB higher: issue 14).
      const lend = bytes.length > LEND_MIN_BYTES && bytes[0] === PeerPacketType.TransportLarge;
      const packet = classifyPacket(lend ? bytes : bytes.slice());
      try {
        if (packet === undefined) {
          if (!this.#handlers.other?.(bytes, address)) this.#dropped++;
        } else if (packet.kind === "stun") this.#handlers.stun(packet.bytes, address);
        else this.#handlers.peer(packet, address);
      } catch {
        this.#dropped++;
      }
    }
  }
}
