import assert from "node:assert/strict";
import {
  addXorPeerAddress,
  addXorRelayedAddress,
  decodeStunMessage,
  getXorPeerAddresses,
  getXorRelayedAddress,
  StunDecodeError,
  StunMessageWriter,
} from "./mod.ts";

Deno.test("turn address: XOR-PEER/RELAYED-ADDRESS round-trip for both families", () => {
  const writer = new StunMessageWriter();
  writer.startRaw(0x0008, Uint8Array.fromHex("b7e7a701bc34d686fa87dfae"));
  addXorPeerAddress(writer, { hostname: "192.0.2.1", port: 32853 });
  addXorPeerAddress(writer, { hostname: "2001:db8:1234:5678:11:2233:4455:6677", port: 1 });
  addXorRelayedAddress(writer, { hostname: "198.51.100.9", port: 65535 });
  const message = decodeStunMessage(writer.bytes());
  assert.deepEqual(getXorPeerAddresses(message), [
    { family: "IPv4", hostname: "192.0.2.1", port: 32853 },
    { family: "IPv6", hostname: "2001:db8:1234:5678:11:2233:4455:6677", port: 1 },
  ]);
  assert.deepEqual(getXorRelayedAddress(message), {
    family: "IPv4",
    hostname: "198.51.100.9",
    port: 65535,
  });
  // RFC 5769 2.2's XOR-MAPPED-ADDRESS bytes, as XOR-PEER-ADDRESS: same encoding.
  assert.equal(writer.bytes().subarray(20, 32).toHex(), "001200080001a147e112a643");
});

Deno.test("turn address: a malformed XOR-PEER-ADDRESS throws StunDecodeError", () => {
  const bytes = Uint8Array.fromHex("000800082112a442000000000000000000000000" + "0012000400030000");
  assert.throws(() => getXorPeerAddresses(decodeStunMessage(bytes)), StunDecodeError);
});
