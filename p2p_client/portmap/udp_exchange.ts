/**
 * Request/answer exchanges over one UDP socket with retransmission, for NAT-PMP, PCP and SSDP:
 * one receive loop per socket hands each datagram from the expected sender to whoever waits
 * for it. Every read is bounded (size by the buffer, time by the caller's deadline, count by
 * the number of sends).
 *
 * @module
 */
import type { DatagramSocket, NetAddress, Runtime } from "../../shared/runtime/runtime.ts";

/** The largest datagram read (PCP's maximum message is 1,100 bytes, SSDP answers ~400). */
const RECEIVE_BUFFER = 2048;

type Listener = (bytes: Uint8Array, from: NetAddress) => boolean;

/** Retransmission schedule of one exchange. */
export interface RetransmitOptions {
  /** First wait before resending, ms (doubles each time). */
  initialRtoMs: number;
  /** How many times the request is sent. */
  sends: number;
}

/**
 * A UDP socket with a receive loop and {@linkcode UdpExchange.request}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const exchange = new UdpExchange(systemRuntime, systemRuntime.net.listenDatagram({ hostname: "127.0.0.1", port: 0 }));
 * exchange.close();
 * ```
 */
export class UdpExchange {
  readonly #runtime: Runtime;
  readonly #socket: DatagramSocket;
  readonly #listeners = new Set<Listener>();
  #closed = false;

  /**
   * @param runtime Timers.
   * @param socket The socket, owned (closed by {@linkcode close}) from now on.
   */
  constructor(runtime: Runtime, socket: DatagramSocket) {
    this.#runtime = runtime;
    this.#socket = socket;
    void this.#loop();
  }

  /** The socket's local address. */
  get addr(): NetAddress {
    return this.#socket.addr;
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      let received: [Uint8Array, NetAddress];
      try {
        received = await this.#socket.receive(new Uint8Array(RECEIVE_BUFFER));
      } catch {
        if (this.#closed) return;
        continue;
      }
      const [bytes, from] = received;
      for (const listener of [...this.#listeners]) {
        if (listener(bytes, from)) break;
      }
    }
  }

  /**
   * Sends `request` to each address in `to` (retransmitting per `retransmit`) until `accept`
   * returns a value for a datagram from `expectFrom`; resolves with that value, or `undefined`
   * once the last send has been waited on. `accept` returning `undefined` ignores the datagram.
   */
  request<T>(
    to: readonly NetAddress[],
    request: Uint8Array,
    expectFrom: string,
    accept: (bytes: Uint8Array) => T | undefined,
    retransmit: RetransmitOptions,
  ): Promise<T | undefined> {
    return new Promise((resolve) => {
      let sends = 0;
      let rto = retransmit.initialRtoMs;
      let timer: number | undefined;
      const finish = (value: T | undefined) => {
        this.#runtime.clearTimer(timer);
        this.#listeners.delete(listener);
        resolve(value);
      };
      const listener: Listener = (bytes, from) => {
        if (from.hostname !== expectFrom && from.hostname !== `::ffff:${expectFrom}`) return false;
        const value = accept(bytes);
        if (value === undefined) return false;
        finish(value);
        return true;
      };
      const send = () => {
        if (this.#closed) return finish(undefined);
        if (sends >= retransmit.sends) return finish(undefined);
        sends++;
        for (const address of to) this.#socket.send(request, address).catch(() => {});
        timer = this.#runtime.setTimer(send, rto);
        rto *= 2;
      };
      this.#listeners.add(listener);
      send();
    });
  }

  /** Stops the loop and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}
