import assert from "node:assert/strict";
import { WriteQueue } from "./write_queue.ts";

/** A writer that accepts at most `limit` bytes per call and resolves when released. */
function gatedWriter(limit: number) {
  const writes: Uint8Array[] = [];
  const originals: Uint8Array[] = [];
  let release: (() => void) | null = null;
  return {
    writes,
    originals,
    release() {
      const r = release;
      release = null;
      r?.();
    },
    get waiting() {
      return release !== null;
    },
    write(bytes: Uint8Array): Promise<number> {
      const n = Math.min(limit, bytes.length);
      writes.push(bytes.slice(0, n));
      originals.push(bytes);
      return new Promise((resolve) => release = () => resolve(n));
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("write queue: frames pushed in one tick go out as one write", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  queue.push(new Uint8Array([1]));
  queue.push(new Uint8Array([2, 3]));
  queue.reserve(2).set([4, 5]);
  assert.equal(queue.queuedBytes, 5);
  await until(() => writer.waiting);
  writer.release();
  await queue.flush();
  assert.deepEqual(writer.writes, [new Uint8Array([1, 2, 3, 4, 5])]);
  assert.equal(queue.queuedBytes, 0);
});

Deno.test("write queue: partial writes are continued and later pushes batch behind", async () => {
  const writer = gatedWriter(2);
  const queue = new WriteQueue(writer);
  queue.push(new Uint8Array([1, 2, 3]));
  await until(() => writer.waiting);
  queue.push(new Uint8Array([4]));
  queue.push(new Uint8Array([5]));
  const flushed = queue.flush();
  for (let i = 0; i < 10 && queue.queuedBytes > 0; i++) {
    await until(() => writer.waiting);
    writer.release();
    await new Promise((r) => setTimeout(r, 0));
  }
  await flushed;
  assert.deepEqual(writer.writes.flatMap((w) => [...w]), [1, 2, 3, 4, 5]);
});

Deno.test("write queue: a failed write closes the queue and reports once", async () => {
  const errors: unknown[] = [];
  const queue = new WriteQueue(
    { write: () => Promise.reject(new Error("broken pipe")) },
    { onError: (e) => errors.push(e) },
  );
  queue.push(new Uint8Array(3));
  await queue.flush();
  await until(() => queue.closed);
  assert.equal(errors.length, 1);
  queue.push(new Uint8Array(3));
  assert.equal(queue.queuedBytes, 0);
});

Deno.test("write queue: waitBelow resolves on drain, or false on timeout", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  queue.push(new Uint8Array(1000));
  assert.equal(await queue.waitBelow(2000), true, "already below");
  assert.equal(await queue.waitBelow(10, 20), false, "writer blocked: times out");
  const drained = queue.waitBelow(10, 5000);
  await until(() => writer.waiting);
  writer.release();
  assert.equal(await drained, true);
  assert.equal(queue.writtenBytes, 1000);
  queue.push(new Uint8Array(5));
  const closing = queue.waitBelow(0, 5000);
  queue.close();
  assert.equal(await closing, false);
});

Deno.test("write queue: owned buffers are written as they are, in order with copied ones", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  const shared = new Uint8Array([7, 7]);
  queue.push(new Uint8Array([1]));
  queue.pushOwned(shared);
  queue.push(new Uint8Array([2]));
  assert.equal(queue.queuedBytes, 4);
  for (let i = 0; i < 10 && queue.queuedBytes > 0; i++) {
    await until(() => writer.waiting);
    writer.release();
    await new Promise((r) => setTimeout(r, 0));
  }
  await queue.flush();
  assert.deepEqual(writer.writes.flatMap((w) => [...w]), [1, 7, 7, 2]);
  assert.equal(writer.originals[1].buffer, shared.buffer, "not copied");
});

Deno.test("write queue: a written chunk is reused for later frames, which arrive intact and in order", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  queue.push(new Uint8Array([1, 2]));
  await until(() => writer.waiting);
  queue.push(new Uint8Array([3])); // appended while the first chunk is being written
  writer.release();
  await until(() => writer.waiting);
  writer.release();
  await queue.flush();
  queue.push(new Uint8Array([4, 5])); // lands in a reused chunk
  await until(() => writer.waiting);
  writer.release();
  await queue.flush();
  queue.push(new Uint8Array([6]));
  queue.pushOwned(new Uint8Array([7]));
  queue.push(new Uint8Array([8]));
  for (let i = 0; i < 3; i++) {
    await until(() => writer.waiting);
    writer.release();
  }
  await queue.flush();
  assert.deepEqual(writer.writes.map((w) => [...w]), [[1, 2], [3], [4, 5], [6], [7], [8]]);
  // The third write went out of a chunk used before, not a fresh allocation.
  const buffers = writer.originals.map((w) => w.buffer);
  assert.ok(buffers.slice(0, 2).includes(buffers[2]), "a written chunk was reused");
});

Deno.test("write queue: unreserve takes back the last reservation only, before it is written", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  queue.push(new Uint8Array([1, 2]));
  queue.reserve(3).set([9, 9, 9]);
  assert.equal(queue.unreserve(3), true);
  assert.equal(queue.queuedBytes, 2);
  queue.push(new Uint8Array([3]));
  await until(() => writer.waiting);
  // The chunk is being written: what it holds cannot be taken back any more.
  assert.equal(queue.unreserve(1), false);
  writer.release();
  await queue.flush();
  assert.deepEqual(writer.writes.map((w) => [...w]), [[1, 2, 3]]);
  // Nothing was reserved since the last write: nothing to take back.
  assert.equal(queue.unreserve(1), false);
  assert.equal(queue.queuedBytes, 0);
});

Deno.test("write queue: an owned buffer's written callback comes once it is written, not on close", async () => {
  const writer = gatedWriter(1 << 20);
  const queue = new WriteQueue(writer);
  const done: Uint8Array[] = [];
  const first = new Uint8Array([1, 2]);
  queue.pushOwned(first, (bytes) => done.push(bytes));
  queue.push(new Uint8Array([3]));
  await until(() => writer.waiting);
  assert.equal(done.length, 0); // being written: not yet
  writer.release();
  await until(() => done.length === 1);
  assert.equal(done[0], first);
  writer.release();
  await queue.flush();
  queue.pushOwned(new Uint8Array([4]), (bytes) => done.push(bytes));
  queue.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(done.length, 1);
});
