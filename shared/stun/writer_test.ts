import assert from "node:assert/strict";
import { StunClass } from "./constants.ts";
import { StunEncodeError } from "./errors.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("writer: header, length field and padding", () => {
  const writer = new StunMessageWriter();
  writer.start(1, StunClass.Request, Uint8Array.fromHex("000102030405060708090a0b"));
  writer.addAttribute(0x8022, Uint8Array.of(0x61, 0x62, 0x63));
  writer.addAttribute(0x0024, Uint8Array.of(1, 2, 3, 4), 0x20);
  assert.equal(
    writer.bytes().toHex(),
    "000100102112a442000102030405060708090a0b" + "80220003616263" + "00" + "0024000401020304",
  );
  writer.paddingByte = 0x20;
  writer.start(1, StunClass.Request, new Uint8Array(12));
  writer.addAttribute(0x8022, Uint8Array.of(0x61));
  assert.equal(writer.bytes().subarray(20).toHex(), "8022000161202020");
});

Deno.test("writer: start forgets the previous message; legacy cookie kept", () => {
  const writer = new StunMessageWriter();
  writer.startRaw(0x0001, new Uint8Array(12));
  writer.addAttribute(0x8022, new Uint8Array(8));
  writer.startRaw(0x0101, new Uint8Array(12), 0x01020304);
  assert.equal(writer.bytes().toHex(), "0101000001020304" + "00".repeat(12));
});

Deno.test("writer: refuses what does not fit", () => {
  const writer = new StunMessageWriter(32);
  writer.startRaw(0x0001, new Uint8Array(12));
  assert.throws(() => writer.addAttribute(0x8022, new Uint8Array(9)), StunEncodeError);
  assert.equal(writer.length, 20, "a refused attribute leaves the message as it was");
  assert.throws(
    () => new StunMessageWriter(1 << 17).reserveAttribute(1, 0x10000),
    StunEncodeError,
  );
  assert.throws(() => writer.start(1, StunClass.Request, new Uint8Array(16)), StunEncodeError);
  assert.throws(() => new StunMessageWriter(8), StunEncodeError);
});

Deno.test("writer: startAnswer copies cookie and transaction ID of the request", () => {
  const writer = new StunMessageWriter();
  const request = Uint8Array.fromHex("000100002112a442b7e7a701bc34d686fa87dfae");
  writer.startRaw(0x0001, new Uint8Array(12));
  writer.addAttribute(0x8022, new Uint8Array(4));
  writer.startAnswer(0x0111, request);
  assert.equal(writer.bytes().toHex(), "011100002112a442b7e7a701bc34d686fa87dfae");
  const legacy = Uint8Array.fromHex("00010000" + "0102030405060708090a0b0c0d0e0f10");
  writer.startAnswer(0x0101, legacy);
  assert.equal(writer.bytes().toHex(), "01010000" + "0102030405060708090a0b0c0d0e0f10");
  assert.throws(() => writer.startAnswer(0x0101, new Uint8Array(19)), StunEncodeError);
});
