import assert from "node:assert/strict";
import {
  addFingerprint,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addNonce,
  addPasswordAlgorithm,
  addRealm,
  addSoftware,
  addUserhash,
  addUsername,
  addXorMappedAddress,
  AttributeType,
  computeUserhash,
  decodeStunMessage,
  getNonce,
  getPasswordAlgorithm,
  getRealm,
  getSoftware,
  getUserhash,
  getUsername,
  getXorMappedAddress,
  longTermKey,
  PasswordAlgorithm,
  saslPrep,
  shortTermKey,
  StunClass,
  StunMessageWriter,
  StunMethod,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "./mod.ts";

interface Vector {
  name: string;
  hex: string;
  software?: string;
  username?: string;
  password: string;
  password_before_saslprep?: string;
  credential: "short-term" | "long-term";
  transaction_id: string;
  attributes?: string[];
  xor_mapped_address?: { family: "IPv4" | "IPv6"; address: string; port: number };
  nonce?: string;
  realm?: string;
  password_algorithm?: string;
  userhash_hex?: string;
}

const VECTORS: Vector[] = JSON.parse(
  await Deno.readTextFile(new URL("../../testdata/stun-rfc5769.json", import.meta.url)),
).vectors;

function vector(name: string): Vector {
  const found = VECTORS.find((v) => v.name === name);
  assert.ok(found, `vector ${name} is in testdata`);
  return found;
}

const NAMES: Record<string, number> = {
  SOFTWARE: AttributeType.Software,
  PRIORITY: AttributeType.Priority,
  "ICE-CONTROLLED": AttributeType.IceControlled,
  USERNAME: AttributeType.Username,
  "MESSAGE-INTEGRITY": AttributeType.MessageIntegrity,
  FINGERPRINT: AttributeType.Fingerprint,
};

Deno.test("vectors: testdata holds the five RFC 5769 / RFC 8489 B.1 vectors", () => {
  assert.deepEqual(VECTORS.map((v) => v.name), [
    "sample-request",
    "sample-ipv4-response",
    "sample-ipv6-response",
    "sample-request-long-term",
    "sample-request-long-term-sha256",
  ]);
});

Deno.test("vectors: RFC 5769 2.1 sample request decodes, verifies and re-encodes", () => {
  const v = vector("sample-request");
  const bytes = Uint8Array.fromHex(v.hex);
  const message = decodeStunMessage(bytes);
  assert.equal(message.method, StunMethod.Binding);
  assert.equal(message.messageClass, StunClass.Request);
  assert.equal(message.transactionId.toHex(), v.transaction_id);
  assert.deepEqual(message.attributes.map((a) => a.type), v.attributes!.map((n) => NAMES[n]));
  assert.deepEqual(message.unknownRequired, [], "PRIORITY is known to the codec");
  assert.equal(getSoftware(message), v.software);
  assert.equal(getUsername(message), v.username);
  const priority = message.get(AttributeType.Priority)!.value;
  const controlled = message.get(AttributeType.IceControlled)!.value;
  assert.equal(priority.toHex(), "6e0001ff");
  assert.equal(controlled.toHex(), "932ff9b151263b36");
  const key = shortTermKey(v.password);
  assert.ok(verifyMessageIntegrity(message, key));
  assert.ok(verifyFingerprint(message));
  assert.equal(verifyMessageIntegrity(message, shortTermKey(v.password + "x")), false);

  const writer = new StunMessageWriter();
  writer.paddingByte = 0x20; // the vector pads USERNAME with spaces
  writer.start(StunMethod.Binding, StunClass.Request, Uint8Array.fromHex(v.transaction_id));
  addSoftware(writer, v.software!);
  writer.addAttribute(AttributeType.Priority, priority);
  writer.addAttribute(AttributeType.IceControlled, controlled);
  addUsername(writer, v.username!);
  addMessageIntegrity(writer, key);
  addFingerprint(writer);
  assert.equal(writer.bytes().toHex(), v.hex);
});

for (const name of ["sample-ipv4-response", "sample-ipv6-response"]) {
  Deno.test(`vectors: ${name} decodes, verifies and re-encodes`, () => {
    const v = vector(name);
    const message = decodeStunMessage(Uint8Array.fromHex(v.hex));
    assert.equal(message.method, StunMethod.Binding);
    assert.equal(message.messageClass, StunClass.SuccessResponse);
    assert.equal(message.transactionId.toHex(), v.transaction_id);
    assert.equal(getSoftware(message), v.software);
    const expected = v.xor_mapped_address!;
    assert.deepEqual(getXorMappedAddress(message), {
      family: expected.family,
      hostname: expected.address,
      port: expected.port,
    });
    const key = shortTermKey(v.password);
    assert.ok(verifyMessageIntegrity(message, key));
    assert.ok(verifyFingerprint(message));

    const writer = new StunMessageWriter();
    writer.paddingByte = 0x20; // the vector pads SOFTWARE with a space
    writer.start(
      StunMethod.Binding,
      StunClass.SuccessResponse,
      Uint8Array.fromHex(v.transaction_id),
    );
    addSoftware(writer, v.software!);
    addXorMappedAddress(writer, { hostname: expected.address, port: expected.port });
    addMessageIntegrity(writer, key);
    addFingerprint(writer);
    assert.equal(writer.bytes().toHex(), v.hex);
  });
}

Deno.test("vectors: RFC 5769 2.4 long-term request (MD5 key, SASLprep password)", () => {
  const v = vector("sample-request-long-term");
  assert.equal(saslPrep(v.password_before_saslprep!), v.password);
  const message = decodeStunMessage(Uint8Array.fromHex(v.hex));
  assert.equal(message.messageClass, StunClass.Request);
  assert.equal(message.transactionId.toHex(), v.transaction_id);
  assert.deepEqual(message.attributes.map((a) => a.type), [
    AttributeType.Username,
    AttributeType.Nonce,
    AttributeType.Realm,
    AttributeType.MessageIntegrity,
  ]);
  assert.equal(getUsername(message), v.username);
  assert.equal(getNonce(message), v.nonce);
  assert.equal(getRealm(message), v.realm);
  const key = longTermKey(v.username!, v.realm!, v.password, "MD5");
  assert.ok(verifyMessageIntegrity(message, key));
  assert.equal(verifyMessageIntegrity(message, longTermKey(v.username!, v.realm!, "x")), false);

  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.Request, Uint8Array.fromHex(v.transaction_id));
  addUsername(writer, v.username!);
  addNonce(writer, v.nonce!);
  addRealm(writer, v.realm!);
  addMessageIntegrity(writer, key);
  assert.equal(writer.bytes().toHex(), v.hex);
});

Deno.test("vectors: RFC 8489 B.1 long-term request (SHA-256 key, USERHASH)", () => {
  const v = vector("sample-request-long-term-sha256");
  const message = decodeStunMessage(Uint8Array.fromHex(v.hex));
  assert.equal(message.transactionId.toHex(), v.transaction_id);
  assert.deepEqual(message.attributes.map((a) => a.type), [
    AttributeType.Userhash,
    AttributeType.Nonce,
    AttributeType.Realm,
    AttributeType.PasswordAlgorithm,
    AttributeType.MessageIntegritySha256,
  ]);
  const userhash = computeUserhash(v.username!, v.realm!);
  assert.equal(userhash.toHex(), v.userhash_hex);
  assert.deepEqual(getUserhash(message), userhash);
  assert.equal(getNonce(message), v.nonce);
  assert.equal(getRealm(message), v.realm);
  const algorithm = getPasswordAlgorithm(message)!;
  assert.equal(algorithm.algorithm, PasswordAlgorithm.Sha256);
  assert.equal(algorithm.parameters.length, 0);
  const key = longTermKey(v.username!, v.realm!, v.password, "SHA-256");
  assert.ok(verifyMessageIntegritySha256(message, key));
  assert.equal(
    verifyMessageIntegritySha256(message, longTermKey(v.username!, v.realm!, v.password, "MD5")),
    false,
  );

  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.Request, Uint8Array.fromHex(v.transaction_id));
  addUserhash(writer, userhash);
  addNonce(writer, v.nonce!);
  addRealm(writer, v.realm!);
  addPasswordAlgorithm(writer, algorithm);
  addMessageIntegritySha256(writer, key);
  assert.equal(writer.bytes().toHex(), v.hex);
});
