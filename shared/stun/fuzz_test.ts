// Robustness and round-trip properties of the codec, seeded so every run checks the same cases.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addErrorCode,
  addFingerprint,
  addMappedAddress,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addSoftware,
  addUnknownAttributes,
  addUsername,
  addXorMappedAddress,
  decodeStunMessage,
  getAlternateDomain,
  getAlternateServer,
  getChangeRequest,
  getErrorCode,
  getMappedAddress,
  getNonce,
  getOtherAddress,
  getPasswordAlgorithm,
  getPasswordAlgorithms,
  getRealm,
  getResponseOrigin,
  getSoftware,
  getUnknownAttributes,
  getUserhash,
  getUsername,
  getXorMappedAddress,
  looksLikeStun,
  parseIpAddress,
  shortTermKey,
  StunClass,
  StunDecodeError,
  type StunMessage,
  StunMessageWriter,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "./mod.ts";

const SEED = 0x5354554e;
const VECTORS: Uint8Array[] = JSON.parse(
  await Deno.readTextFile(new URL("../../testdata/stun-rfc5769.json", import.meta.url)),
).vectors.map((v: { hex: string }) => Uint8Array.fromHex(v.hex));
const KEY = shortTermKey("VOkJxbRl1RmTxUk/WvJxBt");

/** Reads every attribute the codec knows; returns a plain summary (for equality checks). */
function readAll(message: StunMessage): unknown[] {
  const readers: ((m: StunMessage) => unknown)[] = [
    getXorMappedAddress,
    getMappedAddress,
    getAlternateServer,
    getResponseOrigin,
    getOtherAddress,
    getUsername,
    getRealm,
    getNonce,
    getSoftware,
    getAlternateDomain,
    getUserhash,
    getPasswordAlgorithm,
    getPasswordAlgorithms,
    getErrorCode,
    getUnknownAttributes,
    getChangeRequest,
    (m) => verifyMessageIntegrity(m, KEY),
    (m) => verifyMessageIntegritySha256(m, KEY),
    verifyFingerprint,
  ];
  return readers.map((read) => {
    try {
      return read(message);
    } catch (error) {
      if (!(error instanceof StunDecodeError)) throw error;
      return `error:${error.reason}`;
    }
  });
}

/**
 * Decodes `view` and summarises everything read from it, or names the decode error; checks
 * every attribute value lies inside `view`.
 */
function decodeOutcome(view: Uint8Array, allowLegacy: boolean): unknown {
  try {
    const message = decodeStunMessage(view, { allowLegacy });
    for (const attribute of message.attributes) {
      const start = attribute.value.byteOffset;
      assert.ok(start >= view.byteOffset, "attribute starts inside the input");
      assert.ok(start + attribute.value.length <= view.byteOffset + view.length, "ends inside");
    }
    return {
      type: message.type,
      cookie: message.magicCookie,
      tid: message.transactionId.toHex(),
      attributes: message.attributes.map((a) => [a.type, a.offset, a.value.toHex()]),
      unknown: message.unknownRequired,
      values: readAll(message),
    };
  } catch (error) {
    if (!(error instanceof StunDecodeError)) throw error;
    return `error:${error.reason}`;
  }
}

/** Decodes `bytes` placed inside a larger buffer full of junk and checks nothing leaks out. */
function decodeInsideJunk(bytes: Uint8Array, allowLegacy: boolean): unknown {
  const big = new Uint8Array(bytes.length + 64).fill(0xa5);
  big.set(bytes, 32);
  const outcome = decodeOutcome(big.subarray(32, 32 + bytes.length), allowLegacy);
  // Same outcome on an exact copy with different surroundings: nothing past the input was read.
  const alone = new Uint8Array(bytes.length + 64);
  alone.set(bytes, 0);
  const again = decodeOutcome(alone.subarray(0, bytes.length), allowLegacy);
  assert.deepEqual(again, outcome);
  // The cheap pre-check agrees with the decoder on the header.
  if (typeof outcome !== "string") assert.ok(looksLikeStun(bytes, allowLegacy));
  else if (looksLikeStun(bytes, allowLegacy)) {
    assert.ok(!["error:not-stun", "error:bad-magic-cookie", "error:bad-length"].includes(outcome));
  }
  return outcome;
}

/** A STUN-shaped message: valid header and well-framed random attributes. */
const stunShaped = fc.record({
  type: fc.integer({ min: 0, max: 0x3fff }),
  tid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
  attributes: fc.array(
    fc.record({
      type: fc.oneof(
        fc.constantFrom(
          0x0001,
          0x0003,
          0x0006,
          0x0008,
          0x0009,
          0x000a,
          0x0014,
          0x0015,
          0x001c,
          0x001d,
          0x001e,
          0x0020,
          0x8002,
          0x8003,
          0x8022,
          0x8023,
          0x8028,
          0x802b,
          0x802c,
        ),
        fc.integer({ min: 0, max: 0xffff }),
      ),
      value: fc.uint8Array({ maxLength: 40 }),
    }),
    { maxLength: 8 },
  ),
}).map(({ type, tid, attributes }) => {
  const writer = new StunMessageWriter(2048);
  writer.startRaw(type, tid);
  for (const attribute of attributes) writer.addAttribute(attribute.type, attribute.value);
  return writer.bytes().slice();
});

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("length" as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({
    kind: fc.constant("attribute-length" as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 0xffff }),
  }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ maxLength: 12 }) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = input.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    switch (m.kind) {
      case "flip":
        bytes[m.at % bytes.length] ^= 1 << m.bit;
        break;
      case "truncate":
        bytes = bytes.slice(0, m.at % (bytes.length + 1));
        break;
      case "length":
        if (bytes.length >= 4) new DataView(bytes.buffer).setUint16(2, m.value);
        break;
      case "attribute-length": {
        // Edit the length field of some attribute (walking the real framing when possible).
        let offset = 20;
        const targets: number[] = [];
        while (offset + 4 <= bytes.length) {
          targets.push(offset);
          offset += 4 + ((((bytes[offset + 2] << 8) | bytes[offset + 3]) + 3) & ~3);
        }
        if (targets.length > 0) {
          new DataView(bytes.buffer).setUint16(targets[m.at % targets.length] + 2, m.value);
        }
        break;
      }
      case "append": {
        const longer = new Uint8Array(bytes.length + m.bytes.length);
        longer.set(bytes);
        longer.set(m.bytes, bytes.length);
        bytes = longer;
        break;
      }
    }
  }
  return bytes;
}

Deno.test("fuzz: random bytes never make the decoder throw anything but StunDecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 160 }), fc.boolean(), (bytes, legacy) => {
      decodeInsideJunk(bytes, legacy);
    }),
    { seed: SEED, numRuns: 4000 },
  );
});

Deno.test("fuzz: bytes with a valid header and random framing", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.uint8Array({ maxLength: 120 }),
      (type, tid, body) => {
        const padded = body.subarray(0, body.length & ~3);
        const bytes = new Uint8Array(20 + padded.length);
        const view = new DataView(bytes.buffer);
        view.setUint16(0, type & 0x3fff);
        view.setUint16(2, padded.length);
        view.setUint32(4, 0x2112a442);
        bytes.set(tid, 8);
        bytes.set(padded, 20);
        decodeInsideJunk(bytes, false);
      },
    ),
    { seed: SEED + 1, numRuns: 4000 },
  );
});

Deno.test("fuzz: mutated RFC vectors and STUN-shaped messages", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom(...VECTORS), stunShaped),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (input, mutations, legacy) => {
        decodeInsideJunk(mutate(input, mutations), legacy);
      },
    ),
    { seed: SEED + 2, numRuns: 6000 },
  );
});

Deno.test("fuzz: STUN-shaped messages always decode to the attributes written", () => {
  fc.assert(
    fc.property(stunShaped, (bytes) => {
      const outcome = decodeInsideJunk(bytes, false);
      if (typeof outcome === "string") {
        // Only reason a well-framed message can be refused: something after FINGERPRINT.
        assert.equal(outcome, "error:attribute-after-fingerprint");
      }
    }),
    { seed: SEED + 3, numRuns: 3000 },
  );
});

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(":");
});

Deno.test("round trip: a Binding response with addresses, text, integrity and fingerprint", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.oneof(ipv4, ipv6),
      fc.oneof(ipv4, ipv6),
      fc.integer({ min: 0, max: 0xffff }),
      fc.string({ maxLength: 100 }),
      fc.string({ minLength: 1, maxLength: 60 }),
      fc.boolean(),
      (tid, xorHost, mappedHost, port, software, username, sha256) => {
        const writer = new StunMessageWriter();
        writer.start(0x001, StunClass.SuccessResponse, tid);
        addXorMappedAddress(writer, { hostname: xorHost, port });
        addMappedAddress(writer, { hostname: mappedHost, port: port ^ 0x5555 });
        addSoftware(writer, software);
        addUsername(writer, username);
        if (sha256) addMessageIntegritySha256(writer, KEY, 16);
        else addMessageIntegrity(writer, KEY);
        addFingerprint(writer);
        const message = decodeStunMessage(writer.bytes());
        assert.deepEqual(message.transactionId, tid);
        const xor = getXorMappedAddress(message)!;
        assert.deepEqual(parseIpAddress(xor.hostname), parseIpAddress(xorHost));
        assert.equal(xor.port, port);
        const mapped = getMappedAddress(message)!;
        assert.deepEqual(parseIpAddress(mapped.hostname), parseIpAddress(mappedHost));
        assert.equal(mapped.port, port ^ 0x5555);
        assert.equal(getSoftware(message), software);
        assert.equal(getUsername(message), username);
        assert.ok(
          sha256
            ? verifyMessageIntegritySha256(message, KEY)
            : verifyMessageIntegrity(message, KEY),
        );
        assert.ok(verifyFingerprint(message));
      },
    ),
    { seed: SEED + 4, numRuns: 1500 },
  );
});

Deno.test("round trip: error responses keep code, reason and unknown attributes", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 300, max: 699 }),
      fc.string({ maxLength: 100 }),
      fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 10 }),
      (code, reason, unknown) => {
        const writer = new StunMessageWriter();
        writer.start(0x001, StunClass.ErrorResponse, new Uint8Array(12));
        addErrorCode(writer, code, reason);
        addUnknownAttributes(writer, unknown);
        const message = decodeStunMessage(writer.bytes());
        assert.deepEqual(getErrorCode(message), { code, reason });
        assert.deepEqual(getUnknownAttributes(message), unknown);
      },
    ),
    { seed: SEED + 5, numRuns: 1000 },
  );
});
