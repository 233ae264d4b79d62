import assert from "node:assert/strict";
import { StunClass, StunMethod } from "./constants.ts";
import { classOf, encodeMessageType, methodOf } from "./header.ts";

Deno.test("header: Binding types of the four classes", () => {
  assert.equal(encodeMessageType(StunMethod.Binding, StunClass.Request), 0x0001);
  assert.equal(encodeMessageType(StunMethod.Binding, StunClass.Indication), 0x0011);
  assert.equal(encodeMessageType(StunMethod.Binding, StunClass.SuccessResponse), 0x0101);
  assert.equal(encodeMessageType(StunMethod.Binding, StunClass.ErrorResponse), 0x0111);
});

Deno.test("header: every method and class round-trips through the 14-bit type", () => {
  for (let method = 0; method <= 0xfff; method++) {
    for (const stunClass of [0, 1, 2, 3] as StunClass[]) {
      const type = encodeMessageType(method, stunClass);
      assert.ok(type < 0x4000);
      assert.equal(methodOf(type), method);
      assert.equal(classOf(type), stunClass);
    }
  }
  assert.throws(() => encodeMessageType(0x1000, StunClass.Request), RangeError);
});
