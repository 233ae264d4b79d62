import assert from "node:assert/strict";
import { ratioOf, summarize } from "./stats.ts";

Deno.test("summarize: odd count gives the middle value and the range", () => {
  assert.deepEqual(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, runs: [5, 1, 3] });
});

Deno.test("summarize: even count gives the mean of the middle two", () => {
  const s = summarize([4, 1, 3, 2]);
  assert.equal(s.median, 2.5);
  assert.equal(s.min, 1);
  assert.equal(s.max, 4);
});

Deno.test("summarize: refuses empty and non-finite input", () => {
  assert.throws(() => summarize([]), RangeError);
  assert.throws(() => summarize([1, Number.NaN]), RangeError);
  assert.throws(() => summarize([Infinity]), RangeError);
});

Deno.test("ratioOf: median ratio, null when missing or dividing by zero", () => {
  assert.equal(ratioOf(summarize([3, 9, 6]), summarize([2, 4, 3])), 2);
  assert.equal(ratioOf(null, summarize([1])), null);
  assert.equal(ratioOf(summarize([1]), null), null);
  assert.equal(ratioOf(summarize([1]), summarize([0])), null);
});
