import assert from "node:assert/strict";
import { StunEncodeError } from "./errors.ts";
import { opaqueString, saslPrep } from "./string_prep.ts";

Deno.test("string prep: SASLprep of the RFC 5769 2.4 password and RFC 4013 examples", () => {
  assert.equal(saslPrep("The\u00ADM\u00AAtr\u2168"), "TheMatrIX");
  assert.equal(saslPrep("I\u00ADX"), "IX");
  assert.equal(saslPrep("user"), "user");
  assert.equal(saslPrep("\u00AA"), "a");
  assert.equal(saslPrep("\u2168"), "IX");
  assert.equal(saslPrep("a\u00A0b"), "a b");
  assert.throws(() => saslPrep("\u0007"), StunEncodeError);
  assert.throws(() => saslPrep("a\uE000"), StunEncodeError);
});

Deno.test("string prep: OpaqueString keeps ASCII and compatibility characters, refuses controls", () => {
  assert.equal(opaqueString("VOkJxbRl1RmTxUk/WvJxBt"), "VOkJxbRl1RmTxUk/WvJxBt");
  assert.equal(opaqueString("\u2168"), "\u2168", "no compatibility mapping in OpaqueString");
  assert.equal(opaqueString("e\u0301"), "\u00E9", "NFC");
  assert.equal(opaqueString("a\u3000b"), "a b");
  assert.throws(() => opaqueString(""), StunEncodeError);
  assert.throws(() => opaqueString("a\u0000"), StunEncodeError);
  assert.throws(() => opaqueString("The\u00ADMatrix"), StunEncodeError, "soft hyphen is ignorable");
});
