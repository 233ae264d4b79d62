/**
 * Heavy, even loss on a working direct path (25 % each way, 40 ms delay) on virtual time: the
 * channel makes progress both ways, every message is delivered, and the pair stays direct.
 */
import assert from "node:assert/strict";
import { createWorld, type SimClient } from "../testing/client_harness.ts";

function stateOf(c: SimClient, peer: SimClient): string | undefined {
  return c.client.list().find((row) => row.peer === peer.identity.id)?.state;
}

for (const [loss, delayMs, seed] of [[0.25, 0, 31], [0.1, 40, 32], [0.25, 40, 33]] as const) {
  Deno.test(`${loss * 100} % loss with ${delayMs} ms delay: delivered both ways, direct`, async () => {
    const world = await createWorld(seed, { server: "real" });
    try {
      const a = await world.addClient("10.0.0.1");
      const b = await world.addClient("10.0.0.2");
      let draws = 0;
      world.network.policy = (t) => {
        if (t.transport !== "udp" || t.from.port === 54321 || t.to.port === 54321) {
          return undefined;
        }
        // A deterministic pseudo-random drop sequence.
        draws = (draws * 1103515245 + 12345) >>> 0;
        return (draws >>> 8) % 1000 < loss * 1000 ? { drop: true } : { delayMs };
      };
      assert.ok(
        await world.runtime.runUntil(
          () => [a, b].every((c) => c.events.some((e) => e.type === "registered")),
          10_000,
        ),
      );
      a.client.connect(b.identity.id);
      assert.ok(
        await world.runtime.runUntil(
          () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct",
          15_000,
        ),
        `direct under loss: ${stateOf(a, b)} ${stateOf(b, a)}`,
      );
      const count = 60;
      for (let i = 0; i < count; i++) {
        a.client.send(b.identity.id, `a${i}`);
        b.client.send(a.identity.id, `b${i}`);
        await world.runtime.advance(250);
      }
      const delivered = (c: SimClient) => c.events.filter((e) => e.type === "delivered").length;
      assert.ok(
        await world.runtime.runUntil(
          () => delivered(a) === count && delivered(b) === count,
          30_000,
        ),
        `delivered ${delivered(a)} ${delivered(b)}`,
      );
      const texts = (c: SimClient) => c.events.flatMap((e) => e.type === "message" ? [e.text] : []);
      assert.deepEqual(texts(b), Array.from({ length: count }, (_, i) => `a${i}`));
      assert.deepEqual(texts(a), Array.from({ length: count }, (_, i) => `b${i}`));
      assert.ok(
        await world.runtime.runUntil(
          () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct",
          10_000,
        ),
        `ends direct: ${stateOf(a, b)} ${stateOf(b, a)}`,
      );
    } finally {
      await world.close();
    }
  });
}
