import assert from "node:assert/strict";
import {
  addChannelNumber,
  decodeChannelData,
  decodeStunMessage,
  encodeChannelData,
  getChannelNumber,
  isValidChannelNumber,
  looksLikeChannelData,
  streamFrameLength,
  StunDecodeError,
  StunEncodeError,
  StunMessageWriter,
} from "./mod.ts";

Deno.test("channel data: CHANNEL-NUMBER round-trip and range", () => {
  const writer = new StunMessageWriter();
  writer.startRaw(0x0009, new Uint8Array(12));
  addChannelNumber(writer, 0x4fff);
  assert.equal(getChannelNumber(decodeStunMessage(writer.bytes())), 0x4fff);
  assert.equal(isValidChannelNumber(0x3fff), false);
  assert.equal(isValidChannelNumber(0x4000), true);
  assert.equal(isValidChannelNumber(0x7fff), true);
  assert.equal(isValidChannelNumber(0x8000), false);
});

Deno.test("channel data: framing with and without padding", () => {
  const out = new Uint8Array(32).fill(0xee);
  const data = Uint8Array.of(1, 2, 3, 4, 5);
  assert.equal(encodeChannelData(out, 0, 0x4001, data), 9);
  assert.equal(out.subarray(0, 9).toHex(), "400100050102030405");
  assert.equal(encodeChannelData(out, 0, 0x4001, data, true), 12);
  assert.equal(out.subarray(0, 12).toHex(), "400100050102030405000000");
  assert.equal(looksLikeChannelData(out), true);
  const frame = decodeChannelData(out.subarray(0, 12));
  assert.equal(frame.channel, 0x4001);
  assert.deepEqual([...frame.data], [1, 2, 3, 4, 5]);
  assert.equal(streamFrameLength(out), 12);
});

Deno.test("channel data: bad frames are rejected", () => {
  assert.throws(() => decodeChannelData(Uint8Array.of(0x40, 0)), StunDecodeError);
  assert.throws(() => decodeChannelData(Uint8Array.of(0x80, 0, 0, 0)), StunDecodeError);
  assert.throws(() => decodeChannelData(Uint8Array.of(0x40, 0, 0, 9, 1)), StunDecodeError);
  assert.throws(
    () => encodeChannelData(new Uint8Array(8), 0, 0x3000, new Uint8Array(1)),
    StunEncodeError,
  );
  assert.throws(
    () => encodeChannelData(new Uint8Array(4), 0, 0x4000, new Uint8Array(1)),
    StunEncodeError,
  );
  assert.equal(looksLikeChannelData(Uint8Array.of(0x00, 1, 0, 0)), false);
  assert.equal(streamFrameLength(Uint8Array.of(0x80, 0, 0, 0)), -1);
  assert.equal(streamFrameLength(Uint8Array.of(0x00, 1, 0)), undefined);
});
