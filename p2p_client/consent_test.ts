/**
 * Issue 11, consent before addresses, with real clients and the real server on virtual time: a
 * client with an accept policy (`acceptPeer`) is asked before anyone is introduced to it; a
 * stranger gets the same `unknown-peer` as for an offline ID and learns nothing, a contact
 * connects and exchanges messages.
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import { createWorld, type SimClient } from "../testing/client_harness.ts";

function registered(c: SimClient): boolean {
  return c.events.some((e) => e.type === "registered");
}

function stateOf(c: SimClient, peer: SimClient): string | undefined {
  return c.client.list().find((row) => row.peer === peer.identity.id)?.state;
}

Deno.test("consent: a contacts-only client declines strangers like an offline ID and accepts contacts", async () => {
  const world = await createWorld(3, { server: "real" });
  try {
    const friendId = await Identity.generate();
    const contacts = new Set([friendId.id]);
    const callee = await world.addClient("10.0.0.1", undefined, {
      acceptPeer: (peer) => contacts.has(peer),
    });
    const stranger = await world.addClient("10.0.0.2");
    const friend = await world.addClient("10.0.0.3", friendId);
    assert.ok(
      await world.runtime.runUntil(
        () => registered(callee) && registered(stranger) && registered(friend),
        5000,
      ),
    );
    stranger.client.connect(callee.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => stranger.events.some((e) => e.type === "error" && e.code === "unknown-peer"),
        10_000,
      ),
      "the stranger is refused",
    );
    const refusal = stranger.events.find((e) => e.type === "error" && e.code === "unknown-peer")!;
    assert.ok(refusal.type === "error" && /no client with that ID is online/.test(refusal.message));
    assert.equal(stateOf(callee, stranger), undefined, "the callee never met the stranger");
    // The callee reports declining, once per stranger a minute however often it asks.
    for (let i = 0; i < 3; i++) {
      stranger.client.connect(callee.identity.id);
      await world.runtime.advance(2500);
    }
    const refusals = stranger.events.filter((e) => e.type === "error" && e.code === "unknown-peer");
    assert.equal(refusals.length, 4);
    const declined = callee.events.filter((e) => e.type === "declined");
    assert.deepEqual(declined, [{ type: "declined", peer: stranger.identity.id }]);
    await world.runtime.advance(60_000);
    stranger.client.connect(callee.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => callee.events.filter((e) => e.type === "declined").length === 2,
        5000,
      ),
      "reported again after a minute",
    );

    friend.client.connect(callee.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(friend, callee) === "direct" && stateOf(callee, friend) === "direct",
        10_000,
      ),
      `states ${stateOf(friend, callee)} ${stateOf(callee, friend)}`,
    );
    friend.client.send(callee.identity.id, "hello, it's me");
    assert.ok(
      await world.runtime.runUntil(
        () => callee.events.some((e) => e.type === "message" && e.text === "hello, it's me"),
        5000,
      ),
    );
  } finally {
    await world.close();
  }
});

Deno.test("consent: many strangers are reported at most 10 a minute, the rest counted", async () => {
  const world = await createWorld(4, { server: "real" });
  try {
    const callee = await world.addClient("10.0.0.1", undefined, { acceptPeer: () => false });
    const strangers: SimClient[] = [];
    for (let i = 0; i < 14; i++) strangers.push(await world.addClient(`10.0.1.${i + 1}`));
    assert.ok(await world.runtime.runUntil(() => [callee, ...strangers].every(registered), 10_000));
    for (const stranger of strangers.slice(0, 13)) stranger.client.connect(callee.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () =>
          strangers.slice(0, 13).every((s) =>
            s.events.some((e) => e.type === "error" && e.code === "unknown-peer")
          ),
        10_000,
      ),
    );
    assert.equal(callee.events.filter((e) => e.type === "declined").length, 10);
    await world.runtime.advance(60_000);
    strangers[13].client.connect(callee.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => callee.events.filter((e) => e.type === "declined").length === 11,
        5000,
      ),
    );
    const info = callee.events.find((e) => e.type === "info");
    assert.ok(info?.type === "info" && /declined 3 more connection/.test(info.text), String(info));
  } finally {
    await world.close();
  }
});
