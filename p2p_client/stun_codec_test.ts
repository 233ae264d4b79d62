import assert from "node:assert/strict";
import {
  addFingerprint,
  addMessageIntegrity,
  addXorMappedAddress,
  decodeStunMessage,
  getUsername,
  shortTermKey,
  StunClass,
  StunMessageWriter,
  StunMethod,
  verifyFingerprint,
  verifyMessageIntegrity,
} from "../shared/stun/mod.ts";
import { stunBindingCodec } from "./stun_codec.ts";

const ID = Uint8Array.fromHex("0102030405060708090a0b0c");

Deno.test("the Binding request carries USERNAME, a valid MESSAGE-INTEGRITY and FINGERPRINT", () => {
  const message = decodeStunMessage(stunBindingCodec.encodeRequest(ID, "user-1", "secret"));
  assert.equal(message.method, StunMethod.Binding);
  assert.equal(message.messageClass, StunClass.Request);
  assert.equal(getUsername(message), "user-1");
  assert.ok(verifyMessageIntegrity(message, shortTermKey("secret")));
  assert.ok(!verifyMessageIntegrity(message, shortTermKey("other")));
  assert.ok(verifyFingerprint(message));
});

function response(password: string): Uint8Array {
  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.SuccessResponse, ID);
  addXorMappedAddress(writer, { hostname: "198.18.0.7", port: 40000 });
  addMessageIntegrity(writer, shortTermKey(password));
  addFingerprint(writer);
  return writer.bytes().slice();
}

Deno.test("a response is accepted only with the right integrity", () => {
  assert.deepEqual(stunBindingCodec.decodeResponse(response("secret"), "secret"), {
    transactionId: ID,
    mapped: { host: "198.18.0.7", port: 40000 },
  });
  assert.equal(stunBindingCodec.decodeResponse(response("forged"), "secret"), undefined);
  assert.equal(stunBindingCodec.decodeResponse(new Uint8Array(10), "secret"), undefined);
});

Deno.test("a response with a malformed attribute is not a response, and never throws", () => {
  // An error response whose ERROR-CODE is too short to hold a code.
  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.ErrorResponse, ID);
  writer.addAttribute(0x0009, new Uint8Array([0, 0]));
  assert.equal(stunBindingCodec.decodeResponse(writer.bytes().slice(), "secret"), undefined);
  // A success response whose XOR-MAPPED-ADDRESS has an unknown family.
  const bad = new StunMessageWriter();
  bad.start(StunMethod.Binding, StunClass.SuccessResponse, ID);
  bad.addAttribute(0x0020, new Uint8Array([0, 9, 0, 0, 0, 0, 0, 0]));
  addMessageIntegrity(bad, shortTermKey("secret"));
  addFingerprint(bad);
  assert.equal(stunBindingCodec.decodeResponse(bad.bytes().slice(), "secret"), undefined);
});

Deno.test("the decoded transaction ID does not alias the receive buffer", () => {
  const bytes = response("secret");
  const decoded = stunBindingCodec.decodeResponse(bytes, "secret");
  bytes.fill(0);
  assert.deepEqual(decoded?.transactionId, ID);
});
