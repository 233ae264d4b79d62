/**
 * A small reference peer and rendezvous server that keep every invariant of `checker.ts`, used
 * to test the simulator, the fault generator and the checker on their own, and — broken on
 * purpose — to prove the checker fails with a seed.
 *
 * Why: a checker that has only ever seen one implementation cannot tell its own bugs from the
 * implementation's. This peer is the simplest design that is correct under every fault the
 * generator draws: a UDP rendezvous server that tells each peer the others' observed endpoints
 * and relays; peers that ping each other's endpoints every 250 ms (punching and liveness: the path
 * is direct while pongs come back), send data direct when direct is alive and over both direct and
 * relay otherwise, retransmit every 300 ms, and give each message an outcome: `delivered` on ack,
 * after 10 s `unconfirmed` if it was ever transmitted, else `failed`. Order and exactly-once
 * printing come from per-peer sequence numbers with a sender "floor" (below it every message is
 * resolved, so the receiver may skip gaps), and the receiver acks only what it printed. The
 * outbox and the receive positions live on the node's disk, so restarts keep both promises.
 *
 * It is not the product's protocol (no crypto, no TCP); it is a yardstick.
 *
 * @module
 */
import type { DatagramSocket, NetAddress, Runtime } from "../../shared/runtime/runtime.ts";
import type { PathState } from "./checker.ts";
import type { ClientContext, PeerApp, SystemUnderTest } from "./scenario.ts";
import type { NodeContext } from "./world.ts";

/** The reference server's UDP port. */
export const REFERENCE_PORT = 3478;

const TICK_MS = 250;
const REGISTER_MS = 1000;
const RETRANSMIT_MS = 300;
const DIRECT_ALIVE_MS = 1500;
const OUTCOME_AFTER_MS = 10_000;

/** Deliberate bugs, to show the checker catches them. */
export type ReferenceBug =
  /** The receiver prints every copy that arrives (no duplicate check). */
  | "no-dedupe"
  /** The receiver prints in arrival order (no reordering buffer). */
  | "no-order"
  /** The sender reports `failed` where it should say `unconfirmed`. */
  | "failed-for-unconfirmed"
  /** The peer never falls back to the relay. */
  | "no-relay";

type Packet =
  | { t: "reg"; id: string }
  | { t: "roster"; you: string; peers: Record<string, string> }
  | { t: "relay"; from: string; to: string; body: Packet }
  | { t: "relayed"; body: Packet }
  | { t: "ping"; from: string }
  | { t: "pong"; from: string }
  | { t: "data"; from: string; seq: number; floor: number; text: string }
  | { t: "ack"; from: string; seq: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(packet: Packet): Uint8Array {
  return encoder.encode(JSON.stringify(packet));
}

function decode(bytes: Uint8Array): Packet | undefined {
  try {
    return JSON.parse(decoder.decode(bytes)) as Packet;
  } catch {
    return undefined;
  }
}

function format(address: NetAddress): string {
  return `${address.hostname}:${address.port}`;
}

function parse(text: string): NetAddress {
  const i = text.lastIndexOf(":");
  return { transport: "udp", hostname: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

async function receiveLoop(
  socket: DatagramSocket,
  handle: (packet: Packet, from: NetAddress) => void,
): Promise<void> {
  for (;;) {
    let received: [Uint8Array, NetAddress];
    try {
      received = await socket.receive();
    } catch {
      return;
    }
    const packet = decode(received[0]);
    if (packet) handle(packet, received[1]);
  }
}

/**
 * Starts the reference rendezvous server: registrations (kept 5 s), rosters, relaying.
 *
 * @example
 * ```ts
 * import { SimWorld } from "./world.ts";
 * const world = new SimWorld();
 * world.addNode({ name: "server", ip: "198.51.100.1" }, startReferenceServer).start();
 * ```
 */
export function startReferenceServer({ runtime }: NodeContext): { socket: DatagramSocket } {
  const socket = runtime.net.listenDatagram({ hostname: "0.0.0.0", port: REFERENCE_PORT });
  const registry = new Map<string, { address: NetAddress; seen: number }>();
  const send = (packet: Packet, to: NetAddress) => {
    socket.send(encode(packet), to).catch(() => {});
  };
  receiveLoop(socket, (packet, from) => {
    const now = runtime.now();
    if (packet.t === "reg") {
      registry.set(packet.id, { address: from, seen: now });
      const peers: Record<string, string> = {};
      for (const [id, entry] of registry) {
        if (now - entry.seen > 5000) registry.delete(id);
        else if (id !== packet.id) peers[id] = format(entry.address);
      }
      send({ t: "roster", you: format(from), peers }, from);
    } else if (packet.t === "relay") {
      const target = registry.get(packet.to);
      if (target) send({ t: "relayed", body: packet.body }, target.address);
    }
  });
  return { socket };
}

interface OutboxEntry {
  messageId: number;
  to: string;
  seq: number;
  text: string;
  deadline: number;
  transmitted: boolean;
  nextTransmit: number;
}

interface Disk {
  nextMessageId: number;
  nextSeq: Record<string, number>;
  outbox: OutboxEntry[];
  receivedUpTo: Record<string, number>;
}

/**
 * A reference peer on a client node (see the module doc).
 *
 * @example
 * ```ts
 * // world.addNode({ name: "a", ip: "10.0.0.1" }, (context) => new ReferencePeer({ ...context, ... }));
 * ```
 */
export class ReferencePeer implements PeerApp {
  readonly id: string;
  readonly #runtime: Runtime;
  readonly #context: ClientContext;
  readonly #socket: DatagramSocket;
  readonly #server: NetAddress;
  readonly #disk: Disk;
  readonly #bug: ReferenceBug | undefined;
  readonly #serverSeen = new Map<string, NetAddress>();
  readonly #directSeen = new Map<string, NetAddress>();
  readonly #lastPong = new Map<string, number>();
  readonly #buffers = new Map<string, Map<number, string>>();
  #lastRoster = -Infinity;
  #lastRegister = -Infinity;

  /** @param context The node; `bug` breaks it on purpose. */
  constructor(context: ClientContext, bug?: ReferenceBug) {
    this.#context = context;
    this.#runtime = context.runtime;
    this.#bug = bug;
    this.id = context.name;
    const stored = context.disk.get("reference") as Disk | undefined;
    this.#disk = stored ?? { nextMessageId: 1, nextSeq: {}, outbox: [], receivedUpTo: {} };
    context.disk.set("reference", this.#disk);
    this.#server = { transport: "udp", hostname: context.serverIp, port: REFERENCE_PORT };
    this.#socket = this.#runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
    receiveLoop(this.#socket, (packet, from) => this.#receive(packet, from, true));
    this.#tick();
  }

  connect(_peer: string): void {
    this.#register();
  }

  send(peer: string, text: string): number | undefined {
    if (peer === this.id) return undefined;
    const disk = this.#disk;
    const seq = disk.nextSeq[peer] ?? 1;
    disk.nextSeq[peer] = seq + 1;
    const messageId = disk.nextMessageId++;
    const now = this.#runtime.now();
    disk.outbox.push({
      messageId,
      to: peer,
      seq,
      text,
      deadline: now + OUTCOME_AFTER_MS,
      transmitted: false,
      nextTransmit: now,
    });
    this.#flush(now);
    return messageId;
  }

  ready(): boolean {
    return this.#runtime.now() - this.#lastRoster <= 3000;
  }

  pathState(peer: string): PathState {
    const now = this.#runtime.now();
    if (now - (this.#lastPong.get(peer) ?? -Infinity) <= DIRECT_ALIVE_MS) return "direct";
    if (now - this.#lastRoster <= 3000 && this.#serverSeen.has(peer)) return "relayed";
    return "none";
  }

  #tick(): void {
    const now = this.#runtime.now();
    if (now - this.#lastRegister >= REGISTER_MS) this.#register();
    for (const peer of new Set([...this.#serverSeen.keys(), ...this.#directSeen.keys()])) {
      for (const address of this.#candidates(peer)) {
        this.#sendTo({ t: "ping", from: this.id }, address);
      }
    }
    this.#flush(now);
    this.#runtime.setTimer(() => this.#tick(), TICK_MS);
  }

  #register(): void {
    this.#lastRegister = this.#runtime.now();
    this.#sendTo({ t: "reg", id: this.id }, this.#server);
  }

  #candidates(peer: string): NetAddress[] {
    const direct = this.#directSeen.get(peer);
    const served = this.#serverSeen.get(peer);
    if (direct && served && format(direct) === format(served)) return [direct];
    return [direct, served].filter((a): a is NetAddress => a !== undefined);
  }

  /** Retransmits what is due and reports outcomes that fell due. */
  #flush(now: number): void {
    const disk = this.#disk;
    const keep: OutboxEntry[] = [];
    for (const entry of disk.outbox) {
      if (now >= entry.deadline) {
        const outcome = entry.transmitted && this.#bug !== "failed-for-unconfirmed"
          ? "unconfirmed"
          : "failed";
        this.#context.emit({ type: "outcome", messageId: entry.messageId, outcome });
        continue;
      }
      keep.push(entry);
    }
    disk.outbox = keep;
    for (const entry of disk.outbox) {
      if (entry.nextTransmit > now) continue;
      const floor = this.#floor(entry.to);
      const packet: Packet = {
        t: "data",
        from: this.id,
        seq: entry.seq,
        floor,
        text: entry.text,
      };
      if (this.#deliver(entry.to, packet)) entry.transmitted = true;
      entry.nextTransmit = now + RETRANSMIT_MS;
    }
  }

  #floor(peer: string): number {
    let floor = this.#disk.nextSeq[peer] ?? 1;
    for (const entry of this.#disk.outbox) {
      if (entry.to === peer) floor = Math.min(floor, entry.seq);
    }
    return floor;
  }

  /** Sends to a peer direct if alive, else direct and relayed; returns whether anything left. */
  #deliver(peer: string, packet: Packet): boolean {
    const candidates = this.#candidates(peer);
    const direct = this.pathState(peer) === "direct";
    let sent = false;
    for (const address of direct ? candidates.slice(0, 1) : candidates) {
      this.#sendTo(packet, address);
      sent = true;
    }
    if (!direct && this.#bug !== "no-relay") {
      this.#sendTo({ t: "relay", from: this.id, to: peer, body: packet }, this.#server);
      sent = true;
    }
    return sent;
  }

  #sendTo(packet: Packet, to: NetAddress): void {
    this.#socket.send(encode(packet), to).catch(() => {});
  }

  #receive(packet: Packet, from: NetAddress, direct: boolean): void {
    const now = this.#runtime.now();
    switch (packet.t) {
      case "roster":
        this.#lastRoster = now;
        this.#serverSeen.clear();
        for (const [id, address] of Object.entries(packet.peers)) {
          this.#serverSeen.set(id, parse(address));
        }
        return;
      case "relayed":
        this.#receive(packet.body, from, false);
        return;
      case "ping":
        if (!direct) return;
        this.#directSeen.set(packet.from, from);
        this.#sendTo({ t: "pong", from: this.id }, from);
        return;
      case "pong":
        if (!direct) return;
        this.#directSeen.set(packet.from, from);
        this.#lastPong.set(packet.from, now);
        return;
      case "data":
        this.#onData(packet);
        return;
      case "ack": {
        const disk = this.#disk;
        const entry = disk.outbox.find((e) => e.to === packet.from && e.seq === packet.seq);
        if (!entry) return;
        disk.outbox = disk.outbox.filter((e) => e !== entry);
        this.#context.emit({ type: "outcome", messageId: entry.messageId, outcome: "delivered" });
        return;
      }
    }
  }

  #onData(packet: Packet & { t: "data" }): void {
    const peer = packet.from;
    const disk = this.#disk;
    let next = disk.receivedUpTo[peer] ?? 1;
    if (this.#bug === "no-order") {
      this.#context.emit({ type: "message", from: peer, text: packet.text });
      disk.receivedUpTo[peer] = Math.max(next, packet.seq + 1);
      this.#deliver(peer, { t: "ack", from: this.id, seq: packet.seq });
      return;
    }
    if (this.#bug === "no-dedupe" && packet.seq < next) {
      // The duplicate check dropped: a copy of a message already printed is printed again.
      this.#context.emit({ type: "message", from: peer, text: packet.text });
    }
    let buffer = this.#buffers.get(peer);
    if (!buffer) this.#buffers.set(peer, buffer = new Map());
    if (packet.seq >= next) buffer.set(packet.seq, packet.text);
    for (;;) {
      const text = buffer.get(next);
      if (text !== undefined) {
        buffer.delete(next);
        this.#context.emit({ type: "message", from: peer, text });
        next++;
      } else if (next < packet.floor) {
        next++; // resolved at the sender without reaching us: skip the gap
      } else break;
    }
    disk.receivedUpTo[peer] = next;
    // Only what was printed is acknowledged, so `delivered` always means printed.
    if (packet.seq < next) this.#deliver(peer, { t: "ack", from: this.id, seq: packet.seq });
  }
}

/**
 * The reference system (server and peers), optionally with a deliberate bug in the peers.
 *
 * @example
 * ```ts
 * const system = referenceSystem();
 * const broken = referenceSystem("no-dedupe");
 * console.log(system.name, broken.name); // reference reference(no-dedupe)
 * ```
 */
export function referenceSystem(bug?: ReferenceBug): SystemUnderTest {
  return {
    name: bug ? `reference(${bug})` : "reference",
    server: startReferenceServer,
    client: (context) => new ReferencePeer(context, bug),
  };
}
