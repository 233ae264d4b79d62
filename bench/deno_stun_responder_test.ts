import assert from "node:assert/strict";
import { writeBindingResponse } from "./deno_stun_responder.ts";

Deno.test("writeBindingResponse: XOR-MAPPED-ADDRESS of the source, same transaction ID", () => {
  const request = new Uint8Array(20);
  request.set([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
  request.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 8);
  const out = new Uint8Array(32);
  assert.equal(writeBindingResponse(request, 20, "127.0.0.1", 0x1234, out), true);
  assert.deepEqual([...out.subarray(0, 4)], [0x01, 0x01, 0, 12]);
  assert.deepEqual(out.subarray(4, 20), request.subarray(4, 20));
  assert.deepEqual([...out.subarray(20, 26)], [0, 0x20, 0, 8, 0, 1]);
  assert.deepEqual([...out.subarray(26, 28)], [0x12 ^ 0x21, 0x34 ^ 0x12]);
  assert.deepEqual([...out.subarray(28, 32)], [127 ^ 0x21, 0 ^ 0x12, 0 ^ 0xa4, 1 ^ 0x42]);
});

Deno.test("writeBindingResponse: refuses what is not a Binding request", () => {
  const out = new Uint8Array(32);
  const short = new Uint8Array(19);
  assert.equal(writeBindingResponse(short, 19, "127.0.0.1", 1, out), false);
  const wrongType = new Uint8Array(20);
  wrongType.set([0, 3, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
  assert.equal(writeBindingResponse(wrongType, 20, "127.0.0.1", 1, out), false);
  const noCookie = new Uint8Array(20);
  noCookie.set([0, 1]);
  assert.equal(writeBindingResponse(noCookie, 20, "127.0.0.1", 1, out), false);
  const ok = new Uint8Array(20);
  ok.set([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
  assert.equal(writeBindingResponse(ok, 20, "::1", 1, out), false);
});
