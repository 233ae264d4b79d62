import assert from "node:assert/strict";
import type { Candidate, ErrorCode, ServerMessage } from "../../shared/signaling/mod.ts";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { MemoryBusHub } from "../../testing/memory_bus.ts";
import { LocalBus } from "./bus.ts";
import { ClusterNode } from "./cluster_node.ts";
import { type ClusterClient, ClusterRouter } from "./cluster_router.ts";

const S = "51".repeat(20);
const T = "7e".repeat(20);

class FakeClient implements ClusterClient {
  clusterEpoch = 0;
  inbox: ServerMessage[] = [];
  relayed: [string, Uint8Array][] = [];
  queueFull = false;
  replaced = false;
  constructor(readonly id: string, readonly publicKey: string, readonly rttMs: number) {}
  candidates(): Candidate[] {
    return [{ host: "198.51.100.1", port: 4000 + Math.round(this.rttMs), kind: "public" }];
  }
  of<T extends ServerMessage["type"]>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.inbox.filter((m) => m.type === type) as Extract<ServerMessage, { type: T }>[];
  }
}

function serverNode(runtime: VirtualRuntime, hub: MemoryBusHub, name: string, skewMs = 0) {
  const clients = new Map<string, FakeClient>();
  const bus = new ClusterNode({ nodeName: name, transport: hub.connect(), runtime });
  let maxPeers = 1024;
  /** Consent answers by callee: set, the callee is asked (and answers after `answerMs`). */
  const consent = new Map<string, { accept: boolean; answerMs: number; asked: string[] }>();
  const router: ClusterRouter<FakeClient> = new ClusterRouter<FakeClient>(bus, {
    get: (id) => clients.get(id),
    canBroker: (client) => router.remotePeerCount(client.id) < maxPeers,
    send: (client, message) => client.inbox.push(message),
    deliverRelay: (client, from, payload): ErrorCode | null => {
      if (client.queueFull) return "relay-queue-full";
      client.relayed.push([from.toHex(), payload]);
      return null;
    },
    replace: (client) => {
      client.replaced = true;
      clients.delete(client.id);
      router.unregistered(client, "replaced");
    },
    now: () => runtime.wallClock() + skewMs,
    askConsent: (callee, callerId, node, answer) => {
      const policy = consent.get(callee.id);
      if (policy === undefined) return answer(true);
      policy.asked.push(`${callerId}@${node}`);
      runtime.setTimer(() => answer(policy.accept), policy.answerMs);
    },
  }, runtime);
  const register = (client: FakeClient) => {
    clients.set(client.id, client);
    router.registered(client);
    return client;
  };
  const leave = (client: FakeClient) => {
    clients.delete(client.id);
    router.unregistered(client, "disconnected");
  };
  return {
    bus,
    router,
    clients,
    register,
    leave,
    consent,
    setMaxPeers: (n: number) => maxPeers = n,
  };
}

async function twoNodes() {
  const runtime = new VirtualRuntime({ seed: 5 });
  const hub = new MemoryBusHub(runtime, 2);
  const a = serverNode(runtime, hub, "a");
  const b = serverNode(runtime, hub, "b", 40_000); // b's clock is 40 s ahead
  await runtime.advance(1500);
  // Fractional RTTs, as measured on the runtime's monotonic clock.
  const s = a.register(new FakeClient(S, "S".repeat(44), 30.4));
  const t = b.register(new FakeClient(T, "T".repeat(44), 80.6));
  await runtime.advance(10);
  return { runtime, hub, a, b, s, t };
}

Deno.test("cluster router: connect across nodes introduces both sides to punch at one instant", async () => {
  const { runtime, a, b, s, t } = await twoNodes();
  try {
    assert.equal(a.router.connect(s, T, "req-1"), true);
    await runtime.advance(20);
    const [toS] = s.of("introduce");
    const [toT] = t.of("introduce");
    assert.ok(toS && toT, JSON.stringify([s.inbox, t.inbox]));
    assert.equal(toS.role, "initiator");
    assert.equal(toS.requestId, "req-1");
    assert.equal(toS.peer, T);
    assert.equal(toS.publicKey, t.publicKey);
    assert.deepEqual(toS.candidates, t.candidates());
    assert.equal(toT.role, "responder");
    assert.equal(toT.peer, S);
    assert.equal(toT.publicKey, s.publicKey);
    // Both punch at one real instant: T's introduce left b one bus hop (2 ms) before S's left a
    // (introduce, then introduced), so S's delay is shorter by exactly that hop.
    const delayS = toS.punchAt - toS.serverTime;
    const delayT = toT.punchAt - toT.serverTime;
    assert.ok(Math.abs(delayS + 2 - delayT) <= 1, `${delayS} + 2 vs ${delayT}`);
    const instantT = delayT;
    assert.ok(instantT >= 2 * 80.6 + 100, "the lead covers the larger RTT");
    assert.ok(Number.isInteger(toS.punchInMs) && Number.isInteger(toT.punchInMs));
    assert.equal(toS.punchInMs, Math.round(delayS - 30.4 / 2));
    assert.equal(a.router.stats.introductions, 1);
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});

Deno.test("cluster router: relay frames cross nodes both ways; refusals come back as errors", async () => {
  const { runtime, a, b, s, t } = await twoNodes();
  try {
    // Not brokered yet: no relay node.
    assert.equal(a.router.relayNode(s, T), undefined);
    assert.ok(a.router.isOnline(T));
    a.router.connect(s, T);
    await runtime.advance(20);
    const node = a.router.relayNode(s, T);
    assert.equal(node, "b");
    const payload = new Uint8Array([9, 8, 7]);
    assert.equal(
      a.router.forwardRelay(node!, Uint8Array.fromHex(S), Uint8Array.fromHex(T), payload),
      null,
    );
    assert.equal(b.router.relayNode(t, S), "a");
    assert.equal(
      b.router.forwardRelay("a", Uint8Array.fromHex(T), Uint8Array.fromHex(S), payload),
      null,
    );
    await runtime.advance(10);
    assert.deepEqual(t.relayed, [[S, payload]]);
    assert.deepEqual(s.relayed, [[T, payload]]);
    t.queueFull = true;
    a.router.forwardRelay("b", Uint8Array.fromHex(S), Uint8Array.fromHex(T), new Uint8Array(500));
    await runtime.advance(10);
    const errors = s.of("error");
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, "relay-queue-full");
    assert.equal(errors[0].peer, T);
    assert.equal(errors[0].bytes, 500);
    // A forged frame from a client T was never introduced to is refused on T's node.
    const stranger = "99".repeat(20);
    b.router.forwardRelay("a", Uint8Array.fromHex(stranger), Uint8Array.fromHex(S), payload);
    await runtime.advance(10);
    assert.equal(s.relayed.length, 1);
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});

Deno.test("cluster router: peer-left crosses nodes; unknown and full peers are refused", async () => {
  const { runtime, a, b, s, t } = await twoNodes();
  try {
    // Not online anywhere: asked of whichever node holds it; nobody answers: unknown-peer.
    const nobody = "00".repeat(20);
    assert.equal(a.router.connect(s, nobody, "u1"), true);
    // Not before the earliest refusal time (0.5 s), at the latest by the consent timeout (2 s):
    // the same window as a refusal by an online callee.
    await runtime.advance(490);
    assert.deepEqual(s.of("error"), []);
    await runtime.advance(1520);
    assert.deepEqual(s.of("error").map((e) => [e.code, e.peer, e.requestId]), [
      ["unknown-peer", nobody, "u1"],
    ]);
    s.inbox.length = 0;
    b.setMaxPeers(0);
    a.router.connect(s, T, "r");
    await runtime.advance(20);
    assert.deepEqual(s.of("error").map((e) => [e.code, e.requestId]), [["rate-limited", "r"]]);
    b.setMaxPeers(1024);
    a.router.connect(s, T);
    await runtime.advance(20);
    b.leave(t);
    await runtime.advance(20);
    assert.deepEqual(s.of("peer-left"), [{ type: "peer-left", peer: T, reason: "disconnected" }]);
    assert.equal(a.router.relayNode(s, T), undefined);
    assert.equal(a.router.isOnline(T), false);
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});

Deno.test("cluster router: a registration on another node replaces the session, and peers hear it", async () => {
  const { runtime, hub, a, b, s, t } = await twoNodes();
  const c = serverNode(runtime, hub, "c");
  try {
    a.router.connect(s, T);
    await runtime.advance(1500);
    // S fails over to node c with the same ID.
    const s2 = c.register(new FakeClient(S, "S".repeat(44), 30));
    await runtime.advance(20);
    assert.ok(s.replaced, "the older session on a is closed as replaced");
    assert.deepEqual(t.of("peer-left"), [{ type: "peer-left", peer: S, reason: "replaced" }]);
    assert.equal(b.bus.locate(S), "c");
    // T connects again and reaches the new session.
    b.router.connect(t, S);
    await runtime.advance(20);
    assert.equal(s2.of("introduce").length, 1);
  } finally {
    await a.bus.close();
    await b.bus.close();
    await c.bus.close();
  }
});

Deno.test("cluster router: a lost node's peers get peer-left timeout; no bus means cluster-unavailable", async () => {
  const { runtime, hub, a, b, s, t } = await twoNodes();
  try {
    a.router.connect(s, T);
    await runtime.advance(20);
    hub.setUp(false);
    assert.equal(a.router.connect(s, T, "q"), true);
    assert.equal(a.router.connect(s, "00".repeat(20)), true, "unknown while the bus is down");
    const errors = s.of("error");
    assert.deepEqual(errors.map((e) => [e.code, e.peer]), [
      ["cluster-unavailable", T],
      ["cluster-unavailable", "00".repeat(20)],
    ]);
    assert.equal(
      a.router.forwardRelay("b", Uint8Array.fromHex(S), Uint8Array.fromHex(T), new Uint8Array(1)),
      "cluster-unavailable",
    );
    await runtime.advance(5000);
    assert.deepEqual(s.of("peer-left"), [{ type: "peer-left", peer: T, reason: "timeout" }]);
    assert.deepEqual(t.of("peer-left"), [{ type: "peer-left", peer: S, reason: "timeout" }]);
    hub.setUp(true);
    assert.ok(await runtime.runUntil(() => a.bus.available && a.bus.locate(T) === "b", 5000));
    a.router.connect(s, T);
    await runtime.advance(20);
    assert.equal(s.of("introduce").length, 2);
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});

Deno.test("cluster router: on a single server (LocalBus) nothing is remote", () => {
  const clients = new Map<string, FakeClient>();
  const router = new ClusterRouter<FakeClient>(new LocalBus(), {
    get: (id) => clients.get(id),
    canBroker: () => true,
    send: (client, message) => client.inbox.push(message),
    deliverRelay: () => null,
    replace: () => {},
    now: () => 0,
  }, new VirtualRuntime());
  const s = new FakeClient(S, "S".repeat(44), 1);
  router.registered(s);
  assert.equal(router.connect(s, T), false);
  assert.equal(router.relayNode(s, T), undefined);
  assert.deepEqual(s.inbox, []);
  router.unregistered(s, "disconnected");
});

Deno.test("cluster router: a pair introduced again on one node is not ended by the old node's loss", async () => {
  const { runtime, a, b, s, t } = await twoNodes();
  try {
    a.router.connect(s, T);
    await runtime.advance(20);
    assert.equal(a.router.relayNode(s, T), "b");
    await b.bus.close(); // node b dies; T's client registers on a and is introduced to S here
    const t2 = a.register(new FakeClient(T, "T".repeat(44), 10));
    a.router.brokeredLocally(s, t2);
    assert.equal(a.router.remotePeerCount(S), 0);
    await runtime.advance(5000); // b's lease runs out
    assert.deepEqual(s.of("peer-left"), [], "the new pairing is not told the old one ended");
    void t;
  } finally {
    await a.bus.close();
  }
});

Deno.test("cluster router: connect to an ID that registered elsewhere an instant ago reaches it", async () => {
  const { runtime, a, b, s } = await twoNodes();
  try {
    const fresh = "ee".repeat(20);
    const u = b.register(new FakeClient(fresh, "U".repeat(44), 5));
    assert.equal(a.bus.locate(fresh), undefined, "its announce is still on the way");
    assert.equal(a.router.connect(s, fresh, "r2"), true);
    await runtime.advance(20);
    assert.equal(u.of("introduce").length, 1);
    assert.deepEqual(s.of("introduce").map((m) => [m.peer, m.requestId]), [[fresh, "r2"]]);
    await runtime.advance(2000);
    assert.deepEqual(s.of("error"), [], "no late unknown-peer after the answer");
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});

Deno.test("cluster router: the callee's node asks its consent; a refusal looks like offline", async () => {
  const { runtime, a, b, s, t } = await twoNodes();
  try {
    // Declined: no introduce on either side, no address of T reaches S, and the answer is the
    // same unknown-peer as for an ID online nowhere, not before 0.5 s.
    b.consent.set(T, { accept: false, answerMs: 5, asked: [] });
    a.router.connect(s, T, "d1");
    await runtime.advance(100);
    assert.deepEqual(b.consent.get(T)!.asked, [`${S}@a`]);
    assert.equal(s.inbox.length, 0, JSON.stringify(s.inbox));
    assert.deepEqual(t.of("introduce"), []);
    await runtime.advance(1950);
    assert.equal(s.inbox.length, 1, JSON.stringify(s.inbox));
    assert.deepEqual(s.of("error").map((m) => [m.code, m.peer, m.requestId]), [
      ["unknown-peer", T, "d1"],
    ]);
    assert.deepEqual(t.of("introduce"), []);
    assert.equal(a.router.relayNode(s, T), undefined);
    // Accepted after a while: both are introduced then.
    s.inbox.length = 0;
    b.consent.set(T, { accept: true, answerMs: 300, asked: [] });
    a.router.connect(s, T, "d2");
    await runtime.advance(100);
    assert.deepEqual(s.of("introduce"), []);
    await runtime.advance(300);
    assert.equal(s.of("introduce")[0]?.requestId, "d2");
    assert.equal(t.of("introduce")[0]?.peer, S);
    assert.equal(a.router.relayNode(s, T), "b");
  } finally {
    await a.bus.close();
    await b.bus.close();
  }
});
