import assert from "node:assert/strict";
import fc from "fast-check";
import { PeerPacketError } from "./errors.ts";
import {
  classifyDatagram,
  decodePunch,
  encodePunch,
  HANDSHAKE_INIT_BYTES,
  HANDSHAKE_RESPONSE_BYTES,
  handshakeInitSenderId,
  handshakeResponseReceiverIndex,
  MIN_TRANSPORT_BYTES,
  PeerPacketType,
  PUNCH_BYTES,
  transportReceiverIndex,
} from "./packet.ts";

const A = "0123456789abcdef0123456789abcdef01234567";
const B = "fedcba9876543210fedcba9876543210fedcba98";

Deno.test("packet: PUNCH round trip and exact bytes", () => {
  const packet = encodePunch(A, B);
  assert.equal(packet.length, PUNCH_BYTES);
  assert.equal(packet[0], 0xe1);
  assert.equal(packet.subarray(1, 21).toHex(), A);
  assert.equal(packet.subarray(21).toHex(), B);
  assert.deepEqual(decodePunch(packet), { from: A, to: B });
  assert.equal(classifyDatagram(packet), PeerPacketType.Punch);
  assert.throws(() => decodePunch(packet.subarray(1)), PeerPacketError);
  assert.throws(() => encodePunch("alice", B), PeerPacketError);
});

Deno.test("packet: classification by first byte and size", () => {
  const stun = new Uint8Array(20);
  stun[1] = 1;
  assert.equal(classifyDatagram(stun), "stun");
  assert.equal(classifyDatagram(new Uint8Array(19)), undefined);
  assert.equal(classifyDatagram(new Uint8Array(0)), undefined);
  const sized = (type: number, length: number) => {
    const bytes = new Uint8Array(length);
    bytes[0] = type;
    return bytes;
  };
  assert.equal(classifyDatagram(sized(0xe2, HANDSHAKE_INIT_BYTES)), PeerPacketType.HandshakeInit);
  assert.equal(classifyDatagram(sized(0xe2, HANDSHAKE_INIT_BYTES + 1)), undefined);
  assert.equal(
    classifyDatagram(sized(0xe3, HANDSHAKE_RESPONSE_BYTES)),
    PeerPacketType.HandshakeResponse,
  );
  assert.equal(classifyDatagram(sized(0xe4, MIN_TRANSPORT_BYTES)), PeerPacketType.Transport);
  assert.equal(classifyDatagram(sized(0xe4, MIN_TRANSPORT_BYTES - 1)), undefined);
  assert.equal(classifyDatagram(sized(0xe4, 1200)), PeerPacketType.Transport);
  assert.equal(classifyDatagram(sized(0xe4, 1201)), undefined);
  assert.equal(classifyDatagram(sized(0x80, 100)), undefined);
  const transport = sized(0xe4, 40);
  transport.set([0xde, 0xad, 0xbe, 0xef], 1);
  assert.equal(transportReceiverIndex(transport), 0xdeadbeef);
  assert.equal(transportReceiverIndex(sized(0xe3, 40)), undefined);
  const response = sized(0xe3, HANDSHAKE_RESPONSE_BYTES);
  response.set([0, 0, 1, 2], 5);
  assert.equal(handshakeResponseReceiverIndex(response), 258);
  const init = sized(0xe2, HANDSHAKE_INIT_BYTES);
  init.set(Uint8Array.fromHex(A), 5);
  assert.equal(handshakeInitSenderId(init), A);
});

Deno.test("packet: decoders never throw anything but PeerPacketError (seeded)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => {
      classifyDatagram(bytes);
      transportReceiverIndex(bytes);
      handshakeResponseReceiverIndex(bytes);
      handshakeInitSenderId(bytes);
      try {
        decodePunch(bytes);
      } catch (error) {
        assert.ok(error instanceof PeerPacketError);
      }
    }),
    { seed: 4242, numRuns: 2000 },
  );
});
