import assert from "node:assert/strict";
import { AttributeType, StunClass } from "./constants.ts";
import { StunDecodeError } from "./errors.ts";
import { decodeStunMessage, looksLikeStun } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";

function build(attributes: [number, Uint8Array][], type = 0x0001): Uint8Array {
  const writer = new StunMessageWriter();
  writer.startRaw(type, Uint8Array.fromHex("b7e7a701bc34d686fa87dfae"));
  for (const [t, v] of attributes) writer.addAttribute(t, v);
  return writer.bytes().slice();
}

function reason(bytes: Uint8Array, allowLegacy = false): string {
  try {
    decodeStunMessage(bytes, { allowLegacy });
    return "ok";
  } catch (error) {
    assert.ok(error instanceof StunDecodeError);
    return error.reason;
  }
}

Deno.test("message: header fields and attributes in wire order", () => {
  const message = decodeStunMessage(build([
    [AttributeType.Software, Uint8Array.of(0x61)],
    [0x8888, Uint8Array.of(1, 2, 3, 4, 5)],
  ], 0x0111));
  assert.equal(message.method, 1);
  assert.equal(message.messageClass, StunClass.ErrorResponse);
  assert.equal(message.transactionId.toHex(), "b7e7a701bc34d686fa87dfae");
  assert.equal(message.isLegacy, false);
  assert.deepEqual(message.attributes.map((a) => [a.type, a.offset, a.value.length]), [
    [AttributeType.Software, 20, 1],
    [0x8888, 28, 5],
  ]);
  assert.deepEqual(message.unknownRequired, []);
  assert.ok(message.has(0x8888));
  assert.equal(message.get(0x9999), undefined);
});

Deno.test("message: unknown comprehension-required attributes are reported, optional ones not", () => {
  const message = decodeStunMessage(
    build([[0x7777, new Uint8Array()], [0x8777, new Uint8Array()]]),
  );
  assert.deepEqual(message.unknownRequired, [0x7777]);
  const custom = decodeStunMessage(build([[0x7777, new Uint8Array()]]), {
    comprehended: new Set([0x7777]),
  });
  assert.deepEqual(custom.unknownRequired, []);
});

Deno.test("message: attributes after MESSAGE-INTEGRITY are ignored except MI-SHA256 and FINGERPRINT", () => {
  const message = decodeStunMessage(build([
    [AttributeType.MessageIntegrity, new Uint8Array(20)],
    [0x7777, new Uint8Array(4)],
    [AttributeType.MessageIntegritySha256, new Uint8Array(32)],
    [AttributeType.Software, new Uint8Array(4)],
    [AttributeType.Fingerprint, new Uint8Array(4)],
  ]));
  assert.deepEqual(message.attributes.map((a) => a.type), [
    AttributeType.MessageIntegrity,
    AttributeType.MessageIntegritySha256,
    AttributeType.Fingerprint,
  ]);
  assert.deepEqual(message.unknownRequired, [], "ignored attributes are not reported");
});

Deno.test("message: malformed inputs get typed reasons", () => {
  const good = build([[AttributeType.Software, Uint8Array.of(1, 2, 3, 4)]]);
  assert.equal(reason(good), "ok");
  assert.equal(reason(good.subarray(0, 19)), "truncated");
  assert.equal(reason(good.subarray(0, 26)), "truncated");
  const notStun = good.slice();
  notStun[0] |= 0x80;
  assert.equal(reason(notStun), "not-stun");
  const cookie = good.slice();
  cookie[4] = 0;
  assert.equal(reason(cookie), "bad-magic-cookie");
  assert.equal(reason(cookie, true), "ok");
  const odd = good.slice();
  odd[3] = 6;
  assert.equal(reason(odd), "bad-length");
  const longer = new Uint8Array(good.length + 4);
  longer.set(good);
  assert.equal(reason(longer), "bad-length");
  const overrun = good.slice();
  overrun[23] = 9; // attribute claims 9 bytes, 4 (+padding) present
  assert.equal(reason(overrun), "truncated");
  assert.equal(
    reason(build([[AttributeType.Fingerprint, new Uint8Array(4)], [0x8022, new Uint8Array()]])),
    "attribute-after-fingerprint",
  );
});

Deno.test("message: looksLikeStun checks the header cheaply", () => {
  const good = build([]);
  assert.ok(looksLikeStun(good));
  assert.equal(looksLikeStun(good.subarray(0, 19)), false);
  const legacy = good.slice();
  legacy[5] = 0;
  assert.equal(looksLikeStun(legacy), false);
  assert.ok(looksLikeStun(legacy, true));
  const lengthOff = good.slice();
  lengthOff[3] = 4;
  assert.equal(looksLikeStun(lengthOff), false);
});
