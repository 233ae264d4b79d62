import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

Deno.test("buffer pool: reuses released buffers, keeps at most `keep`, ignores foreign and repeated releases", () => {
  const pool = new BufferPool(64, 2);
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(pool.allocated, 3);
  pool.release(a.subarray(10, 20));
  pool.release(a);
  assert.equal(pool.free, 1, "released twice: kept once");
  pool.release(new Uint8Array(64)); // not from this pool, but the same size: accepted as a spare
  pool.release(new Uint8Array(32)); // another size: ignored
  pool.release(b);
  assert.equal(pool.free, 2, "at most keep");
  const again = pool.take();
  assert.equal(again.length, 64);
  assert.equal(pool.allocated, 3);
  void c;
});
