import assert from "node:assert/strict";
import { addChangeRequest, getChangeRequest } from "./change_request.ts";
import { StunDecodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("change request: flags A (IP) and B (port)", () => {
  const w = new StunMessageWriter();
  for (const changeIp of [false, true]) {
    for (const changePort of [false, true]) {
      w.startRaw(0x0001, new Uint8Array(12));
      addChangeRequest(w, { changeIp, changePort });
      assert.equal(w.buffer[27], (changeIp ? 4 : 0) | (changePort ? 2 : 0));
      assert.deepEqual(getChangeRequest(decodeStunMessage(w.bytes())), { changeIp, changePort });
    }
  }
  w.startRaw(0x0001, new Uint8Array(12));
  w.addAttribute(0x0003, Uint8Array.of(0, 0));
  assert.throws(() => getChangeRequest(decodeStunMessage(w.bytes())), StunDecodeError);
});
