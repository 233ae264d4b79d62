import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

Deno.test("token bucket: starts full, refuses beyond the burst, takes nothing on refusal", () => {
  let now = 1000;
  const bucket = new TokenBucket(1000, 500, () => now);
  assert.equal(bucket.take(300), true);
  assert.equal(bucket.take(300), false);
  assert.equal(bucket.available, 200);
  now += 100; // +100 tokens
  assert.equal(bucket.take(300), true);
  assert.equal(bucket.available, 0);
});

Deno.test("token bucket: refill is capped at the burst", () => {
  let now = 0;
  const bucket = new TokenBucket(10, 20, () => now);
  assert.equal(bucket.take(20), true);
  now += 60_000;
  assert.equal(bucket.available, 20);
  assert.equal(bucket.take(21), false);
});

Deno.test("token bucket: a clock going backwards never adds tokens", () => {
  let now = 5000;
  const bucket = new TokenBucket(1000, 10, () => now);
  bucket.take(10);
  now = 0;
  assert.equal(bucket.available, 0);
  now = 1;
  assert.equal(bucket.available, 1);
});

Deno.test("token bucket: rejects invalid parameters", () => {
  assert.throws(() => new TokenBucket(-1, 1, () => 0), RangeError);
  assert.throws(() => new TokenBucket(1, Number.NaN, () => 0), RangeError);
});
