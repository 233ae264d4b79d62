/**
 * Issue 11's attacks on the signaling service, each reproduced in-process on virtual time: the
 * bound is asserted, and an honest pair that starts afterwards still registers, is introduced and
 * exchanges messages within 5 s (virtual).
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import { SIGNALING_VERSION } from "../shared/signaling/mod.ts";
import { honestPairServed, ServerWorld, WorldClient } from "../testing/server_world.ts";
import { CONSENT_TIMEOUT_MS, REFUSAL_MIN_MS } from "./signaling/control.ts";

Deno.test("abuse: throwaway keys introduced to one victim cannot lock it out", async () => {
  const max = 96;
  const world = new ServerWorld({ maxBrokeredPeers: max });
  try {
    const victim = await world.register({ host: "10.0.0.2" });
    const friendOfVictim = await world.register({ host: "10.0.7.2" });
    // max + 8 throwaway keys from two attacker hosts in one /24 (the per-address limit is 64).
    const attackers: WorldClient[] = [];
    for (let i = 0; i < max + 8; i++) {
      attackers.push(await world.register({ host: `10.66.0.${1 + (i % 2)}` }));
    }
    for (const attacker of attackers) attacker.conn.send({ type: "connect", peer: victim.me.id });
    const refused = () =>
      attackers.filter((a) => a.of("error").some((e) => e.code === "rate-limited"));
    await world.until(
      () => world.server.metrics.introductions === max && refused().length === 8,
      "the victim full of throwaway introductions",
    );
    // Bound: the victim holds at most `max` peers; callers from the network that holds them all
    // cannot displace one another.
    assert.equal(victim.of("introduce").length, max);

    // The victim can still reach someone...
    victim.conn.send({ type: "connect", peer: friendOfVictim.me.id, requestId: "out" });
    await world.until(
      () => victim.of("introduce").some((m) => m.peer === friendOfVictim.me.id),
      "the victim's own connect",
      5000,
    );
    assert.equal(victim.of("error").length, 0, String(JSON.stringify(victim.of("error"))));
    // ... and be reached by an honest caller starting now.
    const caller = await world.register({ host: "10.0.9.2" });
    const start = world.runtime.now();
    caller.conn.send({ type: "connect", peer: victim.me.id });
    await world.until(
      () => caller.of("introduce").some((m) => m.peer === victim.me.id),
      "an honest caller's introduction",
      5000,
    );
    caller.conn.sendRelay(victim.me.id, new Uint8Array([1, 2, 3]));
    await world.until(
      () => victim.relayed.some((r) => r.peer === caller.me.id),
      "the honest message",
      5000,
    );
    assert.ok(world.runtime.now() - start <= 5000);
    // Room was made by dropping the oldest throwaway introductions (they are told).
    const dropped = attackers.filter((a) => a.of("peer-left").some((m) => m.reason === "dropped"));
    assert.equal(dropped.length, 2);
    await honestPairServed(world, ["10.0.20.2", "10.0.21.2"]);
  } finally {
    await world.close();
  }
});

Deno.test("abuse: filling the server with idle registrations from many addresses", async () => {
  // 10,000 from 157 addresses, scaled down: 48 from 4 attacker addresses in 4 networks.
  const world = new ServerWorld({ maxClients: 48 });
  try {
    const attackers: WorldClient[] = [];
    for (let i = 0; i < 48; i++) {
      attackers.push(await world.register({ host: `10.${70 + (i % 4)}.0.1` }));
    }
    assert.equal(world.server.stats.registered, 48);
    // Under load, registration costs a puzzle: a client that cannot solve one is told why.
    const legacy = await world.connect(world.hostRuntime("10.0.30.2"));
    legacy.send({
      type: "hello",
      version: SIGNALING_VERSION,
      publicKey: (await Identity.generate()).publicKey.toBase64(),
    });
    await assert.rejects(world.runtime.drive(legacy.waitFor("challenge", 5000)), /server-busy/);
    // A wrong solution is refused.
    const cheat = await world.connect(world.hostRuntime("10.0.31.2"));
    const cheatId = await Identity.generate();
    cheat.send({
      type: "hello",
      version: SIGNALING_VERSION,
      publicKey: cheatId.publicKey.toBase64(),
      features: ["puzzle"],
    });
    const challenge = await world.runtime.drive(cheat.waitFor("challenge", 5000));
    assert.ok(challenge.puzzle !== undefined && challenge.puzzle.bits >= 8, "a puzzle is asked");
    cheat.send({
      type: "register",
      signature: new Uint8Array(64).toBase64(),
      localAddresses: [],
      work: new Uint8Array(8).fill(0xff).toBase64(),
    });
    await assert.rejects(world.runtime.drive(cheat.waitFor("registered", 5000)), /bad-puzzle/);

    // The honest pair: idle sessions of the networks holding the most give way.
    await honestPairServed(world, ["10.0.40.2", "10.0.41.2"]);
    assert.equal(world.server.metrics.registrations.get("evicted"), 2);
    assert.equal(world.server.stats.registered, 48, "the bound: never more than maxClients");
    const evicted = attackers.filter((a) => a.of("bye").some((m) => m.reason === "evicted"));
    assert.equal(evicted.length, 2);
    // Sessions that did something are never evicted: make every attacker busy, and the next
    // newcomer is refused instead.
    const live = attackers.filter((a) => !a.closed);
    for (let i = 0; i + 1 < live.length; i += 2) {
      live[i].conn.send({ type: "connect", peer: live[i + 1].me.id });
    }
    await world.until(
      () => world.server.metrics.introductions >= 1 + Math.floor(live.length / 2),
      "the attackers busy",
    );
    await assert.rejects(
      world.runtime.drive(world.register({ host: "10.0.42.2" })),
      /server-full/,
    );
  } finally {
    await world.close();
  }
});

Deno.test("abuse: 100 IPv6 addresses from one /64 share one limit", async () => {
  const world = new ServerWorld({ maxConnectionsPerAddress: 16 });
  try {
    const conns = [];
    for (let a = 1; a <= 100; a++) {
      const runtime = world.hostRuntime(`2001:db8:0:1::${a.toString(16)}`);
      conns.push(await world.connect(runtime));
    }
    await world.until(
      () => world.server.metrics.connections.get("too-many-connections") === 100 - 16,
      "the refusals",
    );
    assert.equal(world.server.stats.connections, 16, "one /64 holds the per-address limit");
    // Other /64s of the same /48 share its wider limit (4 x 16).
    for (let n = 2; n < 8; n++) {
      for (let a = 1; a <= 16; a++) {
        conns.push(await world.connect(world.hostRuntime(`2001:db8:0:${n}::${a}`)));
      }
    }
    await world.until(() => world.server.stats.connections === 64, "the /48 limit");
    await honestPairServed(world, ["2001:db8:1::1", "2001:db8:2::1"]);
    for (const conn of conns) conn.close();
  } finally {
    await world.close();
  }
});

Deno.test("abuse: connect tells a stranger nothing before the callee consents", async (t) => {
  const world = new ServerWorld();
  try {
    const stranger = await world.register({ host: "10.0.0.2" });
    const callee = await world.register({ host: "10.0.0.3", consent: true });
    const offlineId = (await Identity.generate()).id;

    const refusalDelay = async (peer: string, requestId: string) => {
      const start = world.runtime.now();
      stranger.conn.send({ type: "connect", peer, requestId });
      await world.until(
        () => stranger.of("error").some((e) => e.requestId === requestId),
        `the answer to ${requestId}`,
      );
      const error = stranger.of("error").find((e) => e.requestId === requestId)!;
      const at = stranger.arrivals.find((a) => a.message === error)!.at;
      return { error, delay: at - start };
    };

    await t.step("declined, unanswered and offline look the same", async () => {
      callee.consentAnswer = false;
      const declined = await refusalDelay(callee.me.id, "declined");
      callee.consentAnswer = undefined;
      const silent = await refusalDelay(callee.me.id, "silent");
      const offline = await refusalDelay(offlineId, "offline");
      for (const r of [declined, silent, offline]) {
        assert.equal(r.error.code, "unknown-peer");
        assert.equal(r.error.message, "no client with that ID is online");
        assert.ok(
          r.delay >= REFUSAL_MIN_MS - 10 && r.delay <= CONSENT_TIMEOUT_MS + 50,
          `refused after ${r.delay} ms`,
        );
      }
      assert.equal(stranger.of("introduce").length, 0, "no addresses given out");
      assert.equal(callee.of("introduce-request").length, 2);
      assert.ok(callee.of("introduce-request").every((m) => m.peer === stranger.me.id));
    });

    await t.step("an accepted request introduces both; a drop frees the slot", async () => {
      callee.consentAnswer = true;
      stranger.conn.send({ type: "connect", peer: callee.me.id, requestId: "ok" });
      await world.until(
        () => stranger.of("introduce").length === 1 && callee.of("introduce").length === 1,
        "the introductions",
        5000,
      );
      stranger.conn.sendRelay(callee.me.id, new Uint8Array([9]));
      await world.until(() => callee.relayed.length === 1, "a relayed message");
      callee.conn.send({ type: "drop", peer: stranger.me.id });
      await world.until(() => stranger.of("peer-left").length === 1, "peer-left dropped");
      assert.deepEqual(stranger.of("peer-left")[0], {
        type: "peer-left",
        peer: callee.me.id,
        reason: "dropped",
      });
      stranger.conn.sendRelay(callee.me.id, new Uint8Array([10]));
      await world.until(
        () => stranger.of("error").some((e) => e.code === "relay-not-brokered"),
        "the relay refused after the drop",
      );
      assert.equal(callee.relayed.length, 1);
    });

    await t.step(
      "a client without the consent feature is introduced at once (anyone)",
      async () => {
        const legacy = await world.register({ host: "10.0.0.4" });
        stranger.conn.send({ type: "connect", peer: legacy.me.id, requestId: "legacy" });
        await world.until(() => legacy.of("introduce").length === 1, "the introduction", 1000);
        assert.equal(legacy.of("introduce-request").length, 0);
      },
    );
  } finally {
    await world.close();
  }
});

Deno.test("abuse: unspecified, broadcast and multicast addresses are never passed on as candidates", async () => {
  const world = new ServerWorld();
  try {
    const honest = await world.register({ host: "10.0.0.2" });
    const conn = await world.connect(world.hostRuntime("10.0.0.3"));
    const liar = await Identity.generate();
    await world.runtime.drive(conn.register(liar, [
      { host: "0.0.0.0", port: 9 },
      { host: "255.255.255.255", port: 9 },
      { host: "224.0.0.1", port: 9 },
      { host: "::", port: 9 },
      { host: "ff02::1", port: 9 },
      { host: "192.168.5.5", port: 4000 },
    ]));
    conn.send({ type: "connect", peer: honest.me.id });
    await world.until(() => honest.of("introduce").length === 1, "the introduction");
    assert.deepEqual(honest.of("introduce")[0].candidates, [
      { host: "192.168.5.5", port: 4000, kind: "local" },
    ]);
    conn.close();
  } finally {
    await world.close();
  }
});

Deno.test("abuse: strangers flooding a consent callee with requests cannot crowd out a friend", async () => {
  const world = new ServerWorld();
  try {
    const callee = await world.register({ host: "10.0.0.2", consent: true });
    callee.consentAnswer = undefined; // it answers by hand below
    const friend = await world.register({ host: "10.0.9.9" });
    const strangers: WorldClient[] = [];
    for (let i = 0; i < 40; i++) strangers.push(await world.register({ host: "10.77.0.1" }));
    const floodAt = world.runtime.now();
    for (const s of strangers) s.conn.send({ type: "connect", peer: callee.me.id });
    await world.until(
      () => callee.of("introduce-request").length === 32,
      "the callee's request table full",
    );
    // The friend asks while the table is full of strangers' unanswered requests.
    friend.conn.send({ type: "connect", peer: callee.me.id, requestId: "friend" });
    await world.until(
      () => callee.of("introduce-request").some((m) => m.peer === friend.me.id),
      "the friend's request reaching the callee",
      5000,
    );
    assert.ok(world.runtime.now() - floodAt < CONSENT_TIMEOUT_MS, "before any request expired");
    callee.conn.send({ type: "introduce-answer", peer: friend.me.id, accept: true });
    await world.until(
      () => friend.of("introduce").some((m) => m.peer === callee.me.id),
      "the friend's introduction",
      5000,
    );
    // Every stranger is refused like an offline ID; none learned anything.
    await world.until(
      () => strangers.every((s) => s.of("error").some((e) => e.code === "unknown-peer")),
      "every stranger refused",
      5000,
    );
    assert.ok(strangers.every((s) => s.of("introduce").length === 0));
  } finally {
    await world.close();
  }
});

Deno.test("abuse: connections that never register cannot keep honest ones out", async () => {
  const world = new ServerWorld({ maxPendingConnections: 32, maxConnectionsPerAddress: 64 });
  try {
    const idle = [];
    const attacker = world.hostRuntime("10.88.0.1");
    for (let i = 0; i < 48; i++) idle.push(await world.connect(attacker));
    await world.until(
      () => world.server.metrics.connections.get("server-busy") === 16,
      "the connections beyond the pending limit refused (one network cannot evict itself)",
    );
    assert.equal(world.server.stats.connections, 32);
    // Honest newcomers from elsewhere evict the idle ones (and pay a puzzle: load is full).
    await honestPairServed(world, ["10.0.60.2", "10.0.61.2"]);
    assert.ok(world.server.metrics.connections.get("evicted") >= 1);
    assert.ok(world.server.stats.connections <= 32 + 2, "pending never above its limit");
    for (const conn of idle) conn.close();
  } finally {
    await world.close();
  }
});
