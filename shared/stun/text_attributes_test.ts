import assert from "node:assert/strict";
import { AttributeType } from "./constants.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import {
  addAlternateDomain,
  addNonce,
  addRealm,
  addSoftware,
  addUsername,
  decodeTextValue,
  getAlternateDomain,
  getNonce,
  getRealm,
  getSoftware,
  getUsername,
} from "./text_attributes.ts";
import { StunMessageWriter } from "./writer.ts";

Deno.test("text attributes: UTF-8 round trip of every text attribute", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0001, new Uint8Array(12));
  addUsername(w, "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9");
  addRealm(w, "example.org");
  addNonce(w, "f//499k954d6OL34oL9FSTvy64sA");
  addSoftware(w, "p2p \u{1F600}");
  addAlternateDomain(w, "stun.example.org");
  const m = decodeStunMessage(w.bytes());
  assert.equal(getUsername(m), "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9");
  assert.equal(getRealm(m), "example.org");
  assert.equal(getNonce(m), "f//499k954d6OL34oL9FSTvy64sA");
  assert.equal(getSoftware(m), "p2p \u{1F600}");
  assert.equal(getAlternateDomain(m), "stun.example.org");
  assert.equal(m.get(AttributeType.Username)!.value.length, 18);
});

Deno.test("text attributes: limits and invalid UTF-8", () => {
  assert.throws(
    () => decodeTextValue(AttributeType.Username, new Uint8Array(513).fill(0x61)),
    StunDecodeError,
  );
  assert.equal(decodeTextValue(AttributeType.Username, new Uint8Array(512).fill(0x61)).length, 512);
  assert.throws(
    () => decodeTextValue(AttributeType.Software, new Uint8Array(128).fill(0x61)),
    StunDecodeError,
    "128 characters",
  );
  assert.throws(() => decodeTextValue(AttributeType.Realm, Uint8Array.of(0xff)), StunDecodeError);
  const w = new StunMessageWriter();
  w.startRaw(0x0001, new Uint8Array(12));
  assert.throws(() => addSoftware(w, "x".repeat(128)), StunEncodeError);
  assert.throws(() => addUsername(w, "x".repeat(513)), StunEncodeError);
  assert.equal(w.length, 20);
});
