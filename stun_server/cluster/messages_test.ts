import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BUS_KIND_CHANGES,
  BUS_KIND_CONTROL,
  type BusControl,
  clusterSubjects,
  decodeBusMessage,
  decodeLinkAnnouncement,
  encodeBusChanges,
  encodeBusControl,
  encodeBusRelay,
  encodeLinkAnnouncement,
  MAX_BUS_CONTROL_BYTES,
  MAX_CHANGES_BATCH,
  MAX_PRESENCE_BATCH,
  type PresenceChange,
} from "./messages.ts";
import { MAX_RELAY_PAYLOAD } from "../../shared/signaling/mod.ts";

const A = "ab".repeat(20);
const B = "cd".repeat(20);

const samples: BusControl[] = [
  { type: "lease", node: "node-1", incarnation: "0123456789abcdef", leaseMs: 3000 },
  { type: "announce", node: "n", id: A, epoch: 1_767_225_600_000 },
  { type: "withdraw", node: "n", id: A, epoch: 5 },
  { type: "presence", node: "n", entries: [[A, 1], [B, 2]] },
  { type: "sync", node: "n_2" },
  {
    type: "introduce",
    node: "n",
    from: A,
    to: B,
    publicKey: "x".repeat(44),
    candidates: [{ host: "198.51.100.7", port: 4000, kind: "public" }, {
      host: "::1",
      port: 9,
      kind: "local",
    }],
    rttMs: -1,
    requestId: "r1",
  },
  {
    type: "introduced",
    node: "n",
    from: A,
    to: B,
    publicKey: "y".repeat(44),
    candidates: [],
    leadMs: 200,
  },
  {
    type: "refused",
    node: "n",
    from: A,
    to: B,
    code: "relay-queue-full",
    message: "full",
    bytes: 1000,
  },
  { type: "refused", node: "n", from: A, to: B, code: "unknown-peer", message: "gone" },
  { type: "peer-left", node: "n", from: A, to: B, reason: "timeout" },
];

Deno.test("bus codec: every control message survives a round trip", () => {
  for (const message of samples) {
    const bytes = encodeBusControl(message);
    assert.equal(bytes[0], BUS_KIND_CONTROL);
    const result = decodeBusMessage(bytes);
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.message, message);
  }
});

Deno.test("bus codec: relay frames carry both IDs and the payload untouched", () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 20, maxLength: 20 }),
    fc.uint8Array({ minLength: 20, maxLength: 20 }),
    fc.uint8Array({ minLength: 1, maxLength: 2000 }),
    (from, to, payload) => {
      const result = decodeBusMessage(encodeBusRelay(from, to, payload));
      assert.ok(result.ok);
      assert.equal(result.message.type, "relay");
      if (result.message.type !== "relay") return;
      assert.equal(result.message.from, from.toHex());
      assert.equal(result.message.to, to.toHex());
      assert.deepEqual(result.message.payload, payload);
    },
  ));
  const id = new Uint8Array(20);
  assert.throws(() => encodeBusRelay(id, id, new Uint8Array(0)), RangeError);
  assert.throws(() => encodeBusRelay(id, id, new Uint8Array(MAX_RELAY_PAYLOAD + 1)), RangeError);
  assert.throws(() => encodeBusRelay(new Uint8Array(19), id, new Uint8Array(1)), RangeError);
  assert.ok(decodeBusMessage(encodeBusRelay(id, id, new Uint8Array(MAX_RELAY_PAYLOAD))).ok);
});

Deno.test("bus codec: malformed payloads are refused, never thrown", () => {
  const bad: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([9, 1, 2]),
    new Uint8Array(41).fill(0).map((_, i) => (i === 0 ? 2 : 0)), // relay without payload
    new Uint8Array([1, 0xff, 0xfe]), // not UTF-8
    new Uint8Array([1, ...new TextEncoder().encode("[1,2]")]),
    new Uint8Array([1, ...new TextEncoder().encode('{"type":"nope","node":"n"}')]),
    new Uint8Array([1, ...new TextEncoder().encode('{"type":"sync","node":"a.b"}')]), // dot in name
    new Uint8Array([1, ...new TextEncoder().encode('{"type":"sync","node":"n","x":1}')]), // strict
    new Uint8Array([
      1,
      ...new TextEncoder().encode(`{"type":"announce","node":"n","id":"${A}","epoch":-1}`),
    ]),
    new Uint8Array(2 + MAX_BUS_CONTROL_BYTES).fill(0x20).map((v, i) => (i === 0 ? 1 : v)),
  ];
  for (const bytes of bad) {
    const result = decodeBusMessage(bytes);
    assert.equal(result.ok, false, `accepted ${bytes.subarray(0, 40)}`);
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    decodeBusMessage(bytes); // must not throw
  }));
});

Deno.test("bus subjects: one per node and kind, and a checked prefix", () => {
  const s = clusterSubjects("prod.p2p");
  assert.equal(s.lease, "prod.p2p.lease");
  assert.equal(s.presence, "prod.p2p.presence");
  assert.equal(s.node("a"), "prod.p2p.node.a");
  assert.equal(s.relay("a"), "prod.p2p.relay.a");
  assert.throws(() => clusterSubjects("a..b"), RangeError);
  assert.throws(() => clusterSubjects("a.>"), RangeError);
});

Deno.test("bus codec: a full presence batch fits the control size limit", () => {
  const entries: [string, number][] = [];
  for (let i = 0; i < MAX_PRESENCE_BATCH; i++) {
    entries.push([i.toString(16).padStart(40, "f"), Number.MAX_SAFE_INTEGER]);
  }
  const bytes = encodeBusControl({ type: "presence", node: "n".repeat(64), entries });
  assert.ok(bytes.length - 1 <= MAX_BUS_CONTROL_BYTES, `${bytes.length} bytes`);
  assert.ok(decodeBusMessage(bytes).ok);
});

Deno.test("bus codec: presence changes survive a round trip, and malformed ones are refused", () => {
  const changes: PresenceChange[] = [
    { op: "announce", id: A, epoch: Number.MAX_SAFE_INTEGER, nonce: "n-1" },
    { op: "announce", id: B, epoch: 0 },
    { op: "withdraw", id: A, epoch: 1_767_225_600_000 },
    { op: "announce", id: B, epoch: 9, nonce: "€".repeat(64) }, // 64 characters, 192 bytes
  ];
  const bytes = encodeBusChanges("node-1", changes);
  assert.equal(bytes[0], BUS_KIND_CHANGES);
  const result = decodeBusMessage(bytes);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.message, { type: "changes", node: "node-1", changes });
  const full = Array.from({ length: MAX_CHANGES_BATCH }, (_, i): PresenceChange => ({
    op: "announce",
    id: A,
    epoch: i,
    nonce: "😀".repeat(32),
  }));
  const fullBytes = encodeBusChanges("n".repeat(64), full);
  assert.ok(fullBytes.length - 1 <= MAX_BUS_CONTROL_BYTES, `${fullBytes.length} bytes`);
  assert.ok(decodeBusMessage(fullBytes).ok);
  assert.throws(() => encodeBusChanges("a.b", []), RangeError);
  assert.throws(() => encodeBusChanges("a", [...full, full[0]]), RangeError);
  assert.throws(() => encodeBusChanges("a", [{ op: "announce", id: "x", epoch: 1 }]), RangeError);
  assert.throws(() => encodeBusChanges("a", [{ op: "announce", id: A, epoch: -1 }]), RangeError);
  assert.throws(
    () => encodeBusChanges("a", [{ op: "announce", id: A, epoch: 1, nonce: "x".repeat(65) }]),
    RangeError,
  );
  const one = encodeBusChanges("a", [{ op: "withdraw", id: A, epoch: 5 }]);
  const bad: Uint8Array[] = [
    one.subarray(0, one.length - 1), // truncated
    new Uint8Array([...one, 0]), // trailing byte
    one.map((v, i) => (i === 5 ? 3 : v)), // unknown op
    one.map((v, i) => (i === 2 ? 0x2e : v)), // node name "."
    one.map((v, i) => (i === 26 ? 0xff : v)), // epoch beyond 2^53
    new Uint8Array([...one.subarray(0, one.length - 1), 1, 0x41]), // a withdrawal with a nonce
    one.map((v, i) => (i === 4 ? 0xff : v)), // count 255 > the batch limit
  ];
  for (const payload of bad) {
    const decoded = decodeBusMessage(payload);
    assert.equal(decoded.ok, false, `accepted ${payload}`);
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
    decodeBusMessage(new Uint8Array([BUS_KIND_CHANGES, ...tail])); // must not throw
  }));
});

Deno.test("link announcements name a port or an abstract socket, exactly one", () => {
  const group = "0123456789abcdef";
  const socket = "ab".repeat(16);
  for (const link of [{ port: 4000 }, { socket }]) {
    const bytes = encodeLinkAnnouncement({ type: "link", node: "w-1", group, ...link });
    assert.deepEqual(decodeLinkAnnouncement(bytes), { type: "link", node: "w-1", group, ...link });
  }
  for (const link of [{}, { port: 4000, socket }, { socket: "AB".repeat(16) }, { port: 0 }]) {
    const json = JSON.stringify({ type: "link", node: "w-1", group, ...link });
    const bytes = new Uint8Array([BUS_KIND_CONTROL, ...new TextEncoder().encode(json)]);
    assert.equal(decodeLinkAnnouncement(bytes), null, json);
  }
});
