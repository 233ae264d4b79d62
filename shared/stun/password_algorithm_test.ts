import assert from "node:assert/strict";
import { StunDecodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import {
  addPasswordAlgorithm,
  addPasswordAlgorithms,
  getPasswordAlgorithm,
  getPasswordAlgorithms,
  PasswordAlgorithm,
} from "./password_algorithm.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("password algorithm(s): entries with padded parameters round-trip", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0111, new Uint8Array(12));
  const entries = [
    { algorithm: PasswordAlgorithm.Sha256, parameters: new Uint8Array() },
    { algorithm: 0x7001, parameters: Uint8Array.of(9, 8, 7) },
    { algorithm: PasswordAlgorithm.Md5, parameters: new Uint8Array() },
  ];
  addPasswordAlgorithms(w, entries);
  addPasswordAlgorithm(w, entries[1]);
  assert.equal(
    w.bytes().subarray(20, 40).toHex(),
    "80020010" + "00020000" + "70010003090807" + "00" + "00010000",
  );
  const m = decodeStunMessage(w.bytes());
  assert.deepEqual(getPasswordAlgorithms(m), entries);
  assert.deepEqual(getPasswordAlgorithm(m), entries[1]);
});

Deno.test("password algorithm(s): cut-off entries are refused", () => {
  for (const hex of ["0002", "000200050102"]) {
    const w = new StunMessageWriter();
    w.startRaw(0x0111, new Uint8Array(12));
    w.addAttribute(0x8002, Uint8Array.fromHex(hex));
    w.addAttribute(0x001d, Uint8Array.fromHex(hex));
    const m = decodeStunMessage(w.bytes());
    assert.throws(() => getPasswordAlgorithms(m), StunDecodeError, hex);
    assert.throws(() => getPasswordAlgorithm(m), StunDecodeError, hex);
  }
  const w = new StunMessageWriter();
  w.startRaw(0x0001, new Uint8Array(12));
  w.addAttribute(0x001d, Uint8Array.fromHex("0001000000020000"));
  assert.throws(() => getPasswordAlgorithm(decodeStunMessage(w.bytes())), StunDecodeError);
});
