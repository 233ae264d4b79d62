import assert from "node:assert/strict";
import { StunDecodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import { addUnknownAttributes, getUnknownAttributes } from "./unknown_attributes.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("unknown attributes: list round trip with padding", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  addUnknownAttributes(w, [0x7777, 0x0002, 0x0003]);
  assert.equal(w.bytes().subarray(20).toHex(), "000a0006777700020003" + "0000");
  assert.deepEqual(getUnknownAttributes(decodeStunMessage(w.bytes())), [0x7777, 2, 3]);
});

Deno.test("unknown attributes: odd length is refused", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  w.addAttribute(0x000a, Uint8Array.of(1, 2, 3));
  assert.throws(() => getUnknownAttributes(decodeStunMessage(w.bytes())), StunDecodeError);
});
