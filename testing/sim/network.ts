/**
 * The simulated Internet: hosts with access links, NAT boxes in front of some of them, UDP and
 * TCP between them, all on one virtual clock, with the faults real networks have — per-direction
 * loss, delay, jitter, reordering, duplication, one-way loss, partitions that heal, TCP
 * connections that stall through a partition and reset when it lasts too long, and NAT mappings
 * that expire when idle.
 *
 * Why: issue 9's bugs (a dead link after a 35 s stall, one-way UDP loss never detected, a late
 * public endpoint, a brief loss of the signaling connection) need exactly these conditions, and
 * reproducing them with namespaces takes minutes per case; here a 90 s fault schedule runs in
 * milliseconds and reruns identically from its seed. The model follows RFC 4787 (NAT behavioural
 * requirements for UDP: mapping behaviour §4.1, filtering §5, refresh on outbound traffic §4.3),
 * as the NAT lab in `natlab/` does with nftables.
 *
 * Model, per datagram: the sender's NAT (if any) translates the source and refreshes the mapping;
 * the path's conditions are the sender's uplink combined with the receiver's downlink; a blocked
 * pair (partition or one-way block) drops it at send time; what is in flight when a partition
 * starts still arrives. On arrival the receiver's NAT filters it (mapping alive, filtering rule),
 * and the socket queues it (bounded; excess dropped) — also while its process is frozen.
 *
 * TCP is reliable and ordered: loss shows as retransmission delay (an RTO of 200 ms doubling);
 * while the path is blocked segments wait, retried every 500 ms, and a connection stalled longer
 * than `tcpResetAfterMs` is reset on both ends. Connections leave a NAT'd host through a TCP
 * mapping that lives as long as the connection; inbound connections to a NAT'd host are refused.
 *
 * @module
 */
import type {
  DatagramSocket,
  HostPort,
  NetAddress,
  NetworkRuntime,
  StreamConn,
  StreamListener,
} from "../../shared/runtime/runtime.ts";
import type { VirtualRuntime } from "../virtual_runtime.ts";
import type { OwnedResource, ResourceOwner } from "./process.ts";

/** How one direction of a host's access link treats packets. */
export interface LinkConditions {
  /** Probability a datagram is lost (0–1). 1 also stalls TCP. */
  loss: number;
  /** Fixed one-way delay, ms. */
  delayMs: number;
  /** Extra uniformly random delay in [0, jitterMs), ms (reorders datagrams). */
  jitterMs: number;
  /** Probability a datagram is delivered twice (the copy with its own delay). */
  duplicate: number;
  /** Probability a datagram is held back an extra 10–60 ms (reordering beyond jitter). */
  reorder: number;
}

/** A perfect link direction. */
export const CLEAN_LINK: Readonly<LinkConditions> = Object.freeze({
  loss: 0,
  delayMs: 0,
  jitterMs: 0,
  duplicate: 0,
  reorder: 0,
});

/** RFC 4787 mapping / filtering behaviour. */
export type NatBehaviour =
  | "endpoint-independent"
  | "address-dependent"
  | "address-and-port-dependent";

/** Options of a {@linkcode NatBox}. */
export interface NatOptions {
  /** The NAT's public address. */
  publicIp: string;
  /** Mapping behaviour (RFC 4787 §4.1); default endpoint-independent. */
  mapping?: NatBehaviour;
  /** Filtering behaviour (RFC 4787 §5); default endpoint-independent. */
  filtering?: NatBehaviour;
  /** A UDP mapping idle (no outbound packet) this long expires; default 30,000 ms. */
  mappingTimeoutMs?: number;
}

/** Options of a host. */
export interface HostOptions {
  /** A unique name (used by partitions, traces and fault schedules). */
  name: string;
  /** The host's own address (private if behind a NAT). */
  ip: string;
  /** The NAT in front of it, if any. */
  nat?: NatBox;
}

/** Options of a {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** A TCP connection stalled (path blocked) this long is reset on both ends; default 30,000. */
  tcpResetAfterMs?: number;
  /** Datagrams a socket queues unread (e.g. while its process is frozen); default 256. */
  socketQueueLimit?: number;
  /** Receives one line per network event (for traces and their hashes). */
  trace?: (line: string, packet: boolean) => void;
  /** Also trace every datagram's fate (default false). */
  tracePackets?: boolean;
}

type Transport = "udp" | "tcp";

function endpoint(address: { hostname: string; port: number }): string {
  return `${address.hostname}:${address.port}`;
}

/** One UDP mapping of a {@linkcode NatBox}. */
interface NatMapping {
  key: string;
  internal: NetAddress;
  externalPort: number;
  lastOutbound: number;
  addresses: Set<string>;
  endpoints: Set<string>;
}

/**
 * A NAT in front of one or more hosts: translates their outbound UDP and TCP to its public
 * address, and filters inbound UDP by its mapping and filtering behaviour.
 *
 * @example
 * ```ts
 * const nat = new NatBox({
 *   publicIp: "203.0.113.1",
 *   mapping: "endpoint-independent",
 *   filtering: "address-and-port-dependent", // a port-restricted cone
 *   mappingTimeoutMs: 30_000,
 * });
 * console.log(nat.kind); // "EI/APD"
 * ```
 */
export class NatBox {
  /** The public address. */
  readonly publicIp: string;
  /** Mapping behaviour. */
  readonly mapping: NatBehaviour;
  /** Filtering behaviour. */
  readonly filtering: NatBehaviour;
  /** Idle timeout of a UDP mapping, ms. */
  mappingTimeoutMs: number;
  readonly #byKey = new Map<string, NatMapping>();
  readonly #byPort = new Map<number, NatMapping>();
  readonly #tcpPorts = new Set<number>();
  #nextPort = 20000;

  /** @param options Address, behaviours and timeout. */
  constructor(options: NatOptions) {
    this.publicIp = options.publicIp;
    this.mapping = options.mapping ?? "endpoint-independent";
    this.filtering = options.filtering ?? "endpoint-independent";
    this.mappingTimeoutMs = options.mappingTimeoutMs ?? 30_000;
  }

  /** A short label: mapping/filtering as EI, AD or APD. */
  get kind(): string {
    return `${short(this.mapping)}/${short(this.filtering)}`;
  }

  /** Live UDP mappings (expired ones are dropped lazily). */
  get mappings(): number {
    return this.#byKey.size;
  }

  /** Forgets every UDP mapping at once (a NAT reboot or a burst of expiries). */
  expireAll(): void {
    this.#byKey.clear();
    this.#byPort.clear();
  }

  /** @internal Outbound UDP: the public source for `internal` sending to `to`. */
  outbound(internal: NetAddress, to: NetAddress, now: number): NetAddress {
    const key = `${endpoint(internal)}>${this.#mappingScope(to)}`;
    let mapping = this.#alive(this.#byKey.get(key), now);
    if (!mapping) {
      mapping = {
        key,
        internal,
        externalPort: this.#allocatePort(),
        lastOutbound: now,
        addresses: new Set(),
        endpoints: new Set(),
      };
      this.#byKey.set(key, mapping);
      this.#byPort.set(mapping.externalPort, mapping);
    }
    mapping.lastOutbound = now;
    mapping.addresses.add(to.hostname);
    mapping.endpoints.add(endpoint(to));
    return { transport: "udp", hostname: this.publicIp, port: mapping.externalPort };
  }

  /** @internal Inbound UDP to `port` from `from`: the internal destination, or undefined. */
  inbound(port: number, from: NetAddress, now: number): NetAddress | undefined {
    const mapping = this.#alive(this.#byPort.get(port), now);
    if (!mapping) return undefined;
    if (this.filtering === "address-dependent" && !mapping.addresses.has(from.hostname)) {
      return undefined;
    }
    if (
      this.filtering === "address-and-port-dependent" && !mapping.endpoints.has(endpoint(from))
    ) return undefined;
    return mapping.internal;
  }

  /** @internal Where inbound UDP to `port` would go (no filtering, for path conditions). */
  peekInbound(port: number, now: number): NetAddress | undefined {
    return this.#alive(this.#byPort.get(port), now)?.internal;
  }

  /** @internal A public port for a TCP connection (freed by {@linkcode NatBox.releaseTcp}). */
  allocateTcp(): number {
    const port = this.#allocatePort();
    this.#tcpPorts.add(port);
    return port;
  }

  /** @internal */
  releaseTcp(port: number): void {
    this.#tcpPorts.delete(port);
  }

  #mappingScope(to: NetAddress): string {
    switch (this.mapping) {
      case "endpoint-independent":
        return "*";
      case "address-dependent":
        return to.hostname;
      case "address-and-port-dependent":
        return endpoint(to);
    }
  }

  #alive(mapping: NatMapping | undefined, now: number): NatMapping | undefined {
    if (!mapping) return undefined;
    if (now - mapping.lastOutbound <= this.mappingTimeoutMs) return mapping;
    this.#byKey.delete(mapping.key);
    this.#byPort.delete(mapping.externalPort);
    return undefined;
  }

  #allocatePort(): number {
    for (;;) {
      const port = this.#nextPort;
      this.#nextPort = this.#nextPort >= 65000 ? 20000 : this.#nextPort + 1;
      if (!this.#byPort.has(port) && !this.#tcpPorts.has(port)) return port;
    }
  }
}

function short(behaviour: NatBehaviour): string {
  return behaviour === "endpoint-independent"
    ? "EI"
    : behaviour === "address-dependent"
    ? "AD"
    : "APD";
}

/** One simulated machine: an address, an access link, maybe a NAT. */
export class SimHost {
  /** Its name. */
  readonly name: string;
  /** Its own address. */
  readonly ip: string;
  /** The NAT in front of it. */
  readonly nat: NatBox | undefined;
  /** Conditions of packets it sends. */
  uplink: LinkConditions = { ...CLEAN_LINK };
  /** Conditions of packets it receives. */
  downlink: LinkConditions = { ...CLEAN_LINK };
  readonly #network: SimNetwork;
  #nextPort = 40000;

  /** @internal Use {@linkcode SimNetwork.addHost}. */
  constructor(network: SimNetwork, options: HostOptions) {
    this.#network = network;
    this.name = options.name;
    this.ip = options.ip;
    this.nat = options.nat;
  }

  /** The network as seen by a process on this host that owns what it opens. */
  netFor(owner: ResourceOwner): NetworkRuntime {
    return {
      listenDatagram: (bind) => this.#network.listenDatagram(this, owner, bind),
      connect: (to) => this.#network.connect(this, owner, to),
      listen: (bind) => this.#network.listen(this, owner, bind),
    };
  }

  /** @internal */
  ephemeralPort(taken: (port: number) => boolean): number {
    for (;;) {
      const port = this.#nextPort;
      this.#nextPort = this.#nextPort >= 60000 ? 40000 : this.#nextPort + 1;
      if (!taken(port)) return port;
    }
  }
}

/** A bounded queue whose waiters are woken only while the owner runs. */
class GatedQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<{ resolve: (value: T) => void; reject: (error: Error) => void }> = [];
  readonly #owner: ResourceOwner;
  readonly #limit: number;
  #closed: Error | undefined;
  dropped = 0;

  constructor(owner: ResourceOwner, limit: number) {
    this.#owner = owner;
    this.#limit = limit;
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  push(value: T): void {
    if (this.#closed) return;
    if (this.#items.length >= this.#limit) {
      this.dropped++;
      return;
    }
    this.#items.push(value);
    this.resume();
  }

  next(): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#owner.state === "running" && this.#items.length > 0) {
      return Promise.resolve(this.#items.shift() as T);
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  resume(): void {
    if (this.#owner.state !== "running") return;
    while (this.#waiters.length > 0 && this.#items.length > 0) {
      this.#waiters.shift()!.resolve(this.#items.shift() as T);
    }
  }

  /** Closes; waiting promises reject with `error` (or are abandoned when `error` is omitted). */
  close(error: Error, rejectWaiters: boolean): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#items.length = 0;
    const waiters = this.#waiters.splice(0);
    if (rejectWaiters) { for (const waiter of waiters) waiter.reject(error); }
  }
}

class SimDatagramSocket implements DatagramSocket, OwnedResource {
  readonly addr: NetAddress;
  readonly host: SimHost;
  readonly #network: SimNetwork;
  readonly #owner: ResourceOwner;
  readonly inbox: GatedQueue<[Uint8Array, NetAddress]>;

  constructor(network: SimNetwork, host: SimHost, owner: ResourceOwner, addr: NetAddress) {
    this.#network = network;
    this.host = host;
    this.#owner = owner;
    this.addr = addr;
    this.inbox = new GatedQueue(owner, network.socketQueueLimit);
  }

  receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddress]> {
    return this.inbox.next().then(([bytes, from]) => {
      if (!buffer) return [bytes, from];
      const length = Math.min(bytes.length, buffer.length);
      buffer.set(bytes.subarray(0, length));
      return [buffer.subarray(0, length), from];
    });
  }

  send(bytes: Uint8Array, to: NetAddress): Promise<number> {
    if (this.inbox.closed) return Promise.reject(new Deno.errors.BadResource("socket closed"));
    this.#network.sendDatagram(this, bytes.slice(), { ...to, transport: "udp" });
    return Promise.resolve(bytes.length);
  }

  close(): void {
    this.#shut(true);
  }

  resume(): void {
    this.inbox.resume();
  }

  abandon(): void {
    this.#shut(false);
  }

  #shut(reject: boolean): void {
    if (this.inbox.closed) return;
    this.inbox.close(new Deno.errors.BadResource("socket closed"), reject);
    this.#network.unbind(this.addr);
    this.#owner.release(this);
  }
}

interface Segment {
  bytes: Uint8Array | null; // null = FIN
}

/** One end of a simulated TCP connection. */
class SimStream implements StreamConn, OwnedResource {
  readonly localAddr: NetAddress;
  readonly remoteAddr: NetAddress;
  /** The host this end lives on. */
  readonly host: SimHost;
  peer!: SimStream;
  readonly #network: SimNetwork;
  readonly #owner: ResourceOwner;
  readonly #chunks: Uint8Array[] = [];
  readonly #outgoing: Segment[] = [];
  #readWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #eof = false;
  #closed = false;
  #writeClosed = false;
  #reset = false;
  #lastDeliveryAt = 0;
  #stalledSince: number | undefined;
  #retryScheduled = false;
  #rto = 200;
  /** Called once when both ends are done (frees a NAT port). */
  onGone: (() => void) | undefined;

  constructor(
    network: SimNetwork,
    host: SimHost,
    owner: ResourceOwner,
    local: NetAddress,
    remote: NetAddress,
  ) {
    this.#network = network;
    this.host = host;
    this.#owner = owner;
    this.localAddr = local;
    this.remoteAddr = remote;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      if (this.#owner.state === "running") {
        if (this.#chunks.length > 0) break;
        if (this.#reset) throw new Deno.errors.ConnectionReset("connection reset");
        if (this.#eof) return null;
      }
      await new Promise<void>((resolve, reject) => this.#readWaiter = { resolve, reject });
    }
    const chunk = this.#chunks[0];
    const length = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, length));
    if (length === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(length);
    return length;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#reset) return Promise.reject(new Deno.errors.ConnectionReset("connection reset"));
    if (this.#closed || this.#writeClosed) {
      return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    }
    this.#outgoing.push({ bytes: bytes.slice() });
    this.#pump();
    return Promise.resolve(bytes.length);
  }

  closeWrite(): Promise<void> {
    this.#finish();
    return Promise.resolve();
  }

  close(): void {
    this.#shut();
    this.#wake(new Deno.errors.BadResource("connection closed"));
  }

  setNoDelay(): void {}

  resume(): void {
    this.#wake();
  }

  abandon(): void {
    this.#readWaiter = undefined;
    this.#shut();
  }

  /** @internal Breaks the connection on both ends. */
  resetBoth(): void {
    for (const end of [this, this.peer]) {
      if (end.#reset) continue;
      end.#reset = true;
      end.#outgoing.length = 0;
      end.#wake();
      end.#gone();
    }
    this.#network.traceLine(`tcp reset ${endpoint(this.localAddr)} ${endpoint(this.remoteAddr)}`);
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.length = 0;
    this.#finish();
    this.#owner.release(this);
    this.#gone();
  }

  #finish(): void {
    if (this.#writeClosed || this.#reset) return;
    this.#writeClosed = true;
    this.#outgoing.push({ bytes: null });
    this.#pump();
  }

  #gone(): void {
    if ((this.#closed || this.#reset) && (this.peer.#closed || this.peer.#reset)) {
      const done = this.onGone ?? this.peer.onGone;
      this.onGone = this.peer.onGone = undefined;
      done?.();
    }
  }

  /**
   * Sends what is queued. A segment lost (drawn from the path's loss both ways, as the data or
   * its ACK) or blocked is retransmitted after the retransmission timeout, which doubles each
   * time (200 ms up to 60 s, as Linux does), with every later segment waiting behind it; a
   * connection stalled longer than `tcpResetAfterMs` is reset on both ends.
   */
  #pump(): void {
    const network = this.#network;
    const now = network.clock.now();
    if (this.#retryScheduled) return;
    while (this.#outgoing.length > 0 && !this.#reset) {
      const path = network.tcpPath(this.host, this.peer.host);
      if (path === undefined || network.clock.random() < path.loss) {
        this.#stalledSince ??= now;
        if (now - this.#stalledSince >= network.tcpResetAfterMs) {
          this.resetBoth();
          return;
        }
        this.#retryScheduled = true;
        network.clock.setTimer(() => {
          this.#retryScheduled = false;
          this.#pump();
        }, this.#rto);
        this.#rto = Math.min(this.#rto * 2, 60_000);
        return;
      }
      this.#stalledSince = undefined;
      this.#rto = 200;
      const segment = this.#outgoing.shift() as Segment;
      const at = Math.max(now + path.delayMs, this.#lastDeliveryAt);
      this.#lastDeliveryAt = at;
      network.clock.setTimer(() => this.peer.#arrive(segment), at - now);
    }
  }

  #arrive(segment: Segment): void {
    this.#network.traceLine(
      `tcp ${endpoint(this.remoteAddr)}>${endpoint(this.localAddr)} ${
        segment.bytes?.length ?? "FIN"
      }`,
      true,
    );
    if (this.#reset) return;
    if (segment.bytes === null) {
      this.#eof = true;
      this.#wake();
      this.#gone();
      return;
    }
    if (this.#closed) {
      // Data for a closed socket: the kernel answers with a reset.
      this.resetBoth();
      return;
    }
    this.#chunks.push(segment.bytes);
    this.#wake();
  }

  #wake(error?: Error): void {
    const waiter = this.#readWaiter;
    if (!waiter) return;
    if (!error && this.#owner.state !== "running") return;
    this.#readWaiter = undefined;
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}

class SimListener implements StreamListener, OwnedResource {
  readonly addr: NetAddress;
  readonly host: SimHost;
  readonly owner: ResourceOwner;
  readonly #network: SimNetwork;
  readonly incoming: GatedQueue<StreamConn>;

  constructor(network: SimNetwork, host: SimHost, owner: ResourceOwner, addr: NetAddress) {
    this.#network = network;
    this.host = host;
    this.owner = owner;
    this.addr = addr;
    this.incoming = new GatedQueue(owner, 128);
  }

  accept(): Promise<StreamConn> {
    return this.incoming.next();
  }

  close(): void {
    this.#shut(true);
  }

  resume(): void {
    this.incoming.resume();
  }

  abandon(): void {
    this.#shut(false);
  }

  #shut(reject: boolean): void {
    if (this.incoming.closed) return;
    this.incoming.close(new Deno.errors.BadResource("listener closed"), reject);
    this.#network.unbind(this.addr);
    this.owner.release(this);
  }
}

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

function bindKey(transport: Transport, hostname: string, port: number): string {
  return `${transport} ${hostname} ${port}`;
}

/** A pair blocked by a partition or a one-way block. */
interface Block {
  from: Set<string>;
  to: Set<string>;
  transports: Set<Transport>;
}

/** Options of {@linkcode SimNetwork.block}. */
export interface BlockOptions {
  /** Which transports are blocked (default both). */
  transports?: Transport[];
  /** Block only `from` → `to` (default: both directions). */
  oneWay?: boolean;
}

/**
 * The network: hosts, NATs, conditions, partitions, sockets. Processes reach it through
 * {@linkcode SimHost.netFor} (see `world.ts` for the usual way in).
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "../virtual_runtime.ts";
 * import { SimProcess } from "./process.ts";
 *
 * const clock = new VirtualRuntime({ seed: 1 });
 * const network = new SimNetwork(clock);
 * const server = network.addHost({ name: "server", ip: "198.51.100.1" });
 * const nat = new NatBox({ publicIp: "203.0.113.7", filtering: "address-dependent" });
 * const alice = network.addHost({ name: "alice", ip: "192.168.1.2", nat });
 * alice.uplink = { ...alice.uplink, delayMs: 20, loss: 0.1 };
 * const s = new SimProcess("server", clock, (owner) => server.netFor(owner));
 * const a = new SimProcess("alice", clock, (owner) => alice.netFor(owner));
 * const socket = s.runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 3478 });
 * const mine = a.runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
 * const unblock = network.block(["alice"], ["server"], { oneWay: true, transports: ["udp"] });
 * unblock();
 * await mine.send(new Uint8Array([1]), { transport: "udp", hostname: "198.51.100.1", port: 3478 });
 * ```
 */
export class SimNetwork {
  /** The clock deliveries run on (also the randomness). */
  readonly clock: VirtualRuntime;
  /** See {@linkcode SimNetworkOptions.tcpResetAfterMs}. */
  tcpResetAfterMs: number;
  /** See {@linkcode SimNetworkOptions.socketQueueLimit}. */
  readonly socketQueueLimit: number;
  /** Datagrams dropped, by cause (for tests and reports). */
  readonly dropped = { loss: 0, blocked: 0, nat: 0, unbound: 0 };
  readonly #trace: ((line: string, packet: boolean) => void) | undefined;
  readonly #tracePackets: boolean;
  readonly #hosts = new Map<string, SimHost>();
  readonly #hostByIp = new Map<string, SimHost>();
  readonly #natByIp = new Map<string, NatBox>();
  readonly #bound = new Map<string, SimDatagramSocket | SimListener>();
  readonly #blocks = new Set<Block>();

  /**
   * @param clock The virtual clock (and seeded randomness) everything runs on.
   * @param options TCP reset time, socket queue limit, trace sink.
   */
  constructor(clock: VirtualRuntime, options: SimNetworkOptions = {}) {
    this.clock = clock;
    this.tcpResetAfterMs = options.tcpResetAfterMs ?? 30_000;
    this.socketQueueLimit = options.socketQueueLimit ?? 256;
    this.#trace = options.trace;
    this.#tracePackets = options.tracePackets ?? false;
  }

  /** Adds a host (its NAT, if any, is registered by its public address). */
  addHost(options: HostOptions): SimHost {
    if (this.#hosts.has(options.name)) throw new Error(`host ${options.name} exists`);
    const host = new SimHost(this, options);
    this.#hosts.set(host.name, host);
    this.#hostByIp.set(host.ip, host);
    if (options.nat) this.#natByIp.set(options.nat.publicIp, options.nat);
    return host;
  }

  /** The host called `name`. */
  host(name: string): SimHost {
    const host = this.#hosts.get(name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  }

  /**
   * Blocks traffic from every host in `from` to every host in `to` (and back unless `oneWay`),
   * for the given transports. Returns the function that heals it. Blocks nest: a pair is open
   * again once every block covering it is healed.
   */
  block(from: string[], to: string[], options: BlockOptions = {}): () => void {
    const transports = new Set<Transport>(options.transports ?? ["udp", "tcp"]);
    const blocks: Block[] = [{ from: new Set(from), to: new Set(to), transports }];
    if (!options.oneWay) blocks.push({ from: new Set(to), to: new Set(from), transports });
    for (const block of blocks) this.#blocks.add(block);
    this.traceLine(`block ${from.join(",")} ${options.oneWay ? ">" : "<>"} ${to.join(",")}`);
    return () => {
      for (const block of blocks) this.#blocks.delete(block);
      this.traceLine(`heal ${from.join(",")} ${options.oneWay ? ">" : "<>"} ${to.join(",")}`);
    };
  }

  /** Whether `transport` traffic from host `from` to host `to` is blocked now. */
  blocked(from: SimHost, to: SimHost, transport: Transport): boolean {
    for (const block of this.#blocks) {
      if (block.transports.has(transport) && block.from.has(from.name) && block.to.has(to.name)) {
        return true;
      }
    }
    return false;
  }

  /** @internal */
  traceLine(line: string, packet = false): void {
    this.#trace?.(`${this.clock.now().toFixed(3)} ${line}`, packet);
  }

  /** @internal */
  unbind(addr: NetAddress): void {
    this.#bound.delete(bindKey(addr.transport, addr.hostname, addr.port));
  }

  /**
   * @internal The TCP path from `from` to `to` now: one-way delay and the chance a segment or
   * its ACK is lost; undefined while blocked either way.
   */
  tcpPath(from: SimHost, to: SimHost): { delayMs: number; loss: number } | undefined {
    if (this.blocked(from, to, "tcp") || this.blocked(to, from, "tcp")) return undefined;
    const there = combinedLoss(from.uplink, to.downlink);
    const back = combinedLoss(to.uplink, from.downlink);
    return {
      delayMs: from.uplink.delayMs + to.downlink.delayMs,
      loss: 1 - (1 - there) * (1 - back),
    };
  }

  /** @internal */
  listenDatagram(host: SimHost, owner: ResourceOwner, bind: HostPort): DatagramSocket {
    const addr = this.#bindAddress(host, owner, bind, "udp");
    const socket = new SimDatagramSocket(this, host, owner, addr);
    this.#bound.set(bindKey("udp", addr.hostname, addr.port), socket);
    owner.adopt(socket);
    return socket;
  }

  /** @internal */
  listen(host: SimHost, owner: ResourceOwner, bind: HostPort): StreamListener {
    const addr = this.#bindAddress(host, owner, bind, "tcp");
    const listener = new SimListener(this, host, owner, addr);
    this.#bound.set(bindKey("tcp", addr.hostname, addr.port), listener);
    owner.adopt(listener);
    return listener;
  }

  /** @internal */
  sendDatagram(socket: SimDatagramSocket, bytes: Uint8Array, to: NetAddress): void {
    const now = this.clock.now();
    const host = socket.host;
    let from: NetAddress = socket.addr;
    if (host.nat && to.hostname !== host.ip) from = host.nat.outbound(socket.addr, to, now);
    const target = this.#destinationHost(to, now);
    if (target && this.blocked(host, target, "udp")) {
      this.dropped.blocked++;
      return;
    }
    const up = host.uplink;
    const down = target?.downlink ?? CLEAN_LINK;
    if (this.clock.random() < combinedLoss(up, down)) {
      this.dropped.loss++;
      return;
    }
    const copies = this.clock.random() < 1 - (1 - up.duplicate) * (1 - down.duplicate) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      let delay = up.delayMs + down.delayMs + this.clock.random() * (up.jitterMs + down.jitterMs);
      if (this.clock.random() < 1 - (1 - up.reorder) * (1 - down.reorder)) {
        delay += 10 + this.clock.random() * 50;
      }
      this.clock.setTimer(() => this.#arrive(bytes, from, to), delay);
    }
  }

  #arrive(bytes: Uint8Array, from: NetAddress, to: NetAddress): void {
    let destination: NetAddress | undefined = to;
    const nat = this.#natByIp.get(to.hostname);
    if (nat) {
      destination = nat.inbound(to.port, from, this.clock.now());
      if (!destination) {
        this.dropped.nat++;
        return;
      }
    }
    const socket = this.#bound.get(bindKey("udp", destination.hostname, destination.port));
    if (this.#tracePackets) {
      this.traceLine(`udp ${endpoint(from)}>${endpoint(destination)} ${bytes.length}`, true);
    }
    if (!(socket instanceof SimDatagramSocket)) {
      this.dropped.unbound++;
      return;
    }
    socket.inbox.push([bytes, from]);
  }

  #destinationHost(to: NetAddress, now: number): SimHost | undefined {
    const host = this.#hostByIp.get(to.hostname);
    if (host) return host;
    const internal = this.#natByIp.get(to.hostname)?.peekInbound(to.port, now);
    return internal && this.#hostByIp.get(internal.hostname);
  }

  /** @internal */
  connect(host: SimHost, owner: ResourceOwner, to: HostPort): Promise<StreamConn> {
    if (owner.state === "dead") return Promise.reject(new Deno.errors.BadResource("process gone"));
    const port = host.ephemeralPort((p) => this.#bound.has(bindKey("tcp", host.ip, p)));
    const local: NetAddress = { transport: "tcp", hostname: host.ip, port };
    const natPort = host.nat?.allocateTcp();
    const seenFrom: NetAddress = host.nat
      ? { transport: "tcp", hostname: host.nat.publicIp, port: natPort! }
      : local;
    const remote: NetAddress = { transport: "tcp", hostname: to.hostname, port: to.port };
    const release = () => {
      if (natPort !== undefined) host.nat?.releaseTcp(natPort);
    };
    const started = this.clock.now();
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        release();
        owner.post(() => reject(error));
      };
      // SYNs are retransmitted after 1, 2, 4, 8… s (Linux), until tcpResetAfterMs has passed.
      let synTimeout = 1000;
      const attempt = () => {
        if (owner.state === "dead") return release();
        const target = this.#hostByIp.get(to.hostname);
        const there = target && this.tcpPath(host, target);
        if (!target || !there || this.clock.random() < there.loss) {
          // Nobody answers at that address (a NAT forwards nothing), or the SYN is lost.
          if (this.clock.now() + synTimeout - started > this.tcpResetAfterMs) {
            this.clock.setTimer(
              () => fail(new Deno.errors.TimedOut(`connect to ${endpoint(to)} timed out`)),
              Math.max(0, started + this.tcpResetAfterMs - this.clock.now()),
            );
            return;
          }
          this.clock.setTimer(attempt, synTimeout);
          synTimeout *= 2;
          return;
        }
        const back = target.uplink.delayMs + host.downlink.delayMs;
        this.clock.setTimer(() => {
          const listener = this.#bound.get(bindKey("tcp", to.hostname, to.port));
          if (!(listener instanceof SimListener) || listener.incoming.closed) {
            this.clock.setTimer(
              () => fail(new Deno.errors.ConnectionRefused(`connection to ${endpoint(to)}`)),
              back,
            );
            return;
          }
          const server = new SimStream(this, target, listener.owner, remote, seenFrom);
          const client = new SimStream(this, host, owner, local, remote);
          client.peer = server;
          server.peer = client;
          client.onGone = release;
          listener.owner.adopt(server);
          listener.incoming.push(server);
          this.clock.setTimer(() => {
            owner.adopt(client);
            owner.post(() => resolve(client));
          }, back);
        }, there.delayMs);
      };
      attempt();
    });
  }

  #bindAddress(
    host: SimHost,
    owner: ResourceOwner,
    bind: HostPort,
    transport: Transport,
  ): NetAddress {
    if (owner.state === "dead") throw new Deno.errors.BadResource("process gone");
    const hostname = WILDCARDS.has(bind.hostname) || bind.hostname === "localhost"
      ? host.ip
      : bind.hostname;
    if (hostname !== host.ip && hostname !== "127.0.0.1") {
      throw new Deno.errors.AddrNotAvailable(`${hostname} is not an address of ${host.name}`);
    }
    const port = bind.port !== 0
      ? bind.port
      : host.ephemeralPort((p) => this.#bound.has(bindKey(transport, hostname, p)));
    if (this.#bound.has(bindKey(transport, hostname, port))) {
      throw new Deno.errors.AddrInUse(`${transport} ${hostname}:${port} is in use`);
    }
    return { transport, hostname, port };
  }
}

function combinedLoss(up: LinkConditions, down: LinkConditions): number {
  return 1 - (1 - up.loss) * (1 - down.loss);
}
