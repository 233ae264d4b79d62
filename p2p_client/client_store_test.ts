import assert from "node:assert/strict";
import {
  boundState,
  FileClientStore,
  MAX_STORED_MESSAGES,
  parseStoredState,
} from "./client_store.ts";

const PEER = "ab".repeat(20);

Deno.test("file store: round trip beside the identity, owner-only, damaged files read as empty", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new FileClientStore(`${dir}/identity.key`);
    assert.deepEqual(store.load(), { outbox: [], received: {} });
    store.save({
      outbox: [{ peer: PEER, id: 3, uid: "0123456789abcdef", text: "hé", sent: true }],
      received: { [PEER]: ["fedcba9876543210"] },
      nextMessageId: 4,
      peers: [PEER],
    });
    assert.deepEqual(store.load(), {
      outbox: [{ peer: PEER, id: 3, uid: "0123456789abcdef", text: "hé", sent: true }],
      received: { [PEER]: ["fedcba9876543210"] },
      nextMessageId: 4,
      peers: [PEER],
    });
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(`${dir}/identity.key.outbox.json`)).mode! & 0o777, 0o600);
    }
    await Deno.writeTextFile(`${dir}/identity.key.outbox.json`, "{not json");
    assert.deepEqual(store.load().outbox, []);
    assert.deepEqual(store.load().received, { [PEER]: ["fedcba9876543210"] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stored state is validated and bounded", () => {
  const parsed = parseStoredState(
    JSON.stringify({
      outbox: [
        { peer: PEER, id: 1, uid: "0123456789abcdef", text: "ok" },
        { peer: "bad", id: 2, uid: "0123456789abcdef", text: "bad peer" },
        { peer: PEER, id: -1, uid: "0123456789abcdef", text: "bad id" },
        { peer: PEER, id: 3, uid: "xyz", text: "bad uid" },
      ],
    }),
    JSON.stringify({ received: { [PEER]: ["0123456789abcdef", 7, "short"], bad: ["x"] } }),
  );
  assert.deepEqual(parsed.outbox.map((m) => m.text), ["ok"]);
  assert.deepEqual(parsed.received, { [PEER]: ["0123456789abcdef"] });
  const many = Array.from({ length: MAX_STORED_MESSAGES + 5 }, (_, i) => ({
    peer: PEER,
    id: i + 1,
    uid: "0123456789abcdef",
    text: `m${i}`,
  }));
  const bounded = boundState({ outbox: many, received: {} });
  assert.equal(bounded.outbox.length, MAX_STORED_MESSAGES);
  assert.equal(bounded.outbox[0].text, "m5", "the newest are kept");
});

Deno.test("file store: the journal keeps every change made since the last save (a crash loses none)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new FileClientStore(`${dir}/identity.key`);
    store.save({ outbox: [], received: {}, nextMessageId: 5 });
    store.record({
      kind: "queued",
      message: { peer: PEER, id: 5, uid: "0123456789abcdef", text: "a", sent: false },
    });
    store.record({
      kind: "queued",
      message: { peer: PEER, id: 6, uid: "1123456789abcdef", text: "b", sent: false },
    });
    store.record({ kind: "resolved", id: 5 });
    store.record({ kind: "received", peer: PEER, uid: "2123456789abcdef" });
    await Deno.writeTextFile(`${dir}/identity.key.journal`, '{"kind":"rec', { append: true });
    const loaded = store.load();
    assert.deepEqual(loaded.outbox.map((m) => [m.id, m.text, m.sent]), [[6, "b", true]]);
    assert.deepEqual(loaded.received, { [PEER]: ["2123456789abcdef"] });
    assert.equal(loaded.nextMessageId, 7);
    store.save(loaded);
    assert.equal(await Deno.readTextFile(`${dir}/identity.key.journal`), "", "emptied by a save");
    assert.deepEqual(store.load().outbox.map((m) => m.id), [6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
