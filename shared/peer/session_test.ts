import assert from "node:assert/strict";
import { SessionExpiredError } from "./errors.ts";
import {
  classifyDatagram,
  MAX_LARGE_PEER_PACKET_BYTES,
  MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES,
  MAX_PEER_PACKET_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
  PeerPacketType,
  transportReceiverIndex,
} from "./packet.ts";
import { handshakenSessionPair } from "./testing.ts";

const sessions = () =>
  handshakenSessionPair({ initiatorIndex: 42, responderIndex: 0xfeed_beef, now: () => 1 });

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("session: packets carry the receiver index and fit the size limit", async () => {
  const [a, b] = await sessions();
  const packet = await a.seal(new Uint8Array(MAX_TRANSPORT_PLAINTEXT_BYTES));
  assert.equal(packet.length, MAX_PEER_PACKET_BYTES);
  assert.equal(transportReceiverIndex(packet), 0xfeed_beef);
  assert.equal(transportReceiverIndex(await b.seal(new Uint8Array(0))), 42);
  const large = await a.seal(new Uint8Array(MAX_TRANSPORT_PLAINTEXT_BYTES + 1));
  assert.equal(classifyDatagram(large), PeerPacketType.TransportLarge);
  assert.equal(
    (await a.seal(new Uint8Array(MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES))).length,
    MAX_LARGE_PEER_PACKET_BYTES,
  );
  await assert.rejects(
    () => a.seal(new Uint8Array(MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES + 1)),
    RangeError,
  );
});

Deno.test("session: 0xE4 until the peer sends an authentic 0xE5, then 0xE5 both ways", async () => {
  const [a, b] = await sessions();
  assert.equal(a.peerReadsLarge, false);
  const small = a.sealSync(text("hi"));
  assert.equal(classifyDatagram(small), PeerPacketType.Transport);
  assert.deepEqual(b.openSync(small), text("hi"));
  // A forged 0xE5 (a valid 0xE4 with its type byte changed) opens nothing and teaches nothing.
  const forged = a.sealSync(text("x"));
  forged[0] = PeerPacketType.TransportLarge;
  assert.equal(b.openSync(forged), undefined);
  assert.equal(b.peerReadsLarge, false);
  // A probe sealed large: the receiver learns that its peer reads 0xE5.
  const probe = a.sealLargeSync(text("probe"));
  assert.equal(classifyDatagram(probe), PeerPacketType.TransportLarge);
  assert.deepEqual(b.openSync(probe), text("probe"));
  assert.equal(b.peerReadsLarge, true);
  const answer = b.sealSync(text("answer"));
  assert.equal(classifyDatagram(answer), PeerPacketType.TransportLarge);
  assert.deepEqual(a.openSync(answer), text("answer"));
  assert.equal(a.peerReadsLarge, true);
  assert.equal(classifyDatagram(a.sealSync(text("then"))), PeerPacketType.TransportLarge);
  // Every byte of a large packet is authenticated; both types share one replay window.
  const big = a.sealSync(new Uint8Array(20_000).fill(7));
  for (const at of [0, 3, 9, 13, 10_000, big.length - 1]) {
    const tampered = big.slice();
    tampered[at] ^= 1;
    assert.equal(b.openSync(tampered), undefined, `byte ${at}`);
  }
  assert.deepEqual(b.openSync(big), new Uint8Array(20_000).fill(7));
  assert.equal(b.openSync(big), undefined);
  assert.equal(b.openSync(probe), undefined);
});

Deno.test("session: a session told the peer reads 0xE5 seals it from the first packet", async () => {
  const [a] = await sessions();
  const { SecureSession } = await import("./session.ts");
  const fast = new SecureSession({
    remoteId: a.remoteId,
    localIndex: 1,
    remoteIndex: 2,
    isInitiator: true,
    sendKey: new Uint8Array(32).fill(1),
    receiveKey: new Uint8Array(32).fill(2),
    createdAt: 0,
    peerReadsLarge: true,
  });
  const peer = new SecureSession({
    remoteId: a.remoteId,
    localIndex: 2,
    remoteIndex: 1,
    isInitiator: false,
    sendKey: new Uint8Array(32).fill(2),
    receiveKey: new Uint8Array(32).fill(1),
    createdAt: 0,
  });
  const packet = fast.sealSync(text("x"));
  assert.equal(classifyDatagram(packet), PeerPacketType.TransportLarge);
  assert.deepEqual(peer.openSync(packet), text("x"));
});

Deno.test("session: tampered packets are refused", async () => {
  const [a, b] = await sessions();
  const packet = await a.seal(text("hello world"));
  for (let i = 0; i < packet.length; i++) {
    const tampered = packet.slice();
    tampered[i] ^= 0x40;
    assert.equal(await b.open(tampered), undefined, `byte ${i}`);
  }
  assert.equal(await b.open(packet.subarray(0, packet.length - 1)), undefined);
  // Our own packet is not for us (wrong index and key).
  assert.equal(await a.open(packet), undefined);
  assert.deepEqual(await b.open(packet), text("hello world"));
});

Deno.test("session: replays are refused, reordering within the window accepted once", async () => {
  const [a, b] = await sessions();
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) packets.push(await a.seal(text(`m${i}`)));
  assert.deepEqual(await b.open(packets[10]), text("m10"));
  assert.equal(await b.open(packets[10]), undefined);
  assert.deepEqual(await b.open(packets[5]), text("m5"));
  assert.equal(await b.open(packets[5]), undefined);
  // Jump far ahead: counters older than the 2048-packet window are then refused.
  assert.deepEqual(await b.open(packets[2999]), text("m2999"));
  assert.equal(await b.open(packets[900]), undefined);
  assert.deepEqual(await b.open(packets[2000]), text("m2000"));
  assert.equal(await b.open(packets[2000]), undefined);
  // Concurrent opens of one packet: exactly one succeeds.
  const results = await Promise.all([b.open(packets[2500]), b.open(packets[2500])]);
  assert.equal(results.filter((r) => r !== undefined).length, 1);
});

Deno.test("session: a closed session neither seals nor opens", async () => {
  const [a, b] = await sessions();
  const packet = await a.seal(text("x"));
  b.close();
  assert.equal(b.closed, true);
  assert.equal(await b.open(packet), undefined);
  await assert.rejects(() => b.seal(text("y")), SessionExpiredError);
});

Deno.test("session: synchronous seal and open match the promise forms", async () => {
  const [a, b] = await sessions();
  const first = a.sealSync(text("one"));
  const second = await a.seal(text("two"));
  assert.equal(first[5 + 7], 0); // counter 0
  assert.equal(second[5 + 7], 1); // counter 1
  assert.deepEqual(b.openSync(second), text("two"));
  assert.deepEqual(await b.open(first), text("one"));
  assert.equal(b.openSync(first), undefined);
  assert.equal(Object.getPrototypeOf(b.openSync(a.sealSync(text("x")))), Uint8Array.prototype);
  a.close();
  assert.throws(() => a.sealSync(text("y")), SessionExpiredError);
});

Deno.test("session: sealing head and tail apart equals sealing them joined", async () => {
  const [a, b] = await sessions();
  const head = text("head:");
  const tail = new Uint8Array(5000).fill(3);
  const packet = a.sealPartsSync(head, tail);
  assert.equal(classifyDatagram(packet), PeerPacketType.TransportLarge);
  const joined = new Uint8Array(head.length + tail.length);
  joined.set(head);
  joined.set(tail, head.length);
  assert.deepEqual(b.openSync(packet), joined);
  assert.deepEqual(b.openSync(a.sealPartsSync(head, new Uint8Array(0))), head);
  assert.throws(
    () => a.sealPartsSync(head, new Uint8Array(MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES)),
    RangeError,
  );
});
