import assert from "node:assert/strict";
import { LineBatcher } from "./line_batcher.ts";

Deno.test("line batcher: lines of one turn leave in one write, in order, when the scheduled flush runs", () => {
  const writes: string[] = [];
  const scheduled: (() => void)[] = [];
  const batcher = new LineBatcher({
    write: (text) => writes.push(text),
    schedule: (callback) => scheduled.push(callback),
  });
  batcher.push("a");
  batcher.push("b");
  batcher.push("c");
  assert.deepEqual(writes, []);
  assert.equal(scheduled.length, 1); // one flush scheduled per batch, not per line
  assert.equal(batcher.bufferedChars, 6);
  scheduled.shift()!();
  assert.deepEqual(writes, ["a\nb\nc\n"]);
  assert.equal(batcher.bufferedChars, 0);
  // The next line schedules a new flush; an explicit flush writes at once, and the scheduled
  // one then finds nothing to write.
  batcher.push("d");
  assert.equal(scheduled.length, 1);
  batcher.flush();
  assert.deepEqual(writes, ["a\nb\nc\n", "d\n"]);
  scheduled.shift()!();
  batcher.flush();
  assert.deepEqual(writes, ["a\nb\nc\n", "d\n"]);
});

Deno.test("line batcher: a full buffer is written at once (bounded memory)", () => {
  const writes: string[] = [];
  const batcher = new LineBatcher({
    write: (text) => writes.push(text),
    schedule: () => {},
    maxBufferedChars: 11,
  });
  batcher.push("1234");
  batcher.push("5678");
  assert.deepEqual(writes, []);
  batcher.push("9");
  assert.deepEqual(writes, ["1234\n5678\n9\n"]);
  assert.equal(batcher.bufferedChars, 0);
});

Deno.test("line batcher: by default flushes by itself after the current turn", async () => {
  const writes: string[] = [];
  const batcher = new LineBatcher({ write: (text) => writes.push(text) });
  batcher.push("x");
  batcher.push("y");
  assert.deepEqual(writes, []);
  const deadline = Date.now() + 5000;
  while (writes.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.deepEqual(writes, ["x\ny\n"]);
});
