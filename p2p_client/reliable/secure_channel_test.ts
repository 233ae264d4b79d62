// The whole peer stack on a simulated path: handshake, AES-GCM sessions with their replay window,
// frames, and the reliable channel, with loss, duplication, reordering and an active attacker
// who injects tampered and replayed packets.
import assert from "node:assert/strict";
import { MAX_PEER_PACKET_BYTES } from "../../shared/peer/packet.ts";
import type { SecureSession } from "../../shared/peer/session.ts";
import { handshakenSessionPair } from "../../shared/peer/testing.ts";
import { ReliableChannel } from "./reliable_channel.ts";
import { type End, seededRandom, SimulatedNetwork } from "./simulated_network.ts";

async function sessions(): Promise<Record<End, SecureSession>> {
  const [a, b] = await handshakenSessionPair({
    initiatorIndex: 1,
    responderIndex: 2,
    now: () => 0,
  });
  return { a, b };
}

Deno.test("secure channel: exactly once and in order through loss, reordering and an attacker", async () => {
  const session = await sessions();
  const net = new SimulatedNetwork(77, { delayMs: 15, jitterMs: 25, loss: 0.08, duplicate: 0.05 });
  const random = seededRandom(78);
  const outbox: [End, Uint8Array][] = [];
  const inbox: [End, Uint8Array][] = [];
  const received: Record<End, Uint8Array[]> = { a: [], b: [] };
  const acknowledged: Record<End, number[]> = { a: [], b: [] };
  const channel = {} as Record<End, ReliableChannel>;
  const captured: Uint8Array[] = [];
  const outboxWire = {} as Record<End, (packet: Uint8Array) => void>;
  for (const end of ["a", "b"] as const) {
    channel[end] = new ReliableChannel({
      now: net.now,
      send: (frame) => outbox.push([end, frame]),
      deliver: (message) => received[end].push(message),
      onAcknowledged: (id) => acknowledged[end].push(id),
      onFailure: (error) => assert.fail(error),
    });
    const wire = net.sender(end);
    const other: End = end === "a" ? "b" : "a";
    net.attach(other, (packet) => inbox.push([other, packet]));
    // The attacker: sees every packet, sometimes forwards a tampered copy or replays an old one.
    outboxWire[end] = (packet: Uint8Array) => {
      assert.ok(packet.length <= MAX_PEER_PACKET_BYTES, `${packet.length} bytes`);
      captured.push(packet);
      wire(packet);
      if (random() < 0.03) {
        const tampered = packet.slice();
        tampered[Math.floor(random() * tampered.length)] ^= 1 << Math.floor(random() * 8);
        wire(tampered);
      }
      if (random() < 0.03) wire(captured[Math.floor(random() * captured.length)]);
    };
  }
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  const fromA = [big, ...Array.from({ length: 40 }, (_, i) => new Uint8Array(i * 97).fill(i))];
  const fromB = Array.from({ length: 30 }, (_, i) => new TextEncoder().encode(`reply ${i}`));
  for (const m of fromA) channel.a.sendMessage(m);
  fromB.forEach((m, i) => net.schedule(i * 30, () => channel.b.sendMessage(m)));
  let rejected = 0;
  const done = () =>
    acknowledged.a.length === fromA.length && acknowledged.b.length === fromB.length &&
    received.b.length === fromA.length && received.a.length === fromB.length;
  for (let steps = 0; steps < 500_000 && !done(); steps++) {
    while (outbox.length > 0 || inbox.length > 0) {
      for (const [end, frame] of outbox.splice(0)) outboxWire[end](await session[end].seal(frame));
      for (const [end, packet] of inbox.splice(0)) {
        const plaintext = await session[end].open(packet);
        if (plaintext === undefined) rejected++;
        else channel[end].receive(plaintext);
      }
    }
    if (!done() && !net.step([channel.a, channel.b], 300_000)) break;
  }
  assert.ok(done(), `not done at ${net.now()} ms`);
  assert.deepEqual(received.b, fromA);
  assert.deepEqual(received.a, fromB);
  // Tampered copies, replays and network duplicates were all refused by the sessions.
  assert.ok(rejected > 20, `${rejected} rejected`);
});
