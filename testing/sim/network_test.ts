import assert from "node:assert/strict";
import type { DatagramSocket, NetAddress, Runtime } from "../../shared/runtime/runtime.ts";
import { type NatBehaviour, NatBox } from "./network.ts";
import { SimWorld } from "./world.ts";
import { EventHeap, type HeapEvent } from "./event_heap.ts";

const SERVER = "198.51.100.1";

function udp(hostname: string, port: number): NetAddress {
  return { transport: "udp", hostname, port };
}

/** A node that binds one UDP socket and records what it receives. */
function echoWorld(seed = 1) {
  const world = new SimWorld({ seed });
  const make = (port: number) => ({ runtime }: { runtime: Runtime }) => {
    const socket = runtime.net.listenDatagram({ hostname: "0.0.0.0", port });
    const received: Array<[number, string]> = [];
    (async () => {
      for (;;) {
        const [bytes, from] = await socket.receive();
        received.push([bytes[0], `${from.hostname}:${from.port}`]);
      }
    })().catch(() => {});
    return { socket, received };
  };
  return { world, make };
}

async function send(socket: DatagramSocket, byte: number, to: NetAddress) {
  await socket.send(new Uint8Array([byte]), to);
}

Deno.test("event heap pops by deadline then insertion order and skips cancelled", () => {
  const heap = new EventHeap<HeapEvent & { n: number }>();
  const events = [];
  for (let n = 0; n < 200; n++) {
    events.push(heap.push({ at: (n * 37) % 50, order: 0, cancelled: false, n }));
  }
  for (const event of events) if (event.n % 3 === 0) heap.cancel(event);
  const popped: Array<[number, number]> = [];
  for (let e = heap.pop(); e; e = heap.pop()) popped.push([e.at, e.n]);
  const expected = events.filter((e) => e.n % 3 !== 0).map((e) => [e.at, e.n] as [number, number])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  assert.deepEqual(popped, expected);
  assert.equal(heap.size, 0);
});

Deno.test("UDP: per-direction delay, loss, duplication; one-way block", async () => {
  const { world, make } = echoWorld();
  const a = world.addNode({ name: "a", ip: "10.0.0.1" }, make(5000)).start();
  const b = world.addNode({ name: "b", ip: "10.0.0.2" }, make(5000)).start();
  const hostA = world.network.host("a");
  hostA.uplink = { ...hostA.uplink, delayMs: 40 };
  await send(a.socket, 1, udp("10.0.0.2", 5000));
  await send(b.socket, 2, udp("10.0.0.1", 5000));
  await world.runFor(1);
  assert.deepEqual(a.received, [[2, "10.0.0.2:5000"]]);
  assert.deepEqual(b.received, []);
  await world.runFor(39);
  assert.deepEqual(b.received, [[1, "10.0.0.1:5000"]]);

  const heal = world.network.block(["a"], ["b"], { oneWay: true, transports: ["udp"] });
  await send(a.socket, 3, udp("10.0.0.2", 5000));
  await send(b.socket, 4, udp("10.0.0.1", 5000));
  await world.runFor(100);
  assert.deepEqual(b.received.length, 1);
  assert.deepEqual(a.received.map((r) => r[0]), [2, 4]);
  heal();

  hostA.uplink = { ...hostA.uplink, duplicate: 1 };
  await send(a.socket, 5, udp("10.0.0.2", 5000));
  await world.runFor(100);
  assert.deepEqual(b.received.map((r) => r[0]), [1, 5, 5]);

  hostA.uplink = { ...hostA.uplink, duplicate: 0, loss: 0.5 };
  for (let i = 0; i < 200; i++) await send(a.socket, 6, udp("10.0.0.2", 5000));
  await world.runFor(100);
  const got = b.received.length - 3;
  assert.ok(got > 60 && got < 140, `about half of 200 arrived, got ${got}`);
});

Deno.test("UDP: jitter and reordering reorder datagrams", async () => {
  const { world, make } = echoWorld(9);
  const a = world.addNode({ name: "a", ip: "10.0.0.1" }, make(5000)).start();
  const b = world.addNode({ name: "b", ip: "10.0.0.2" }, make(5000)).start();
  world.network.host("a").uplink = {
    loss: 0,
    delayMs: 10,
    jitterMs: 20,
    duplicate: 0,
    reorder: 0.3,
  };
  for (let i = 0; i < 50; i++) await send(a.socket, i, udp("10.0.0.2", 5000));
  await world.runFor(200);
  const order = b.received.map((r) => r[0]);
  assert.equal(order.length, 50);
  assert.notDeepEqual(order, [...order].sort((x, y) => x - y));
});

/** Behaviour of a NAT seen from a public server and a second public peer. */
async function natCase(mapping: NatBehaviour, filtering: NatBehaviour) {
  const { world, make } = echoWorld();
  const nat = new NatBox({ publicIp: "203.0.113.1", mapping, filtering, mappingTimeoutMs: 30_000 });
  const inside = world.addNode({ name: "in", ip: "192.168.1.2", nat }, make(4000)).start();
  const server = world.addNode({ name: "s", ip: SERVER }, make(3478)).start();
  const peer = world.addNode({ name: "p", ip: "198.51.100.2" }, make(5000)).start();
  const other = world.addNode({ name: "o", ip: "198.51.100.3" }, make(5000)).start();
  await send(inside.socket, 1, udp(SERVER, 3478));
  await send(inside.socket, 2, udp("198.51.100.2", 5000));
  await world.runFor(10);
  const toServer = server.received[0][1];
  const toPeer = peer.received[0][1];
  const publicPort = Number(toServer.split(":")[1]);
  // Peer answers from the port it was sent to, and from another port; another host tries too.
  await send(peer.socket, 10, udp("203.0.113.1", publicPort));
  const peerOtherPort = world.node("p").host.netFor(world.node("p").process!).listenDatagram({
    hostname: "0.0.0.0",
    port: 5001,
  });
  await send(peerOtherPort, 11, udp("203.0.113.1", publicPort));
  await send(other.socket, 12, udp("203.0.113.1", publicPort));
  await world.runFor(10);
  return {
    sameMapping: toServer === toPeer,
    got: inside.received.map((r) => r[0]),
    world,
    inside,
    server,
    publicPort,
  };
}

Deno.test("NAT: mapping and filtering behaviours (RFC 4787)", async () => {
  const ei = await natCase("endpoint-independent", "endpoint-independent");
  assert.equal(ei.sameMapping, true);
  assert.deepEqual(ei.got, [10, 11, 12]); // full cone: anyone may send to the mapping
  const ad = await natCase("endpoint-independent", "address-dependent");
  assert.deepEqual(ad.got, [10, 11]); // restricted cone: only addresses sent to
  const apd = await natCase("endpoint-independent", "address-and-port-dependent");
  assert.deepEqual(apd.got, [10]); // port-restricted cone
  const symmetric = await natCase("address-and-port-dependent", "address-and-port-dependent");
  assert.equal(symmetric.sameMapping, false);
  const adMapping = await natCase("address-dependent", "address-dependent");
  assert.equal(adMapping.sameMapping, false);
});

Deno.test("NAT: an idle mapping expires; outbound traffic keeps it; expireAll forgets all", async () => {
  const { world, inside, server, publicPort } = await natCase(
    "endpoint-independent",
    "endpoint-independent",
  );
  const s = server.socket;
  // Keep-alive every 20 s keeps the 30 s mapping.
  for (let i = 0; i < 3; i++) {
    await world.runFor(20_000);
    await send(inside.socket, 1, udp(SERVER, 3478));
  }
  await world.runFor(10);
  await send(s, 20, udp("203.0.113.1", publicPort));
  await world.runFor(10);
  assert.equal(inside.received.at(-1)?.[0], 20);
  await world.runFor(31_000);
  await send(s, 21, udp("203.0.113.1", publicPort));
  await world.runFor(10);
  assert.equal(inside.received.at(-1)?.[0], 20, "expired mapping drops inbound");
  await send(inside.socket, 1, udp(SERVER, 3478));
  await world.runFor(10);
  const newPort = Number(server.received.at(-1)![1].split(":")[1]);
  assert.notEqual(newPort, publicPort, "a new mapping has a new port");
  const nat = world.network.host("in").nat!;
  assert.equal(nat.mappings, 1);
  nat.expireAll();
  assert.equal(nat.mappings, 0);
});

Deno.test("freeze holds timers and socket reads; the queue is bounded; thaw runs them in order", async () => {
  const world = new SimWorld({ seed: 3 });
  const log: string[] = [];
  const b = world.addNode({ name: "b", ip: "10.0.0.2" }, ({ runtime }) => {
    const socket = runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 5000 });
    (async () => {
      for (;;) {
        const [bytes] = await socket.receive();
        log.push(`rx${bytes[0]}@${runtime.now()}`);
      }
    })().catch(() => {});
    runtime.setTimer(() => log.push(`t1@${runtime.now()}`), 1000);
    runtime.setTimer(() => log.push(`t2@${runtime.now()}`), 2000);
    return socket;
  });
  const a = world.addNode(
    { name: "a", ip: "10.0.0.1" },
    ({ runtime }) => runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 5000 }),
  );
  b.start();
  const sa = a.start();
  world.at(500, () => b.freeze());
  world.at(40_500, () => b.thaw());
  world.at(600, () => {
    for (let i = 0; i < 300; i++) sa.send(new Uint8Array([i % 256]), udp("10.0.0.2", 5000));
  });
  await world.runTo(40_000);
  assert.deepEqual(log, []);
  await world.runTo(41_000);
  assert.deepEqual(log.slice(0, 2), ["t1@40500", "t2@40500"]);
  assert.equal(log.length, 2 + 256, "256 datagrams queued, the rest dropped");
  assert.equal(log[2], "rx0@40500");
});

Deno.test("kill closes sockets and timers; a restart binds the same port again", async () => {
  const world = new SimWorld({ seed: 3 });
  let fired = 0;
  const node = world.addNode({ name: "b", ip: "10.0.0.2" }, ({ runtime }) => {
    runtime.setTimer(() => fired++, 1000);
    return runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 5000 });
  });
  node.start();
  node.kill();
  await world.runFor(2000);
  assert.equal(fired, 0);
  node.start();
  await world.runFor(2000);
  assert.equal(fired, 1);
  assert.equal(node.app?.addr.port, 5000);
});

async function readAll(conn: Deno.TcpConn | import("../../shared/runtime/runtime.ts").StreamConn) {
  const buffer = new Uint8Array(100);
  const n = await conn.read(buffer);
  return n === null ? null : new TextDecoder().decode(buffer.subarray(0, n));
}

Deno.test("TCP through a NAT: ordered, stalls during a partition, resumes on heal", async () => {
  const world = new SimWorld({ seed: 5, tcpResetAfterMs: 30_000 });
  const server = world.addNode(
    { name: "s", ip: SERVER },
    ({ runtime }) => runtime.net.listen({ hostname: "0.0.0.0", port: 3478 }),
  );
  const nat = new NatBox({ publicIp: "203.0.113.9" });
  const client = world.addNode({ name: "c", ip: "192.168.0.2", nat }, ({ runtime }) => runtime);
  const listener = server.start();
  const runtime = client.start();
  world.network.host("c").uplink = { ...world.network.host("c").uplink, delayMs: 25 };
  const accepting = listener.accept();
  const connecting = runtime.net.connect({ hostname: SERVER, port: 3478 });
  await world.runFor(100);
  const conn = await connecting;
  const accepted = await accepting;
  assert.equal(accepted.remoteAddr.hostname, "203.0.113.9");
  const heal = world.network.block(["c"], ["s"]);
  await conn.write(new TextEncoder().encode("held"));
  let arrived: number | undefined;
  const reading = readAll(accepted).then((text) => {
    arrived = world.clock.now();
    return text;
  });
  await world.runFor(20_000);
  assert.equal(arrived, undefined, "nothing crosses a partition");
  heal();
  // Retransmissions back off (0.2, 0.4, … 12.8 s after the first): the next one after the heal
  // at 25.4 s gets through.
  await world.runFor(10_000);
  assert.equal(await reading, "held");
  assert.ok(arrived! > 25_000 && arrived! < 25_600, `arrived at ${arrived}`);
});

Deno.test("TCP: a partition longer than the reset time resets both ends", async () => {
  const world = new SimWorld({ seed: 5, tcpResetAfterMs: 10_000 });
  const server = world.addNode(
    { name: "s", ip: SERVER },
    ({ runtime }) => runtime.net.listen({ hostname: "0.0.0.0", port: 3478 }),
  );
  const client = world.addNode({ name: "c", ip: "10.1.0.2" }, ({ runtime }) => runtime);
  const listener = server.start();
  const runtime = client.start();
  const accepting = listener.accept();
  const connecting = runtime.net.connect({ hostname: SERVER, port: 3478 });
  await world.runFor(10);
  const conn = await connecting;
  const accepted = await accepting;
  world.network.block(["c"], ["s"]);
  await conn.write(new Uint8Array([1]));
  const serverRead = assert.rejects(accepted.read(new Uint8Array(10)), Deno.errors.ConnectionReset);
  const clientRead = assert.rejects(conn.read(new Uint8Array(10)), Deno.errors.ConnectionReset);
  await world.runFor(20_000);
  await serverRead;
  await clientRead;
  await assert.rejects(conn.write(new Uint8Array([1])), Deno.errors.ConnectionReset);
});

Deno.test("TCP: killing the server process ends the client's stream; connect is refused", async () => {
  const world = new SimWorld({ seed: 5 });
  const server = world.addNode(
    { name: "s", ip: SERVER },
    ({ runtime }) => runtime.net.listen({ hostname: "0.0.0.0", port: 3478 }),
  );
  const client = world.addNode({ name: "c", ip: "10.1.0.2" }, ({ runtime }) => runtime);
  const listener = server.start();
  const runtime = client.start();
  const accepting = listener.accept();
  const connecting = runtime.net.connect({ hostname: SERVER, port: 3478 });
  await world.runFor(10);
  const conn = await connecting;
  await accepting;
  server.kill();
  const reading = conn.read(new Uint8Array(10));
  await world.runFor(10);
  assert.equal(await reading, null);
  const refused = assert.rejects(
    runtime.net.connect({ hostname: SERVER, port: 3478 }),
    Deno.errors.ConnectionRefused,
  );
  await world.runFor(10);
  await refused;
});

Deno.test("TCP: SYNs back off through a partition; connect times out after the reset time", async () => {
  const world = new SimWorld({ seed: 5, tcpResetAfterMs: 20_000 });
  const server = world.addNode(
    { name: "s", ip: SERVER },
    ({ runtime }) => runtime.net.listen({ hostname: "0.0.0.0", port: 3478 }),
  );
  const client = world.addNode({ name: "c", ip: "10.1.0.2" }, ({ runtime }) => runtime);
  server.start();
  const runtime = client.start();
  const heal = world.network.block(["c"], ["s"]);
  let connectedAt: number | undefined;
  const connecting = runtime.net.connect({ hostname: SERVER, port: 3478 }).then((conn) => {
    connectedAt = world.clock.now();
    return conn;
  });
  await world.runFor(5_000);
  heal();
  await world.runFor(5_000);
  await connecting;
  assert.equal(connectedAt, 7_000, "the SYN sent at 0, 1, 3, 7 s gets through at 7 s");

  world.network.block(["c"], ["s"]);
  const timedOut = assert.rejects(
    runtime.net.connect({ hostname: SERVER, port: 3478 }),
    Deno.errors.TimedOut,
  );
  await world.runFor(21_000);
  await timedOut;
});

Deno.test("TCP: loss delays segments but keeps them whole and in order", async () => {
  const world = new SimWorld({ seed: 8 });
  const server = world.addNode(
    { name: "s", ip: SERVER },
    ({ runtime }) => runtime.net.listen({ hostname: "0.0.0.0", port: 3478 }),
  );
  const client = world.addNode({ name: "c", ip: "10.1.0.2" }, ({ runtime }) => runtime);
  const listener = server.start();
  const runtime = client.start();
  const accepting = listener.accept();
  const connecting = runtime.net.connect({ hostname: SERVER, port: 3478 });
  await world.runFor(10);
  const conn = await connecting;
  const accepted = await accepting;
  world.network.host("c").uplink = { ...world.network.host("c").uplink, loss: 0.3, delayMs: 10 };
  for (let i = 0; i < 100; i++) await conn.write(new Uint8Array([i]));
  await conn.closeWrite();
  const got: number[] = [];
  const reading = (async () => {
    const buffer = new Uint8Array(10);
    for (;;) {
      const n = await accepted.read(buffer);
      if (n === null) return;
      got.push(...buffer.subarray(0, n));
    }
  })();
  await world.runFor(120_000);
  await reading;
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
});
