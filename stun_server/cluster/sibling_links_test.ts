import assert from "node:assert/strict";
import { type StreamConn, systemRuntime } from "../../shared/runtime/mod.ts";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { MemoryBusHub } from "../../testing/memory_bus.ts";
import type { ClusterDelivery, ClusterHandler } from "./bus.ts";
import { ClusterNode } from "./cluster_node.ts";
import { BUS_KIND_RELAY } from "./messages.ts";
import { LINK_KIND_HELLO, linkGroup, SiblingLinks } from "./sibling_links.ts";

const X = "ab".repeat(20);
const Y = "cd".repeat(20);
const SECRET = "5e".repeat(16);

class Relays implements ClusterHandler {
  relays: [string, string, string][] = [];
  onDelivery(_message: ClusterDelivery): void {}
  onRelay(from: string, to: string, payload: Uint8Array): void {
    this.relays.push([from, to, new TextDecoder().decode(payload)]);
  }
  onReplaced(): void {}
  onNodeLost(): void {}
  onAvailability(): void {}
}

/** Two worker nodes on one memory bus, each with sibling links made from its own secret. */
function workers(secrets: [string, string]) {
  const runtime = new VirtualRuntime({ seed: 5 });
  const hub = new MemoryBusHub(runtime);
  const spy = hub.connect();
  const onBus: string[] = [];
  spy.subscribe("p2p.relay.w-1", () => onBus.push("w-1"));
  spy.subscribe("p2p.relay.w-0", () => onBus.push("w-0"));
  const make = (name: string, secret: string) => {
    const links = new SiblingLinks({ nodeName: name, secret, runtime });
    const node = new ClusterNode({
      nodeName: name,
      transport: hub.connect(),
      runtime,
      siblings: links,
    });
    const events = new Relays();
    node.setHandler(events);
    return { node, links, events };
  };
  const a = make("w-0", secrets[0]);
  const b = make("w-1", secrets[1]);
  return {
    runtime,
    a,
    b,
    onBus,
    close: async () => {
      await a.node.close();
      await b.node.close();
    },
  };
}

const idBytes = (id: string) => Uint8Array.fromHex(id);
const text = (s: string) => new TextEncoder().encode(s);

Deno.test("sibling links: relay frames between two workers go over their link, not the bus", async () => {
  const w = workers([SECRET, SECRET]);
  try {
    await w.runtime.advance(2500); // leases, link announcements, dialling
    assert.deepEqual(w.a.links.linked, ["w-1"]);
    assert.deepEqual(w.b.links.linked, ["w-0"]);
    w.a.node.announce(X);
    w.b.node.announce(Y);
    await w.runtime.advance(100);
    for (let i = 0; i < 3; i++) {
      assert.equal(w.a.node.relay("w-1", idBytes(X), idBytes(Y), text(`a${i}`)), true);
    }
    assert.equal(w.b.node.relay("w-0", idBytes(Y), idBytes(X), text("b0")), true);
    await w.runtime.advance(100);
    assert.deepEqual(w.b.events.relays, [[X, Y, "a0"], [X, Y, "a1"], [X, Y, "a2"]]);
    assert.deepEqual(w.a.events.relays, [[Y, X, "b0"]]);
    assert.deepEqual(w.onBus, [], "no relay frame crossed the bus");
    assert.equal(w.a.links.stats.sent, 3);
    assert.equal(w.b.links.stats.received, 3);
  } finally {
    await w.close();
  }
});

Deno.test("sibling links: workers of different supervisors do not link; frames go over the bus", async () => {
  const w = workers([SECRET, "7f".repeat(16)]);
  try {
    await w.runtime.advance(2500);
    assert.deepEqual(w.a.links.linked, []);
    assert.notEqual(linkGroup(SECRET), linkGroup("7f".repeat(16)));
    assert.equal(w.a.node.relay("w-1", idBytes(X), idBytes(Y), text("over nats")), true);
    await w.runtime.advance(100);
    assert.deepEqual(w.b.events.relays, [[X, Y, "over nats"]]);
    assert.deepEqual(w.onBus, ["w-1"]);
  } finally {
    await w.close();
  }
});

Deno.test("sibling links: a link lost falls back to the bus, and is made again", async () => {
  const w = workers([SECRET, SECRET]);
  try {
    await w.runtime.advance(2500);
    assert.deepEqual(w.a.links.linked, ["w-1"]);
    w.a.links.forget("w-1"); // as when the sibling's lease expires or the connection breaks
    assert.equal(w.a.node.relay("w-1", idBytes(X), idBytes(Y), text("bus")), true);
    await w.runtime.advance(100);
    assert.deepEqual(w.onBus, ["w-1"]);
    await w.runtime.advance(1500); // the next link announcement redials
    assert.deepEqual(w.a.links.linked, ["w-1"]);
    assert.equal(w.a.node.relay("w-1", idBytes(X), idBytes(Y), text("link")), true);
    await w.runtime.advance(100);
    assert.deepEqual(w.b.events.relays.map((r) => r[2]), ["bus", "link"]);
    assert.deepEqual(w.onBus, ["w-1"]);
  } finally {
    await w.close();
  }
});

Deno.test("sibling links: a connection without the secret cannot inject relay frames", async () => {
  const runtime = new VirtualRuntime({ seed: 9 });
  const received: Uint8Array[] = [];
  const links = new SiblingLinks({
    nodeName: "w-0",
    secret: SECRET,
    runtime,
    onPayload: (p) => received.push(p.slice()),
  });
  try {
    const endpoint = links.listen();
    assert.ok("port" in endpoint, "a simulated network has no abstract sockets: loopback TCP");
    const port = endpoint.port;
    const frame = (kind: number, body: Uint8Array) => {
      const out = new Uint8Array(5 + body.length);
      new DataView(out.buffer).setUint32(0, 1 + body.length);
      out[4] = kind;
      out.set(body, 5);
      return out;
    };
    const relay = frame(BUS_KIND_RELAY, new Uint8Array(41).fill(1));
    const connect = async () => {
      const pending = runtime.net.connect({ hostname: "127.0.0.1", port });
      await runtime.advance(10);
      return await pending;
    };
    const write = async (conn: StreamConn, bytes: Uint8Array) => {
      const pending = conn.write(bytes);
      await runtime.advance(10);
      await pending;
    };
    // A wrong secret: the hello is refused and nothing after it is delivered.
    const intruder = await connect();
    await write(intruder, frame(LINK_KIND_HELLO, text("00".repeat(16) + "x")));
    await write(intruder, relay);
    await runtime.advance(100);
    assert.equal(received.length, 0);
    // No hello at all: closed after 5 s.
    const silent = await connect();
    const read = silent.read(new Uint8Array(8));
    await runtime.advance(6000);
    assert.equal(await read, null, "closed for not saying hello");
    // The right secret: frames are delivered.
    const sibling = await connect();
    await write(sibling, frame(LINK_KIND_HELLO, text(SECRET + "w-1")));
    await write(sibling, relay);
    await runtime.advance(100);
    assert.equal(received.length, 1);
    assert.equal(received[0][0], BUS_KIND_RELAY);
    for (const conn of [intruder, silent, sibling]) conn.close();
  } finally {
    await links.close();
  }
});

Deno.test("sibling links: on Linux two workers link over an abstract Unix socket", {
  ignore: Deno.build.os !== "linux",
}, async () => {
  const received: Uint8Array[] = [];
  let arrived: () => void = () => {};
  const a = new SiblingLinks({ nodeName: "w-0", secret: SECRET, runtime: systemRuntime });
  const b = new SiblingLinks({
    nodeName: "w-1",
    secret: SECRET,
    runtime: systemRuntime,
    onPayload: (payload) => {
      received.push(payload.slice());
      arrived();
    },
  });
  try {
    a.listen();
    const endpoint = b.listen();
    assert.ok("socket" in endpoint, `listening on ${JSON.stringify(endpoint)}`);
    a.offer("w-1", endpoint);
    const deadline = Date.now() + 5000;
    while (a.linked.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(a.linked, ["w-1"]);
    const delivered = new Promise<void>((resolve) => arrived = resolve);
    const from = new Uint8Array(20).fill(1);
    const to = new Uint8Array(20).fill(2);
    assert.ok(a.sendRelay("w-1", from, to, new Uint8Array([7, 8, 9])));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      delivered,
      new Promise((_, reject) =>
        timer = setTimeout(() => reject(new Error("not delivered")), 5000)
      ),
    ]);
    clearTimeout(timer);
    assert.deepEqual(received, [new Uint8Array([BUS_KIND_RELAY, ...from, ...to, 7, 8, 9])]);
    // A stranger on the same socket without the secret gets nothing through.
    const intruder = await systemRuntime.net.connectLocal!(`p2p-worker-link-${endpoint.socket}`);
    const hello = new Uint8Array([0, 0, 0, 34, LINK_KIND_HELLO, ...text("00".repeat(16) + "x")]);
    await intruder.write(hello);
    assert.equal(await intruder.read(new Uint8Array(8)), null, "closed after a wrong hello");
    intruder.close();
    assert.equal(received.length, 1);
  } finally {
    await a.close();
    await b.close();
  }
});
