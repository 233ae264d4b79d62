import assert from "node:assert/strict";
import { addErrorCode, getErrorCode } from "./error_code.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";

function errorMessage(value: Uint8Array) {
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  w.addAttribute(0x0009, value);
  return decodeStunMessage(w.bytes());
}

Deno.test("error code: class/number encoding and default reasons", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  addErrorCode(w, 420);
  assert.equal(w.bytes().subarray(20, 28).toHex(), "0009001500000414");
  assert.deepEqual(getErrorCode(decodeStunMessage(w.bytes())), {
    code: 420,
    reason: "Unknown Attribute",
  });
  w.startRaw(0x0111, new Uint8Array(12));
  addErrorCode(w, 699, "custom");
  assert.deepEqual(getErrorCode(decodeStunMessage(w.bytes())), { code: 699, reason: "custom" });
});

Deno.test("error code: bad values", () => {
  assert.throws(() => getErrorCode(errorMessage(Uint8Array.of(0, 0, 4))), StunDecodeError);
  assert.throws(() => getErrorCode(errorMessage(Uint8Array.of(0, 0, 2, 0))), StunDecodeError);
  assert.throws(() => getErrorCode(errorMessage(Uint8Array.of(0, 0, 4, 100))), StunDecodeError);
  assert.throws(() => getErrorCode(errorMessage(Uint8Array.of(0, 0, 4, 1, 0xff))), StunDecodeError);
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  assert.throws(() => addErrorCode(w, 299), StunEncodeError);
  assert.throws(() => addErrorCode(w, 700), StunEncodeError);
});
