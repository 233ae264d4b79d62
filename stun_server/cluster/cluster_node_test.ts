import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { MemoryBusHub, type MemoryBusTransport } from "../../testing/memory_bus.ts";
import type { BusTransport, ClusterDelivery, ClusterHandler } from "./bus.ts";
import { CHANGES_FLUSH_MS, ClusterNode } from "./cluster_node.ts";
import {
  BUS_KIND_CHANGES,
  decodeBusMessage,
  MAX_CHANGES_BATCH,
  MAX_PRESENCE_BATCH,
} from "./messages.ts";

const X = "ab".repeat(20);
const Y = "cd".repeat(20);

class Recorder implements ClusterHandler {
  deliveries: ClusterDelivery[] = [];
  relays: [string, string, Uint8Array][] = [];
  replaced: string[] = [];
  lost: string[] = [];
  availability: boolean[] = [];
  onDelivery(message: ClusterDelivery): void {
    this.deliveries.push(message);
  }
  onRelay(from: string, to: string, payload: Uint8Array): void {
    this.relays.push([from, to, payload]);
  }
  onReplaced(id: string): void {
    this.replaced.push(id);
  }
  onNodeLost(node: string): void {
    this.lost.push(node);
  }
  onAvailability(available: boolean): void {
    this.availability.push(available);
  }
}

function cluster(names: string[]) {
  const runtime = new VirtualRuntime({ seed: 3 });
  const hub = new MemoryBusHub(runtime);
  const nodes = new Map<
    string,
    { node: ClusterNode; events: Recorder; transport: MemoryBusTransport }
  >();
  const start = (name: string) => {
    const transport = hub.connect();
    const node = new ClusterNode({ nodeName: name, transport, runtime });
    const events = new Recorder();
    node.setHandler(events);
    nodes.set(name, { node, events, transport });
    return { node, events, transport };
  };
  for (const name of names) start(name);
  const get = (name: string) => nodes.get(name)!;
  const closeAll = async () => {
    for (const { node } of nodes.values()) await node.close();
  };
  return { runtime, hub, get, start, closeAll };
}

Deno.test("cluster node: presence of an ID reaches every node, and its withdrawal too", async () => {
  const c = cluster(["a", "b", "c"]);
  try {
    await c.runtime.advance(1500);
    assert.ok(c.get("a").node.available);
    const epoch = c.get("a").node.announce(X);
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(X), "a");
    assert.equal(c.get("c").node.locate(X), "a");
    assert.equal(c.get("a").node.locate(X), undefined, "local IDs are not remote");
    c.get("a").node.withdraw(X, epoch + 1); // a stale epoch does nothing
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(X), "a");
    c.get("a").node.withdraw(X, epoch);
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(X), undefined);
    assert.equal(c.get("c").node.locate(X), undefined);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: the newer session wins cluster-wide, also when two register at once", async () => {
  const c = cluster(["a", "b"]);
  try {
    await c.runtime.advance(1500);
    c.get("a").node.announce(X);
    await c.runtime.advance(100);
    c.get("b").node.announce(X);
    await c.runtime.advance(10);
    assert.deepEqual(c.get("a").events.replaced, [X]);
    assert.deepEqual(c.get("b").events.replaced, []);
    assert.equal(c.get("a").node.locate(X), "b");
    assert.equal(c.get("b").node.locate(X), undefined);
    // Simultaneous: same wall-clock millisecond on both nodes; exactly one survives.
    c.get("a").node.announce(Y);
    c.get("b").node.announce(Y);
    await c.runtime.advance(10);
    const replacedA = c.get("a").events.replaced.includes(Y);
    const replacedB = c.get("b").events.replaced.includes(Y);
    assert.notEqual(replacedA, replacedB, "exactly one of the two sessions is replaced");
    const winner = replacedA ? "b" : "a";
    assert.equal(c.get(winner === "a" ? "b" : "a").node.locate(Y), winner);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: a dead node's IDs expire with its lease", async () => {
  const c = cluster(["a", "b"]);
  try {
    await c.runtime.advance(1500);
    c.get("a").node.announce(X);
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(X), "a");
    await c.get("a").node.close(); // a crash: no withdrawal
    const diedAt = c.runtime.now();
    assert.ok(await c.runtime.runUntil(() => c.get("b").node.locate(X) === undefined, 10_000));
    const after = c.runtime.now() - diedAt;
    assert.ok(after >= 2000 && after <= 4100, `expired after ${after} ms (lease 3 s)`);
    assert.deepEqual(c.get("b").events.lost, ["a"]);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: a dead node's directory slot is reused by the next node, with none of its IDs", async () => {
  const c = cluster(["a", "b", "c"]);
  try {
    await c.runtime.advance(1500);
    const Z = "ef".repeat(20);
    c.get("a").node.announce(X);
    c.get("a").node.announce(Y);
    c.get("c").node.announce(Z);
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(Y), "a");
    await c.get("a").node.close();
    assert.ok(await c.runtime.runUntil(() => c.get("b").node.locate(X) === undefined, 10_000));
    assert.equal(c.get("b").node.locate(Y), undefined, "every ID of the dead node went");
    assert.equal(c.get("b").node.locate(Z), "c", "the other node's IDs stay");
    c.start("d"); // takes the freed slot in b's directory
    await c.runtime.advance(1500);
    c.get("d").node.announce(Y);
    await c.runtime.advance(10);
    assert.equal(c.get("b").node.locate(Y), "d");
    assert.equal(c.get("b").node.locate(X), undefined);
    assert.equal(c.get("b").node.locate(Z), "c");
    assert.equal(c.get("b").node.stats.remoteIds, 2);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: a node that joins later learns everyone's presence", async () => {
  const c = cluster(["a", "b"]);
  try {
    await c.runtime.advance(1500);
    c.get("a").node.announce(X);
    c.get("b").node.announce(Y);
    await c.runtime.advance(1000);
    const late = c.start("c");
    await c.runtime.advance(50);
    assert.equal(late.node.locate(X), "a");
    assert.equal(late.node.locate(Y), "b");
    assert.deepEqual(late.node.peers.sort(), ["a", "b"]);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: introductions and relay frames go to the named node only", async () => {
  const c = cluster(["a", "b", "c"]);
  try {
    await c.runtime.advance(1500);
    assert.ok(
      c.get("a").node.send("b", {
        type: "peer-left",
        node: "a",
        from: X,
        to: Y,
        reason: "disconnected",
      }),
    );
    const payload = new Uint8Array([1, 2, 3, 4]);
    assert.ok(c.get("a").node.relay("b", Uint8Array.fromHex(X), Uint8Array.fromHex(Y), payload));
    await c.runtime.advance(10);
    assert.deepEqual(c.get("b").events.deliveries, [{
      type: "peer-left",
      node: "a",
      from: X,
      to: Y,
      reason: "disconnected",
    }]);
    assert.deepEqual(c.get("b").events.relays, [[X, Y, payload]]);
    assert.equal(c.get("c").events.deliveries.length, 0);
    assert.equal(c.get("c").events.relays.length, 0);
    assert.equal(c.get("a").events.relays.length, 0);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: without the broker nothing cross-node is sent; it heals when the broker returns", async () => {
  const c = cluster(["a", "b"]);
  try {
    await c.runtime.advance(1500);
    c.get("a").node.announce(X);
    await c.runtime.advance(10);
    assert.deepEqual(c.get("a").events.availability, [true]);
    c.hub.setUp(false);
    assert.equal(c.get("a").node.available, false);
    assert.deepEqual(c.get("a").events.availability, [true, false]);
    assert.equal(
      c.get("a").node.send("b", {
        type: "peer-left",
        node: "a",
        from: X,
        to: Y,
        reason: "timeout",
      }),
      false,
    );
    assert.equal(
      c.get("a").node.relay("b", new Uint8Array(20), new Uint8Array(20), new Uint8Array(1)),
      false,
    );
    // The client of X fails over to b during the outage: b registers it (newer epoch).
    await c.runtime.advance(5000);
    assert.deepEqual(c.get("b").events.lost, ["a"]);
    assert.equal(c.get("b").node.locate(X), undefined);
    c.get("b").node.announce(X);
    c.get("a").node.announce(Y); // and Y registers on a meanwhile
    await c.runtime.advance(1000);
    c.hub.setUp(true);
    assert.ok(await c.runtime.runUntil(() => c.get("a").node.available, 3000));
    await c.runtime.advance(100);
    assert.deepEqual(c.get("a").events.replaced, [X], "the older session of X (on a) is replaced");
    assert.equal(c.get("a").node.locate(X), "b");
    assert.equal(c.get("b").node.locate(Y), "a");
    assert.ok(await c.runtime.runUntil(() => c.get("a").events.availability.at(-1) === true, 3000));
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: a node that was silent too long (paused) is re-learned from its next lease", async () => {
  const c = cluster(["a", "b"]);
  try {
    await c.runtime.advance(1500);
    c.get("a").node.announce(X);
    await c.runtime.advance(10);
    // Everything a publishes is lost for 5 s, and a does not know it (a frozen process).
    c.hub.mute(c.get("a").transport, true);
    await c.runtime.advance(5000);
    assert.equal(c.get("b").node.locate(X), undefined);
    assert.deepEqual(c.get("b").events.lost, ["a"]);
    c.hub.mute(c.get("a").transport, false);
    assert.ok(await c.runtime.runUntil(() => c.get("b").node.locate(X) === "a", 3000));
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: a late joiner learns presence larger than one batch", async () => {
  const c = cluster(["a"]);
  try {
    await c.runtime.advance(1500);
    const ids: string[] = [];
    for (let i = 0; i < 2 * MAX_PRESENCE_BATCH + 7; i++) {
      const id = i.toString(16).padStart(40, "0");
      ids.push(id);
      c.get("a").node.announce(id);
    }
    await c.runtime.advance(100);
    const late = c.start("b");
    await c.runtime.advance(100);
    assert.equal(late.node.stats.remoteIds, ids.length);
    assert.ok(ids.every((id) => late.node.locate(id) === "a"));
    assert.equal(late.node.stats.invalid, 0);
  } finally {
    await c.closeAll();
  }
});

Deno.test("cluster node: presence changes of a few ms go out as one bus message, in order", async () => {
  const c = cluster(["a", "b"]);
  const seen: Uint8Array[] = [];
  const observer = c.hub.connect();
  observer.subscribe("p2p.presence", (payload) => {
    if (payload[0] === BUS_KIND_CHANGES) seen.push(payload);
  });
  try {
    await c.runtime.advance(1500);
    const a = c.get("a").node;
    const epochX = a.announce(X);
    a.announce(Y);
    a.withdraw(X, epochX); // after its announcement, in the same batch
    assert.equal(seen.length, 0, "nothing is sent at once");
    await c.runtime.advance(CHANGES_FLUSH_MS + 3);
    assert.equal(seen.length, 1, "three changes, one bus message");
    const decoded = decodeBusMessage(seen[0]);
    assert.ok(decoded.ok && decoded.message.type === "changes");
    assert.deepEqual(decoded.message.changes.map((ch) => ch.op), [
      "announce",
      "announce",
      "withdraw",
    ]);
    assert.equal(c.get("b").node.locate(Y), "a");
    assert.equal(
      c.get("b").node.locate(X),
      undefined,
      "the withdrawal came after the announcement",
    );
    // A full batch goes at once; the rest after the flush delay.
    for (let i = 0; i <= MAX_CHANGES_BATCH; i++) a.announce(i.toString(16).padStart(40, "0"));
    await c.runtime.advance(CHANGES_FLUSH_MS - 1); // the bus latency (0.5 ms), not the delay
    assert.equal(seen.length, 2);
    await c.runtime.advance(CHANGES_FLUSH_MS + 3);
    assert.equal(seen.length, 3);
    assert.equal(c.get("b").node.stats.remoteIds, MAX_CHANGES_BATCH + 2);
  } finally {
    await observer.close();
    await c.closeAll();
  }
});

Deno.test("cluster node: a control message never overtakes the announcements before it", async () => {
  const runtime = new VirtualRuntime({ seed: 5 });
  const hub = new MemoryBusHub(runtime);
  const inner = hub.connect();
  const subjects: string[] = [];
  const spy: BusTransport = {
    get connected() {
      return inner.connected;
    },
    publish(subject, payload) {
      subjects.push(subject);
      return inner.publish(subject, payload);
    },
    subscribe: (subject, onMessage) => inner.subscribe(subject, onMessage),
    onStatus: (listener) => inner.onStatus(listener),
    close: () => inner.close(),
  };
  const a = new ClusterNode({ nodeName: "a", transport: spy, runtime });
  const b = new ClusterNode({ nodeName: "b", transport: hub.connect(), runtime });
  const events = new Recorder();
  b.setHandler(events);
  try {
    await runtime.advance(1500);
    subjects.length = 0;
    a.announce(X);
    a.send("b", { type: "peer-left", node: "a", from: X, to: Y, reason: "disconnected" });
    assert.deepEqual(subjects, ["p2p.presence", "p2p.node.b"]);
    await runtime.advance(10);
    assert.equal(b.locate(X), "a");
    assert.equal(events.deliveries.length, 1);
  } finally {
    await a.close();
    await b.close();
  }
});
