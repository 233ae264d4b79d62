import assert from "node:assert/strict";
import { LogPipe } from "./logging.ts";

Deno.test("log pipe: a failing destination is noticed once, later lines are dropped and counted", async () => {
  let writes = 0;
  const pipe = new LogPipe({
    write: () => {
      writes++;
      return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
    },
  });
  pipe.writeLine("one\n");
  await pipe.flush(1000);
  assert.match(pipe.failure ?? "", /BrokenPipe/);
  for (let i = 0; i < 10_000; i++) pipe.writeLine(`line ${i}\n`);
  await pipe.flush(1000);
  assert.equal(writes, 1, "no write is attempted after the failure");
  assert.equal(pipe.dropped, 10_001);
  assert.equal(pipe.queuedBytes, 0);
});

Deno.test("log pipe: a destination that never drains costs dropped lines, not memory", async () => {
  const pipe = new LogPipe({ write: () => new Promise<number>(() => {}) }, 10_000);
  for (let i = 0; i < 100_000; i++) pipe.writeLine("x".repeat(99) + "\n");
  assert.ok(pipe.queuedBytes <= 10_000, `${pipe.queuedBytes} bytes queued`);
  assert.ok(pipe.dropped >= 100_000 - 100);
  const started = performance.now();
  await pipe.flush(50); // bounded even though the destination hangs
  assert.ok(performance.now() - started < 5000);
});

Deno.test("log pipe: lines are written in order, batched, with partial writes completed", async () => {
  const out: string[] = [];
  const pipe = new LogPipe({
    write: (bytes) => {
      const n = Math.max(1, Math.floor(bytes.length / 2));
      out.push(new TextDecoder().decode(bytes.subarray(0, n)));
      return Promise.resolve(n);
    },
  });
  for (let i = 0; i < 50; i++) pipe.writeLine(`line ${i}\n`);
  await pipe.flush(5000);
  const expected = Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join("");
  assert.equal(out.join(""), expected);
  assert.equal(pipe.dropped, 0);
});
