import assert from "node:assert/strict";
import { parseClientMessage, parseServerMessage } from "./messages.ts";

const KEY = new Uint8Array(32).toBase64();
const SIG = new Uint8Array(64).toBase64();
const PEER = "0f".repeat(20);

Deno.test("messages: valid client messages parse", () => {
  const valid = [
    { type: "hello", version: 1, publicKey: KEY },
    { type: "register", signature: SIG, localAddresses: [{ host: "192.168.1.2", port: 4000 }] },
    { type: "addresses", localAddresses: [{ host: "::1", port: 1 }] },
    { type: "connect", peer: PEER, requestId: "r1" },
    { type: "connect", peer: PEER },
    { type: "ping", t: 1.5 },
    { type: "pong", t: 2 },
    { type: "bye" },
  ];
  for (const message of valid) assert.ok(parseClientMessage(message).ok, JSON.stringify(message));
});

Deno.test("messages: strict client schemas refuse unknown fields, types and bad values", () => {
  const invalid = [
    { type: "hello", version: 1, publicKey: KEY, extra: 1 },
    { type: "hello", version: "1", publicKey: KEY },
    { type: "hello", version: 1, publicKey: "short" },
    { type: "register", signature: KEY, localAddresses: [] },
    { type: "register", signature: SIG, localAddresses: [{ host: "example.com", port: 1 }] },
    { type: "register", signature: SIG, localAddresses: [{ host: "1.2.3.4", port: 0 }] },
    {
      type: "register",
      signature: SIG,
      localAddresses: Array.from({ length: 17 }, () => ({ host: "1.2.3.4", port: 5 })),
    },
    { type: "connect", peer: PEER.toUpperCase() },
    { type: "connect", peer: PEER, requestId: "x".repeat(65) },
    { type: "ping", t: "now" },
    { type: "ping" },
    { type: "registered" },
    { type: "nope" },
  ];
  for (const message of invalid) {
    const result = parseClientMessage(message);
    assert.equal(result.ok, false, JSON.stringify(message));
    if (!result.ok) assert.ok(result.error.length > 0);
  }
});

Deno.test("messages: server messages parse and are strict", () => {
  const introduce = {
    type: "introduce",
    peer: PEER,
    publicKey: KEY,
    candidates: [{ host: "198.18.0.5", port: 5000, kind: "public" }],
    role: "initiator",
    punchAt: 1000,
    serverTime: 800,
  };
  assert.ok(parseServerMessage(introduce).ok);
  assert.equal(parseServerMessage({ ...introduce, role: "boss" }).ok, false);
  assert.ok(
    parseServerMessage({ type: "error", code: "relay-quota", message: "m", peer: PEER, bytes: 3 })
      .ok,
  );
  assert.equal(parseServerMessage({ type: "error", code: "made-up", message: "m" }).ok, false);
  assert.ok(parseServerMessage({ type: "bye", reason: "replaced" }).ok);
  assert.equal(parseServerMessage({ type: "bye", reason: "whatever" }).ok, false);
  assert.ok(parseServerMessage({ type: "peer-left", peer: PEER, reason: "timeout" }).ok);
});

Deno.test("messages: candidates updates, per-side punch delays and registration nonces", () => {
  const candidates = parseServerMessage({
    type: "candidates",
    from: "ab".repeat(20),
    candidates: [{ host: "203.0.113.5", port: 4000, kind: "public" }],
  });
  assert.ok(candidates.ok);
  assert.ok(!parseServerMessage({ type: "candidates", from: "x", candidates: [] }).ok);
  const register = parseClientMessage({
    type: "register",
    signature: "A".repeat(86) + "==",
    localAddresses: [],
    registrationNonce: "n-1",
  });
  assert.ok(register.ok);
  assert.ok(
    !parseClientMessage({
      type: "register",
      signature: "A".repeat(86) + "==",
      localAddresses: [],
      registrationNonce: "x".repeat(65),
    }).ok,
    "a nonce is at most 64 characters",
  );
  assert.ok(
    parseServerMessage({ type: "bye", reason: "replaced", registrationNonce: "n-1" }).ok,
  );
  const introduce = {
    type: "introduce",
    peer: "ab".repeat(20),
    publicKey: "A".repeat(43) + "=",
    candidates: [],
    role: "initiator",
    punchAt: 2,
    serverTime: 1,
  };
  assert.ok(parseServerMessage({ ...introduce, punchInMs: 395 }).ok);
  assert.ok(!parseServerMessage({ ...introduce, punchInMs: -1 }).ok);
});

Deno.test("messages: the consent and admission messages of issue 11", () => {
  const id = "ab".repeat(20);
  assert.ok(parseClientMessage({ type: "introduce-answer", peer: id, accept: false }).ok);
  assert.ok(!parseClientMessage({ type: "introduce-answer", peer: id }).ok);
  assert.ok(parseClientMessage({ type: "drop", peer: id }).ok);
  assert.ok(
    parseClientMessage({
      type: "hello",
      version: 1,
      publicKey: "A".repeat(43) + "=",
      features: ["puzzle", "consent", "something-newer"],
    }).ok,
    "unknown features are ignored, not refused",
  );
  assert.ok(parseServerMessage({ type: "introduce-request", peer: id }).ok);
  assert.ok(parseServerMessage({ type: "peer-left", peer: id, reason: "dropped" }).ok);
  assert.ok(parseServerMessage({ type: "bye", reason: "evicted" }).ok);
  const challenge = { type: "challenge", version: 1, nonce: "A".repeat(43) + "=", serverTime: 1 };
  assert.ok(parseServerMessage({ ...challenge, puzzle: { bits: 12 } }).ok);
  assert.ok(!parseServerMessage({ ...challenge, puzzle: { bits: 40 } }).ok, "too hard");
  assert.ok(parseServerMessage({ type: "error", code: "server-busy", message: "x" }).ok);
  assert.ok(parseServerMessage({ type: "error", code: "bad-puzzle", message: "x" }).ok);
});
