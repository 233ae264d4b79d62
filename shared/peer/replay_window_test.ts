import assert from "node:assert/strict";
import fc from "fast-check";
import { ReplayWindow } from "./replay_window.ts";

Deno.test("replay window: edges", () => {
  const w = new ReplayWindow(64);
  assert.equal(w.size, 64);
  assert.equal(w.accept(0), true);
  assert.equal(w.accept(0), false);
  assert.equal(w.accept(100), true);
  assert.equal(w.accept(36), false); // 100 - 36 = 64: just outside
  assert.equal(w.accept(37), true);
  assert.equal(w.accept(37), false);
  assert.equal(w.accept(-1), false);
  assert.equal(w.accept(1.5), false);
  assert.equal(w.accept(Number.MAX_SAFE_INTEGER), true);
  assert.equal(w.highest, Number.MAX_SAFE_INTEGER);
  assert.throws(() => new ReplayWindow(0), RangeError);
});

Deno.test("replay window: matches a model on random counter streams (seeded)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 400 }), { maxLength: 300 }),
      (counters) => {
        const w = new ReplayWindow(64);
        const seen = new Set<number>();
        let highest = -1;
        for (const c of counters) {
          const expected = !seen.has(c) && c > highest - 64;
          assert.equal(w.accept(c), expected, `counter ${c}`);
          if (expected) {
            seen.add(c);
            highest = Math.max(highest, c);
          }
        }
      },
    ),
    { seed: 0x5eed, numRuns: 500 },
  );
});
