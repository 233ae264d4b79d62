import assert from "node:assert/strict";
import { createWorld, type SimClient } from "../testing/client_harness.ts";
import { fillPattern, MemoryDownloadStore, patternSource } from "../testing/memory_files.ts";
import type { FileEvent } from "./files/types.ts";

function fileEvents(c: SimClient): FileEvent[] {
  return c.events.flatMap((e) => e.type === "file" ? [e] : []);
}

function stateOf(c: SimClient, peer: SimClient): string | undefined {
  return c.client.list().find((row) => row.peer === peer.identity.id)?.state;
}

Deno.test("virtual time: a file between two real clients over the direct path, chat alongside", async () => {
  const world = await createWorld(2, { server: "real" });
  const store = new MemoryDownloadStore();
  const size = 6 * (1 << 20) + 123;
  try {
    const a = await world.addClient("10.0.0.1", undefined, {
      files: {
        store: new MemoryDownloadStore(),
        decide: () => "reject",
        openSource: () => Promise.resolve(patternSource("../../etc/passwd", size, 4)),
      },
    });
    const b = await world.addClient("10.0.0.2", undefined, {
      files: { store, decide: () => "accept" },
    });
    assert.ok(await world.runtime.runUntil(() => a.client.registered && b.client.registered, 5000));
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => stateOf(a, b) === "direct" && stateOf(b, a) === "direct",
        5000,
      ),
    );
    const id = await a.client.sendFile(b.identity.id, "whatever");
    assert.ok(id);
    a.client.send(b.identity.id, "sending you a file");
    assert.ok(
      await world.runtime.runUntil(
        () => fileEvents(b).some((e) => e.state === "received"),
        120_000,
        20,
      ),
      JSON.stringify(fileEvents(b).filter((e) => e.state !== "progress")),
    );
    const received = fileEvents(b).find((e) => e.state === "received")!;
    assert.equal(received.path, "/downloads/passwd");
    const bytes = store.files.get("passwd")!;
    const expected = new Uint8Array(size);
    fillPattern(4, 0, expected);
    assert.ok(bytes.length === size && bytes.every((v, i) => v === expected[i]));
    assert.ok(
      await world.runtime.runUntil(() => fileEvents(a).some((e) => e.state === "sent"), 5000),
    );
    assert.ok(b.events.some((e) => e.type === "message" && e.text === "sending you a file"));
  } finally {
    await world.close();
  }
});
