/**
 * Server refusals as one `refused` event (issue 11): an `error` the server sends about the session
 * itself, not about a command of ours, is reported with its code and words; a refused `connect`
 * stays that command's `error`.
 */
import assert from "node:assert/strict";
import { createWorld } from "../testing/client_harness.ts";

Deno.test("a session-level server error is a `refused` event; a refused connect stays an `error`", async () => {
  const world = await createWorld(3);
  try {
    const a = await world.addClient("10.0.0.1");
    assert.ok(
      await world.runtime.runUntil(() => a.events.some((e) => e.type === "registered"), 5000),
    );
    world.mini.sendTo(a.identity.id, {
      type: "error",
      code: "rate-limited",
      message: "too many control messages",
    });
    assert.ok(await world.runtime.runUntil(() => a.events.some((e) => e.type === "refused"), 1000));
    const refused = a.events.find((e) => e.type === "refused");
    assert.deepEqual(refused, {
      type: "refused",
      server: "10.0.0.100:3478",
      code: "rate-limited",
      message: "too many control messages",
      during: "session",
    });
    assert.ok(!a.events.some((e) => e.type === "error"), "not also an error");

    const offline = "0123456789abcdef0123456789abcdef01234567";
    a.client.connect(offline);
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "error" && e.code === "unknown-peer"),
        5000,
      ),
    );
    assert.equal(a.events.filter((e) => e.type === "refused").length, 1);
  } finally {
    await world.close();
  }
});
