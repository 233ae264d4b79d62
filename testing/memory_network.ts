/**
 * An in-memory network for a {@linkcode VirtualRuntime}: UDP sockets, TCP listeners and
 * connections between simulated hosts, delivered on the runtime's timers. A policy hook decides
 * each datagram's fate (drop, delay) and each TCP write's delay, which is where a simulator puts
 * loss, latency, partitions and NATs.
 *
 * Errors match Deno's: `Deno.errors.BadResource` once closed, `Deno.errors.AddrInUse`,
 * `Deno.errors.ConnectionRefused`.
 *
 * @module
 */
import type {
  DatagramSocket,
  HostPort,
  NetAddress,
  NetworkRuntime,
  Runtime,
  StreamConn,
  StreamListener,
} from "../shared/runtime/runtime.ts";

/** What the network does with one datagram or one TCP write. */
export interface Verdict {
  /** Drop it (datagrams only; TCP is reliable, so a dropped write is delivered anyway). */
  drop?: boolean;
  /** Delivery delay in ms (default 0). TCP keeps order whatever the delays. */
  delayMs?: number;
}

/** One datagram or TCP write on its way. */
export interface Transit {
  /** `udp` or `tcp`. */
  transport: "udp" | "tcp";
  /** Sender's address. */
  from: NetAddress;
  /** Destination address. */
  to: NetAddress;
  /** Payload length in bytes. */
  length: number;
}

/** Decides each transit's fate; `undefined` means deliver at once. */
export type NetworkPolicy = (transit: Transit) => Verdict | undefined;

type Clock = Pick<Runtime, "setTimer" | "now">;

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

function key(hostname: string, port: number, transport: "udp" | "tcp"): string {
  return `${transport} ${hostname} ${port}`;
}

class Waiters<T> {
  readonly queue: T[] = [];
  #waiting: Array<{ resolve: (value: T) => void; reject: (error: Error) => void }> = [];
  #closed: Error | undefined;

  push(value: T): void {
    if (this.#closed) return;
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(value);
    else this.queue.push(value);
  }

  next(): Promise<T> {
    const value = this.queue.shift();
    if (value !== undefined) return Promise.resolve(value);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  close(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }
}

class MemoryDatagramSocket implements DatagramSocket {
  readonly addr: NetAddress;
  readonly #network: MemoryNetwork;
  readonly #inbox = new Waiters<[Uint8Array, NetAddress]>();

  constructor(network: MemoryNetwork, addr: NetAddress) {
    this.#network = network;
    this.addr = addr;
  }

  receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddress]> {
    return this.#inbox.next().then(([bytes, from]) => {
      if (!buffer) return [bytes, from];
      const length = Math.min(bytes.length, buffer.length);
      buffer.set(bytes.subarray(0, length));
      return [buffer.subarray(0, length), from];
    });
  }

  send(bytes: Uint8Array, to: NetAddress): Promise<number> {
    if (this.#inbox.closed) return Promise.reject(new Deno.errors.BadResource("socket closed"));
    this.#network.sendDatagram(this, bytes.slice(), { ...to, transport: "udp" });
    return Promise.resolve(bytes.length);
  }

  close(): void {
    this.#inbox.close(new Deno.errors.BadResource("socket closed"));
    this.#network.unbind(this.addr);
  }

  /** @internal */
  deliver(bytes: Uint8Array, from: NetAddress): void {
    if (this.#inbox.queue.length < 4096) this.#inbox.push([bytes, from]);
  }
}

class MemoryStream implements StreamConn {
  readonly localAddr: NetAddress;
  readonly remoteAddr: NetAddress;
  peer!: MemoryStream;
  readonly #network: MemoryNetwork;
  readonly #chunks: Uint8Array[] = [];
  #readWaiter: (() => void) | undefined;
  #eof = false;
  #closed = false;
  #writeClosed = false;
  #lastDeliveryAt = 0;

  constructor(network: MemoryNetwork, local: NetAddress, remote: NetAddress) {
    this.#network = network;
    this.localAddr = local;
    this.remoteAddr = remote;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0 && !this.#eof) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      await new Promise<void>((resolve) => this.#readWaiter = resolve);
    }
    if (this.#closed) throw new Deno.errors.BadResource("connection closed");
    const chunk = this.#chunks[0];
    if (!chunk) return null;
    const length = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, length));
    if (length === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(length);
    return length;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed || this.#writeClosed) {
      return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    }
    const copy = bytes.slice();
    this.#schedule(copy.length, () => this.peer.#receive(copy));
    return Promise.resolve(bytes.length);
  }

  closeWrite(): Promise<void> {
    if (!this.#writeClosed && !this.#closed) {
      this.#writeClosed = true;
      this.#schedule(0, () => this.peer.#end());
    }
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.length = 0;
    this.#wake();
    if (!this.#writeClosed) {
      this.#writeClosed = true;
      this.#schedule(0, () => this.peer.#end());
    }
  }

  setNoDelay(): void {}

  /** Breaks the connection at once on both ends (a reset). */
  reset(): void {
    for (const end of [this, this.peer]) {
      end.#eof = true;
      end.#writeClosed = true;
      end.#wake();
    }
  }

  #schedule(length: number, deliver: () => void): void {
    const verdict = this.#network.judge({
      transport: "tcp",
      from: this.localAddr,
      to: this.remoteAddr,
      length,
    });
    const at = Math.max(this.#network.clock.now() + (verdict?.delayMs ?? 0), this.#lastDeliveryAt);
    this.#lastDeliveryAt = at;
    this.#network.clock.setTimer(deliver, at - this.#network.clock.now());
  }

  #receive(bytes: Uint8Array): void {
    if (this.#closed || this.#eof) return;
    this.#chunks.push(bytes);
    this.#wake();
  }

  #end(): void {
    this.#eof = true;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#readWaiter;
    this.#readWaiter = undefined;
    waiter?.();
  }
}

class MemoryListener implements StreamListener {
  readonly addr: NetAddress;
  readonly #network: MemoryNetwork;
  readonly #incoming = new Waiters<StreamConn>();

  constructor(network: MemoryNetwork, addr: NetAddress) {
    this.#network = network;
    this.addr = addr;
  }

  accept(): Promise<StreamConn> {
    return this.#incoming.next();
  }

  close(): void {
    this.#incoming.close(new Deno.errors.BadResource("listener closed"));
    this.#network.unbind(this.addr);
  }

  /** @internal */
  offer(conn: StreamConn): void {
    this.#incoming.push(conn);
  }
}

/**
 * Simulated hosts joined by one in-memory network. {@linkcode MemoryNetwork.host} gives the
 * {@linkcode NetworkRuntime} of one host: its wildcard binds take that host's address.
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "./virtual_runtime.ts";
 *
 * const runtime = new VirtualRuntime();
 * const network = runtime.net as MemoryNetwork;
 * const a = network.host("10.0.0.1").listenDatagram({ hostname: "0.0.0.0", port: 5000 });
 * const b = network.host("10.0.0.2").listenDatagram({ hostname: "0.0.0.0", port: 0 });
 * await b.send(new Uint8Array([1]), { transport: "udp", hostname: "10.0.0.1", port: 5000 });
 * const [bytes, from] = await a.receive();
 * console.log(bytes.length, from.hostname); // 1 10.0.0.2
 * ```
 */
export class MemoryNetwork implements NetworkRuntime {
  /** The clock deliveries are scheduled on. */
  readonly clock: Clock;
  /** Decides the fate of each datagram and TCP write. */
  policy: NetworkPolicy | undefined;
  readonly #defaultHost: string;
  readonly #bound = new Map<string, MemoryDatagramSocket | MemoryListener>();
  #nextPort = 40000;

  /**
   * @param clock Whose timers carry deliveries.
   * @param defaultHost The address of the host this object itself stands for (default
   *   `127.0.0.1`).
   */
  constructor(clock: Clock, defaultHost = "127.0.0.1") {
    this.clock = clock;
    this.#defaultHost = defaultHost;
  }

  /** The network as seen from the host with address `address`. */
  host(address: string): NetworkRuntime {
    return {
      listenDatagram: (bind) => this.#listenDatagram(bind, address),
      connect: (to) => this.#connect(to, address),
      listen: (bind) => this.#listen(bind, address),
    };
  }

  listenDatagram(bind: HostPort): DatagramSocket {
    return this.#listenDatagram(bind, this.#defaultHost);
  }

  connect(to: HostPort): Promise<StreamConn> {
    return this.#connect(to, this.#defaultHost);
  }

  listen(bind: HostPort): StreamListener {
    return this.#listen(bind, this.#defaultHost);
  }

  /** @internal Applies the policy. */
  judge(transit: Transit): Verdict | undefined {
    return this.policy?.(transit);
  }

  /** @internal */
  unbind(addr: NetAddress): void {
    this.#bound.delete(key(addr.hostname, addr.port, addr.transport));
  }

  /** @internal */
  sendDatagram(from: MemoryDatagramSocket, bytes: Uint8Array, to: NetAddress): void {
    const verdict = this.judge({ transport: "udp", from: from.addr, to, length: bytes.length });
    if (verdict?.drop) return;
    this.clock.setTimer(() => {
      const target = this.#bound.get(key(to.hostname, to.port, "udp"));
      if (target instanceof MemoryDatagramSocket) target.deliver(bytes, from.addr);
    }, verdict?.delayMs ?? 0);
  }

  #address(bind: HostPort, host: string, transport: "udp" | "tcp"): NetAddress {
    const hostname = WILDCARDS.has(bind.hostname) ? host : bind.hostname;
    let port = bind.port;
    if (port === 0) {
      do port = this.#nextPort++; while (this.#bound.has(key(hostname, port, transport)));
    }
    if (this.#bound.has(key(hostname, port, transport))) {
      throw new Deno.errors.AddrInUse(`${transport} ${hostname}:${port} is in use`);
    }
    return { transport, hostname, port };
  }

  #listenDatagram(bind: HostPort, host: string): DatagramSocket {
    const addr = this.#address(bind, host, "udp");
    const socket = new MemoryDatagramSocket(this, addr);
    this.#bound.set(key(addr.hostname, addr.port, "udp"), socket);
    return socket;
  }

  #listen(bind: HostPort, host: string): StreamListener {
    const addr = this.#address(bind, host, "tcp");
    const listener = new MemoryListener(this, addr);
    this.#bound.set(key(addr.hostname, addr.port, "tcp"), listener);
    return listener;
  }

  #connect(to: HostPort, host: string): Promise<StreamConn> {
    const local = this.#address({ hostname: host, port: 0 }, host, "tcp");
    const remote: NetAddress = { transport: "tcp", hostname: to.hostname, port: to.port };
    const verdict = this.judge({ transport: "tcp", from: local, to: remote, length: 0 });
    const delay = verdict?.delayMs ?? 0;
    return new Promise((resolve, reject) => {
      this.clock.setTimer(() => {
        const listener = this.#bound.get(key(to.hostname, to.port, "tcp"));
        if (!(listener instanceof MemoryListener) || verdict?.drop) {
          reject(new Deno.errors.ConnectionRefused(`connection to ${to.hostname}:${to.port}`));
          return;
        }
        const client = new MemoryStream(this, local, remote);
        const server = new MemoryStream(this, remote, local);
        client.peer = server;
        server.peer = client;
        listener.offer(server);
        this.clock.setTimer(() => resolve(client), delay);
      }, delay);
    });
  }
}
