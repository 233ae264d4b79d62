import assert from "node:assert/strict";
import { SessionExpiredError } from "./errors.ts";
import {
  MAX_PEER_PACKET_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
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
  await assert.rejects(() => a.seal(new Uint8Array(MAX_TRANSPORT_PLAINTEXT_BYTES + 1)), RangeError);
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
