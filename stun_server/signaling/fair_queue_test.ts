import assert from "node:assert/strict";
import { FairQueue } from "./fair_queue.ts";

Deno.test("fair queue: a sparse sender is served before a backlog of floods", () => {
  const queue = new FairQueue<string>(4096);
  for (let f = 0; f < 48; f++) {
    for (let i = 0; i < 20; i++) queue.enqueue(`flood${f}`, new Uint8Array(60_000));
  }
  // The floods have been backlogged for a while (every one served at least once).
  for (let i = 0; i < 100; i++) queue.dequeue();
  queue.enqueue("honest", new Uint8Array([7]));
  let before = 0;
  for (;;) {
    const next = queue.dequeue();
    assert.ok(next !== undefined);
    if (next.key === "honest") break;
    before++;
  }
  assert.ok(before <= 1, `${before} flood frames went before the honest one`);
});

Deno.test("fair queue: backlogged senders share bytes equally (DRR)", () => {
  const queue = new FairQueue<string>(1500);
  for (let i = 0; i < 400; i++) queue.enqueue("big", new Uint8Array(1200));
  for (let i = 0; i < 4000; i++) queue.enqueue("small", new Uint8Array(100));
  const served = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const next = queue.dequeue()!;
    served.set(next.key, (served.get(next.key) ?? 0) + next.frame.length);
  }
  const big = served.get("big")!, small = served.get("small")!;
  assert.ok(Math.abs(big - small) / (big + small) < 0.1, `big ${big} small ${small}`);
});

Deno.test("fair queue: frames of one sender keep their order; totals and clear", () => {
  const queue = new FairQueue<number>(100);
  for (let i = 0; i < 50; i++) queue.enqueue(i % 3, new Uint8Array([i, 0, 0, 0, 0]));
  assert.equal(queue.totalBytes, 250);
  assert.equal(queue.bytesOf(1), 17 * 5);
  const seen = new Map<number, number>();
  for (let i = 0; i < 50; i++) {
    const next = queue.dequeue()!;
    const last = seen.get(next.key) ?? -1;
    assert.ok(next.frame[0] > last);
    seen.set(next.key, next.frame[0]);
  }
  assert.equal(queue.dequeue(), undefined);
  assert.equal(queue.totalBytes, 0);
  queue.enqueue(5, new Uint8Array(70_000));
  assert.equal(queue.dequeue()?.frame.length, 70_000, "a frame far above the quantum still goes");
  queue.enqueue(5, new Uint8Array(3));
  queue.clear();
  assert.equal(queue.totalBytes, 0);
  assert.equal(queue.dequeue(), undefined);
});

Deno.test("fair queue: a sparse sender still in the old round is not put behind the round", () => {
  const queue = new FairQueue<string>(8192);
  for (let f = 0; f < 48; f++) {
    for (let i = 0; i < 20; i++) queue.enqueue(`flood${f}`, new Uint8Array(60_000));
  }
  for (let i = 0; i < 100; i++) queue.dequeue();
  // The honest sender sends one small frame, it is served and its flow sits in the old list.
  queue.enqueue("honest", new Uint8Array([1]));
  assert.equal(queue.dequeue()?.key, "honest");
  for (let i = 0; i < 3; i++) queue.dequeue();
  queue.enqueue("honest", new Uint8Array([2]));
  let before = 0;
  for (;;) {
    const next = queue.dequeue()!;
    if (next.key === "honest") break;
    before++;
  }
  assert.equal(before, 0, `${before} flood frames went before the honest one`);
});
