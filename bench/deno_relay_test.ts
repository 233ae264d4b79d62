import assert from "node:assert/strict";
import { scanFrames } from "./deno_relay.ts";

Deno.test("scanFrames: complete frames only, the rest left for the next read", () => {
  const buffer = new Uint8Array([0, 0, 0, 2, 2, 9, 0, 0, 0, 3, 1, 1, 1, 0, 0, 0, 5, 2]);
  const { frames, consumed } = scanFrames(buffer, buffer.length);
  assert.deepEqual(frames, [{ start: 0, length: 6 }, { start: 6, length: 7 }]);
  assert.equal(consumed, 13);
  assert.deepEqual(scanFrames(buffer, 4), { frames: [], consumed: 0 });
});

Deno.test("scanFrames: refuses lengths of 0 and above 65,536", () => {
  assert.throws(() => scanFrames(new Uint8Array([0, 0, 0, 0, 1]), 5), RangeError);
  assert.throws(() => scanFrames(new Uint8Array([0, 1, 0, 1, 1]), 5), RangeError);
});
