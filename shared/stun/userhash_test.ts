import assert from "node:assert/strict";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import { addUserhash, getUserhash } from "./userhash.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("userhash: 32 bytes round trip, other sizes refused", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0001, new Uint8Array(12));
  const hash = crypto.getRandomValues(new Uint8Array(32));
  addUserhash(w, hash);
  assert.deepEqual(getUserhash(decodeStunMessage(w.bytes())), hash);
  assert.throws(() => addUserhash(w, new Uint8Array(31)), StunEncodeError);
  w.startRaw(0x0001, new Uint8Array(12));
  w.addAttribute(0x001e, new Uint8Array(16));
  assert.throws(() => getUserhash(decodeStunMessage(w.bytes())), StunDecodeError);
});
