import assert from "node:assert/strict";
import { decodeFreshness, encodeFreshness } from "../shared/stun/freshness.ts";
import { StunFreshness } from "./stun_freshness.ts";

const tid = (n: number) => new Uint8Array(12).fill(n);

Deno.test("STUN freshness: a replayed request (any earlier counter) is refused", () => {
  const fresh = new StunFreshness();
  const home = "192.0.2.1:4000", attacker = "203.0.113.66:5555";
  assert.equal(fresh.check("alice", tid(1), 1n, home), "fresh");
  assert.equal(fresh.check("alice", tid(2), 2n, home), "fresh");
  assert.equal(fresh.check("alice", tid(1), 1n, attacker), "replayed", "an old capture");
  assert.equal(fresh.check("alice", tid(2), 2n, attacker), "replayed", "the latest, elsewhere");
  assert.equal(fresh.check("alice", tid(2), 2n, home), "retransmit", "a retransmission");
  assert.equal(fresh.check("alice", tid(9), undefined, attacker), "replayed", "counter stripped");
  assert.equal(fresh.check("alice", tid(3), 3n, home), "fresh");
  assert.equal(fresh.check("bob", tid(1), 1n, attacker), "fresh", "per USERNAME");
});

Deno.test("STUN freshness: clients without a counter get transaction-ID replay protection", () => {
  const fresh = new StunFreshness(4, 2);
  assert.equal(fresh.check("old", tid(1), undefined, "a"), "fresh");
  assert.equal(fresh.check("old", tid(2), undefined, "a"), "fresh");
  assert.equal(fresh.check("old", tid(1), undefined, "b"), "replayed");
  assert.equal(fresh.check("old", tid(1), undefined, "a"), "replayed", "not the last one");
  for (let i = 0; i < 10; i++) fresh.check(`u${i}`, tid(1), 1n, "a");
  assert.ok(fresh.size <= 4, "bounded");
  fresh.forget("u9");
  assert.equal(fresh.check("u9", tid(1), 1n, "a"), "fresh");
});

Deno.test("STUN freshness: the attribute value round-trips", () => {
  assert.equal(decodeFreshness(encodeFreshness(0x0102030405060708n)), 0x0102030405060708n);
  assert.equal(decodeFreshness(new Uint8Array(7)), undefined);
});
