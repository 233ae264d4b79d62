/**
 * The link lifecycle on virtual time: each scenario of issue 9 with two real clients and an
 * in-process signaling server on a simulated network (`testing/client_harness.ts`).
 */
import assert from "node:assert/strict";
import { createWorld, type SimClient, type World } from "../testing/client_harness.ts";
import type { ClientEvent } from "./events.ts";

function registered(c: SimClient, count = 1): boolean {
  return c.events.filter((e) => e.type === "registered").length >= count;
}

function stateOf(c: SimClient, peer: SimClient): string | undefined {
  return c.client.list().find((row) => row.peer === peer.identity.id)?.state;
}

function texts(c: SimClient, from?: SimClient): string[] {
  return c.events.flatMap((e) =>
    e.type === "message" && (!from || e.from === from.identity.id) ? [e.text] : []
  );
}

type Outcome = "delivered" | "failed" | "unconfirmed";

function outcomeOf(event: ClientEvent): { id: number; outcome: Outcome } | undefined {
  if (event.type === "delivered") return { id: event.messageId, outcome: "delivered" };
  if (event.type === "unconfirmed") return { id: event.messageId, outcome: "unconfirmed" };
  if (event.type === "error" && event.messageId !== undefined) {
    return { id: event.messageId, outcome: "failed" };
  }
  return undefined;
}

/** Every outcome reported by `c`, by message ID. */
function outcomes(c: SimClient): Map<number, Outcome[]> {
  const out = new Map<number, Outcome[]>();
  for (const event of c.events) {
    const o = outcomeOf(event);
    if (o) out.set(o.id, [...(out.get(o.id) ?? []), o.outcome]);
  }
  return out;
}

/** Sends `text` from `a` to `b`, remembering the text of each message ID. */
function send(sent: Map<number, string>, a: SimClient, b: SimClient, text: string): number {
  const id = a.client.send(b.identity.id, text);
  assert.ok(id !== undefined, `send ${text}`);
  sent.set(id, text);
  return id;
}

/**
 * The invariants for messages from `a` to `b`: each send has exactly one outcome; a
 * message reported failed was never printed; the receiver printed each message at most once, in
 * the order sent.
 */
function checkInvariants(a: SimClient, b: SimClient, sent: Map<number, string>): void {
  const reported = outcomes(a);
  const printed = texts(b, a);
  for (const [id, text] of sent) {
    const list = reported.get(id) ?? [];
    assert.equal(list.length, 1, `message ${id} (${text}) has exactly one outcome: ${list}`);
    if (list[0] === "failed") {
      assert.ok(!printed.includes(text), `message ${id} reported failed but printed`);
    }
    if (list[0] === "delivered") assert.ok(printed.includes(text), `delivered ${text} printed`);
  }
  assert.equal(new Set(printed).size, printed.length, `printed at most once: ${printed}`);
  const order = [...sent.values()].filter((text) => printed.includes(text));
  assert.deepEqual(printed.filter((text) => order.includes(text)), order, "in order");
}

/** Waits (virtual time, at most `limitMs`) until both sides are direct; fails with `what`. */
async function assertBothDirect(
  world: World,
  a: SimClient,
  b: SimClient,
  limitMs: number,
  what: string,
): Promise<void> {
  const both = () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct";
  assert.ok(
    await world.runtime.runUntil(both, limitMs),
    `${what} (${stateOf(a, b)} ${stateOf(b, a)})`,
  );
}

async function connectedPair(world: World): Promise<[SimClient, SimClient]> {
  const a = await world.addClient("10.0.0.1");
  const b = await world.addClient("10.0.0.2");
  assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
  a.client.connect(b.identity.id);
  await assertBothDirect(world, a, b, 5000, "direct");
  return [a, b];
}

async function exchange(
  world: World,
  a: SimClient,
  b: SimClient,
  sent: [Map<number, string>, Map<number, string>],
  tag: string,
  limitMs = 5000,
): Promise<boolean> {
  const ab = send(sent[0], a, b, `${tag} a→b`);
  const ba = send(sent[1], b, a, `${tag} b→a`);
  return await world.runtime.runUntil(
    () =>
      outcomes(a).get(ab)?.[0] === "delivered" && outcomes(b).get(ba)?.[0] === "delivered" &&
      texts(b).includes(`${tag} a→b`) && texts(a).includes(`${tag} b→a`),
    limitMs,
  );
}

Deno.test("a peer frozen for 35 s: the link recovers both ways without any command", async () => {
  const world = await createWorld(11);
  try {
    const [a, b] = await connectedPair(world);
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    assert.ok(await exchange(world, a, b, sent, "before"));
    b.runtime.freeze();
    for (let i = 0; i < 3; i++) send(sent[0], a, b, `during ${i}`);
    await world.runtime.advance(35_000);
    b.runtime.thaw();
    // Usable again within a few seconds of simulated time, both ways, no command typed.
    assert.ok(await exchange(world, a, b, sent, "after", 10_000), "usable again after the thaw");
    await world.runtime.advance(35_000);
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
    for (let i = 0; i < 3; i++) {
      // A message sent into the freeze either arrived (delivered) or may have (unconfirmed).
      const id = [...sent[0]].find(([, text]) => text === `during ${i}`)![0];
      assert.notEqual(outcomes(a).get(id)?.[0], "failed");
    }
  } finally {
    await world.close();
  }
});

Deno.test("one-way UDP loss: both sides notice, fall back to the relay, and nothing is lost", async () => {
  const world = await createWorld(12);
  try {
    const [a, b] = await connectedPair(world);
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    world.network.policy = (t) =>
      t.transport === "udp" && t.from.hostname === a.host && t.to.hostname === b.host
        ? { drop: true }
        : undefined;
    const mixedSeen = { a: false, b: false };
    a.client.on((e) => e.type === "peer" && e.state === "mixed" && (mixedSeen.a = true));
    b.client.on((e) => e.type === "peer" && e.state === "mixed" && (mixedSeen.b = true));
    for (let i = 0; i < 5; i++) {
      send(sent[0], a, b, `lossy ${i} a→b`);
      send(sent[1], b, a, `lossy ${i} b→a`);
      await world.runtime.advance(1000);
    }
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(a, b) === "relayed" && stateOf(b, a) === "relayed",
        15_000,
      ),
      `both detect it: ${stateOf(a, b)} ${stateOf(b, a)}`,
    );
    assert.ok(mixedSeen.a && mixedSeen.b, "both went through mixed (relay and direct at once)");
    assert.ok(
      await world.runtime.runUntil(
        () => texts(b, a).length === 5 && texts(a, b).length === 5,
        10_000,
      ),
    );
    await world.runtime.advance(5000);
    for (const [x, y, map] of [[a, b, sent[0]], [b, a, sent[1]]] as const) {
      checkInvariants(x, y, map);
      for (const [id] of map) assert.equal(outcomes(x).get(id)?.[0], "delivered");
    }
    world.network.policy = undefined;
    await assertBothDirect(
      world,
      a,
      b,
      10_000,
      "direct again once UDP works both ways (probing goes on while relayed)",
    );
  } finally {
    await world.close();
  }
});

Deno.test("a peer introduced but never handshaking: every message gets an outcome by the deadline", async () => {
  const world = await createWorld(13);
  try {
    const a = await world.addClient("10.0.0.1");
    const b = await world.addClient("10.0.0.2");
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    // B's process hangs right after registering: it is introduced but never answers.
    world.mini.blocked = (id) => id === b.identity.id;
    world.network.policy = (t) =>
      t.transport === "udp" && t.to.hostname === b.host ? { drop: true } : undefined;
    a.client.connect(b.identity.id);
    await world.runtime.advance(500);
    const sent = new Map<number, string>();
    for (let i = 0; i < 3; i++) send(sent, a, b, `never ${i}`);
    await world.runtime.advance(31_000);
    for (const [id] of sent) {
      assert.deepEqual(outcomes(a).get(id), ["failed"], `message ${id}: never left, so failed`);
    }
  } finally {
    await world.close();
  }
});

Deno.test("a truthful introduction after a lying one is accepted", async () => {
  const world = await createWorld(14);
  try {
    const a = await world.addClient("10.0.0.1");
    const b = await world.addClient("10.0.0.2");
    const liar = await world.addClient("10.0.0.3");
    assert.ok(
      await world.runtime.runUntil(() => registered(a) && registered(b) && registered(liar), 5000),
    );
    let lies = 1;
    world.mini.rewriteIntroduction = (message, to) => {
      if (to === a.identity.id && message.peer === b.identity.id && lies-- > 0) {
        return { ...message, publicKey: liar.identity.publicKey.toBase64() };
      }
      return message;
    };
    a.client.connect(b.identity.id);
    await world.runtime.advance(1000);
    assert.ok(a.events.some((e) => e.type === "error" && e.code === "bad-introduction"));
    const sent = new Map<number, string>();
    send(sent, a, b, "after the lie");
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(() => texts(b, a).includes("after the lie"), 10_000),
      "the true introduction is used",
    );
    await world.runtime.advance(2000);
    checkInvariants(a, b, sent);
  } finally {
    await world.close();
  }
});

Deno.test("a failed channel is replaced: after a 40 s partition the link carries on", async () => {
  const world = await createWorld(15);
  try {
    const [a, b] = await connectedPair(world);
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    // Partition the pair: no UDP between them and no relay frames; signaling stays up.
    world.network.policy = (t) =>
      t.transport === "udp" && [a.host, b.host].includes(t.from.hostname) &&
        [a.host, b.host].includes(t.to.hostname)
        ? { drop: true }
        : undefined;
    world.mini.dropRelay = () => true;
    for (let i = 0; i < 3; i++) send(sent[0], a, b, `cut ${i}`);
    await world.runtime.advance(40_000);
    for (let i = 0; i < 3; i++) {
      const id = [...sent[0]].find(([, text]) => text === `cut ${i}`)![0];
      assert.deepEqual(outcomes(a).get(id), ["unconfirmed"], "sent, never acknowledged");
    }
    world.network.policy = undefined;
    world.mini.dropRelay = () => false;
    assert.ok(await exchange(world, a, b, sent, "healed", 10_000), "no dead end");
    await world.runtime.advance(35_000);
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
  } finally {
    await world.close();
  }
});

Deno.test("losing the signaling connection for 35 s leaves a healthy direct link alone", async () => {
  const world = await createWorld(16);
  try {
    const [a, b] = await connectedPair(world);
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    world.mini.blocked = (id) => id === a.identity.id;
    await world.runtime.advance(20_000);
    assert.ok(a.events.some((e) => e.type === "disconnected"), "A lost its server");
    assert.equal(stateOf(a, b), "direct");
    assert.equal(stateOf(b, a), "direct");
    assert.ok(await exchange(world, a, b, sent, "while A has no server"), "direct link works");
    await world.runtime.advance(15_000);
    world.mini.blocked = () => false;
    assert.ok(await world.runtime.runUntil(() => registered(a, 2), 20_000), "A registers again");
    assert.ok(await exchange(world, a, b, sent, "after"));
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
  } finally {
    await world.close();
  }
});

Deno.test("a registration replaced by our own late retry is not taken for another instance", async () => {
  const world = await createWorld(17);
  try {
    const [a, b] = await connectedPair(world);
    world.mini.replace(a.identity.id);
    assert.ok(await world.runtime.runUntil(() => registered(a, 2), 10_000), "A registers again");
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    assert.ok(await exchange(world, a, b, sent, "after replace"));
  } finally {
    await world.close();
  }
});

Deno.test("a public endpoint learned after the introduction reaches the peer (in-band)", async () => {
  const world = await createWorld(18);
  try {
    // B announces only a private address nobody can reach; both sides filter inbound UDP from
    // addresses they never sent to (port-restricted NATs).
    const a = await world.addClient("10.0.0.1");
    const b = await world.addClient("10.0.0.2", undefined, {
      bind: { hostname: "0.0.0.0", port: 4000 },
      networkInterfaces: () => [{ family: "IPv4", address: "192.168.1.2" }],
    });
    const sentTo = new Set<string>();
    world.network.policy = (t) => {
      if (t.transport !== "udp") return undefined;
      sentTo.add(`${t.from.hostname}:${t.from.port}>${t.to.hostname}:${t.to.port}`);
      const reply = `${t.to.hostname}:${t.to.port}>${t.from.hostname}:${t.from.port}`;
      return sentTo.has(reply) ? undefined : { drop: true };
    };
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    a.client.connect(b.identity.id);
    assert.ok(await world.runtime.runUntil(() => stateOf(a, b) === "relayed", 10_000));
    await world.runtime.advance(3000);
    assert.equal(stateOf(a, b), "relayed", "stuck on the relay without B's public endpoint");
    world.mini.sendEndpoint(b.identity.id, { host: b.host, port: 4000 });
    await assertBothDirect(world, a, b, 10_000, "direct once the endpoint is known");
  } finally {
    await world.close();
  }
});

Deno.test("restart safety: a restarted sender sends again, the receiver drops duplicates", async () => {
  const world = await createWorld(19);
  try {
    const [a, b] = await connectedPair(world);
    const sent = new Map<number, string>();
    // B hangs; A queues two messages and exits before anything is confirmed.
    world.network.policy = (t) =>
      t.transport === "udp" && t.to.hostname === b.host ? { drop: true } : undefined;
    world.mini.dropRelay = (_from, to) => to === b.identity.id;
    send(sent, a, b, "kept 1");
    send(sent, a, b, "kept 2");
    await world.runtime.advance(1000);
    await a.restart();
    assert.deepEqual(
      a.store.load().outbox.map((m) => m.text),
      ["kept 1", "kept 2"],
      "stored beside the identity",
    );
    world.network.policy = undefined;
    world.mini.dropRelay = () => false;
    assert.ok(
      await world.runtime.runUntil(
        () => texts(b, a).includes("kept 1") && texts(b, a).includes("kept 2"),
        20_000,
      ),
      `the restarted sender sent them again: ${texts(b, a)}`,
    );
    assert.ok(
      await world.runtime.runUntil(
        () => [...sent.keys()].every((id) => outcomes(a).get(id)?.includes("delivered")),
        10_000,
      ),
    );
    // B restarts too, and A sends one of them again (as after a lost acknowledgement): dropped.
    await world.runtime.advance(500);
    await b.restart();
    assert.deepEqual(a.store.load().outbox, [], "A's stored outbox is empty once delivered");
    const uid = b.store.load().received[a.identity.id];
    assert.ok(uid && uid.length >= 2, `B stored the received message IDs: ${uid}`);
    await a.restart(() =>
      a.store.save({
        outbox: [{ peer: b.identity.id, id: 99, uid: uid[0], text: "kept 1" }],
        received: {},
      })
    );
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "delivered" && e.messageId === 99),
        20_000,
      ),
      JSON.stringify([a.events.slice(-8), b.events.slice(-8)]),
    );
    assert.deepEqual(texts(b, a).filter((t) => t === "kept 1").length, 1, "printed once");
  } finally {
    await world.close();
  }
});

// ---- The same lifecycle against the real server (stun_server/server.ts) on virtual time ----

async function realPair(seed: number): Promise<[World, SimClient, SimClient]> {
  const world = await createWorld(seed, { server: "real" });
  const a = await world.addClient("10.0.0.1");
  const b = await world.addClient("10.0.0.2");
  assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
  a.client.connect(b.identity.id);
  await assertBothDirect(world, a, b, 5000, "direct");
  return [world, a, b];
}

Deno.test("real server: a peer frozen for 35 s (the server drops it) comes back by itself", async () => {
  const [world, a, b] = await realPair(21);
  try {
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    b.runtime.freeze();
    for (let i = 0; i < 3; i++) send(sent[0], a, b, `during ${i}`);
    await world.runtime.advance(35_000);
    b.runtime.thaw();
    assert.ok(await exchange(world, a, b, sent, "after", 10_000), "usable again after the thaw");
    await world.runtime.advance(35_000);
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
  } finally {
    await world.close();
  }
});

Deno.test("real server: 35 s without signaling (TCP cut, UDP fine) keeps the direct link", async () => {
  const [world, a, b] = await realPair(22);
  try {
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    const healAt = world.runtime.now() + 35_000;
    world.network.policy = (t) =>
      t.transport === "tcp" && (t.from.hostname === a.host || t.to.hostname === a.host)
        ? { delayMs: Math.max(0, healAt - world.runtime.now()) }
        : undefined;
    await world.runtime.advance(20_000);
    assert.equal(stateOf(a, b), "direct");
    assert.equal(stateOf(b, a), "direct", "B keeps the direct link although A left the server");
    assert.ok(await exchange(world, a, b, sent, "while A is cut off"), "the direct link works");
    await world.runtime.advance(16_000);
    world.network.policy = undefined;
    assert.ok(await world.runtime.runUntil(() => registered(a, 2), 30_000), "A registers again");
    assert.ok(await exchange(world, a, b, sent, "after"));
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
  } finally {
    await world.close();
  }
});

Deno.test("real server: a server restart leaves the link usable and both re-register", async () => {
  const [world, a, b] = await realPair(23);
  try {
    const sent: [Map<number, string>, Map<number, string>] = [new Map(), new Map()];
    await world.restartServer();
    assert.ok(await exchange(world, a, b, sent, "during the restart"), "the direct link works");
    assert.ok(
      await world.runtime.runUntil(() => registered(a, 2) && registered(b, 2), 30_000),
      "both register again",
    );
    // The relay works again too: force it by cutting UDP between them.
    world.network.policy = (t) =>
      t.transport === "udp" && [a.host, b.host].includes(t.from.hostname) &&
        [a.host, b.host].includes(t.to.hostname)
        ? { drop: true }
        : undefined;
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(a, b) === "relayed" && stateOf(b, a) === "relayed",
        15_000,
      ),
    );
    assert.ok(await exchange(world, a, b, sent, "relayed after the restart", 10_000));
    await world.runtime.advance(35_000);
    checkInvariants(a, b, sent[0]);
    checkInvariants(b, a, sent[1]);
  } finally {
    await world.close();
  }
});

Deno.test("real server: a late public endpoint (slow STUN) still leads to a direct path", async () => {
  const world = await createWorld(24, { server: "real" });
  try {
    const a = await world.addClient("10.0.0.1");
    const b = await world.addClient("10.0.0.2", undefined, {
      bind: { hostname: "0.0.0.0", port: 4000 },
      networkInterfaces: () => [{ family: "IPv4", address: "192.168.1.2" }],
    });
    // B's STUN requests are slow (its public endpoint is learned only after the introduction);
    // both sides filter inbound UDP from addresses they never sent to (port-restricted NATs).
    const start = world.runtime.now();
    const sentTo = new Set<string>();
    world.network.policy = (t) => {
      if (t.transport !== "udp") return undefined;
      if (t.to.port === 54321) {
        return t.from.hostname === b.host
          ? { delayMs: Math.max(0, start + 3000 - world.runtime.now()) }
          : undefined;
      }
      if (t.from.port === 54321) return undefined;
      sentTo.add(`${t.from.hostname}:${t.from.port}>${t.to.hostname}:${t.to.port}`);
      const reply = `${t.to.hostname}:${t.to.port}>${t.from.hostname}:${t.from.port}`;
      return sentTo.has(reply) ? undefined : { drop: true };
    };
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    a.client.connect(b.identity.id);
    await assertBothDirect(world, a, b, 10_000, "direct once the endpoint is known");
  } finally {
    await world.close();
  }
});

Deno.test("real server: another instance with our identity takes over; we stop, it stays", async () => {
  const world = await createWorld(25, { server: "real" });
  try {
    const first = await world.addClient("10.0.0.1");
    assert.ok(await world.runtime.runUntil(() => registered(first), 5000));
    const second = await world.addClient("10.0.0.2", first.identity);
    assert.ok(await world.runtime.runUntil(() => registered(second), 5000));
    assert.ok(
      await world.runtime.runUntil(
        () => first.events.some((e) => e.type === "error" && e.code === "replaced"),
        5000,
      ),
      "the first instance learns (by the registration nonce) that another one took over",
    );
    await world.runtime.advance(30_000);
    assert.equal(registered(first, 2), false, "the first does not fight back");
    assert.equal(second.events.filter((e) => e.type === "registered").length, 1);
    assert.equal(second.client.registered, true);
  } finally {
    await world.close();
  }
});
