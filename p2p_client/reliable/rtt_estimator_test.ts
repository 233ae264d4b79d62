import assert from "node:assert/strict";
import { RttEstimator } from "./rtt_estimator.ts";

Deno.test("rtt estimator: RFC 6298 arithmetic", () => {
  const rtt = new RttEstimator({ minRtoMs: 1, maxRtoMs: 60_000 });
  assert.equal(rtt.rto, 1000);
  rtt.sample(100);
  assert.equal(rtt.srtt, 100);
  assert.equal(rtt.rttvar, 50);
  assert.equal(rtt.rto, 300);
  rtt.sample(200);
  // rttvar = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; srtt = 7/8 * 100 + 1/8 * 200 = 112.5
  assert.equal(rtt.rttvar, 62.5);
  assert.equal(rtt.srtt, 112.5);
  assert.equal(rtt.rto, 112.5 + 250);
});

Deno.test("rtt estimator: bounds, backoff and reset", () => {
  const rtt = new RttEstimator({ initialRtoMs: 1000, minRtoMs: 200, maxRtoMs: 5000 });
  rtt.sample(1);
  assert.equal(rtt.rto, 200);
  rtt.backoff();
  assert.equal(rtt.rto, 400);
  for (let i = 0; i < 10; i++) rtt.backoff();
  assert.equal(rtt.rto, 5000);
  rtt.sample(1);
  assert.ok(rtt.rto < 5000);
  rtt.reset();
  assert.equal(rtt.srtt, undefined);
  assert.equal(rtt.rto, 1000);
  assert.throws(() => new RttEstimator({ minRtoMs: 10, maxRtoMs: 5 }), RangeError);
});
