import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { addFingerprint, crc32, verifyFingerprint } from "./fingerprint.ts";
import { decodeStunMessage } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("fingerprint: CRC-32 agrees with zlib", () => {
  for (let length = 0; length < 200; length += 7) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    assert.equal(crc32(bytes), zlibCrc32(bytes) >>> 0);
    assert.equal(crc32(bytes, 3, Math.max(3, length)), zlibCrc32(bytes.subarray(3)) >>> 0);
  }
});

Deno.test("fingerprint: written value verifies, any flipped bit does not", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0001, crypto.getRandomValues(new Uint8Array(12)));
  w.addAttribute(0x8022, Uint8Array.of(1, 2, 3, 4));
  addFingerprint(w);
  const bytes = w.bytes().slice();
  assert.ok(verifyFingerprint(decodeStunMessage(bytes)));
  for (let i = 4; i < bytes.length; i++) {
    if (i >= 22 && i < 24) continue; // attribute length: changes framing
    if (i >= bytes.length - 8 && i < bytes.length - 4) continue; // FINGERPRINT header
    const tampered = bytes.slice();
    tampered[i] ^= 0x10;
    assert.equal(
      verifyFingerprint(decodeStunMessage(tampered, { allowLegacy: true })),
      false,
      `byte ${i}`,
    );
  }
  w.startRaw(0x0001, new Uint8Array(12));
  assert.equal(verifyFingerprint(decodeStunMessage(w.bytes())), false, "absent");
});
