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
