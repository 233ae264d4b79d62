import assert from "node:assert/strict";
import { createWorld, type SimClient } from "../testing/client_harness.ts";

function registered(c: SimClient): boolean {
  return c.events.some((e) => e.type === "registered");
}

function stateOf(c: SimClient, peer: SimClient): string | undefined {
  return c.client.list().find((row) => row.peer === peer.identity.id)?.state;
}

function texts(c: SimClient): string[] {
  return c.events.flatMap((e) => e.type === "message" ? [e.text] : []);
}

Deno.test("virtual time: two real clients and the real server: register, learn the public endpoint, go direct, and exchange messages", async () => {
  const world = await createWorld(1, { server: "real" });
  try {
    const a = await world.addClient("10.0.0.1");
    const b = await world.addClient("10.0.0.2");
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "endpoint" && e.public === "10.0.0.1:4000"),
        5000,
      ),
      "STUN through the real server",
    );
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct",
        5000,
      ),
      `states ${stateOf(a, b)} ${stateOf(b, a)}`,
    );
    const id = a.client.send(b.identity.id, "hello")!;
    b.client.send(a.identity.id, "hi back");
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "delivered" && e.messageId === id),
        5000,
      ),
    );
    assert.ok(await world.runtime.runUntil(() => texts(a).length === 1, 5000));
    assert.deepEqual(texts(b), ["hello"]);
    assert.deepEqual(texts(a), ["hi back"]);
  } finally {
    await world.close();
  }
});

Deno.test("virtual time: with NAT traversal on, clients measure their NAT, exchange facts in-band, and say how the direct path was found", async () => {
  const world = await createWorld(2, { server: "real" });
  try {
    const traversal = { traversal: { natProbe: true, portMapping: false } };
    const a = await world.addClient("10.0.0.1", undefined, traversal);
    const b = await world.addClient("10.0.0.2", undefined, traversal);
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    assert.ok(
      await world.runtime.runUntil(() => a.client.natFacts !== undefined, 10_000),
      "NAT measured",
    );
    assert.equal(a.client.natFacts?.udpReachable, true);
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct",
        10_000,
      ),
      `states ${stateOf(a, b)} ${stateOf(b, a)}`,
    );
    // No NAT here: the peer's server-reflexive address answered (none of birthday's business).
    const rowA = a.client.list().find((row) => row.peer === b.identity.id);
    assert.equal(rowA?.how, "server-reflexive", JSON.stringify(rowA));
    assert.equal(rowA?.why, undefined);
    const directEvent = a.events.findLast((e) => e.type === "peer" && e.state === "direct");
    assert.ok(directEvent?.type === "peer" && directEvent.how === "server-reflexive");
    const id = a.client.send(b.identity.id, "hello")!;
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "delivered" && e.messageId === id),
        5000,
      ),
    );
  } finally {
    await world.close();
  }
});
