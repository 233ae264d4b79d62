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
