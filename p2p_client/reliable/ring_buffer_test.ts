import assert from "node:assert/strict";
import fc from "fast-check";
import { RingBuffer } from "./ring_buffer.ts";

Deno.test("ring buffer: behaves like an array queue (seeded)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.nat(), fc.constant(-1), fc.constant(-2)), { maxLength: 500 }),
      (ops) => {
        const ring = new RingBuffer<number>();
        const model: number[] = [];
        for (const op of ops) {
          if (op === -1) assert.equal(ring.shift(), model.shift());
          else if (op === -2) {
            ring.clear();
            model.length = 0;
          } else {
            ring.push(op);
            model.push(op);
          }
          assert.equal(ring.length, model.length);
          for (let i = -1; i <= model.length; i++) assert.equal(ring.at(i), model[i]);
        }
      },
    ),
    { seed: 99, numRuns: 300 },
  );
});
