import assert from "node:assert/strict";
import { decodeStunMessage } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";
import { addXorMappedAddress, getXorMappedAddress } from "./xor_address.ts";

const TID = Uint8Array.fromHex("b7e7a701bc34d686fa87dfae");

Deno.test("xor address: RFC 5769 values (IPv4 and IPv6 XOR with cookie and transaction ID)", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0101, TID);
  addXorMappedAddress(w, { hostname: "192.0.2.1", port: 32853 });
  assert.equal(w.bytes().subarray(20).toHex(), "002000080001a147e112a643");
  w.startRaw(0x0101, TID);
  addXorMappedAddress(w, { hostname: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 });
  assert.equal(
    w.bytes().subarray(20).toHex(),
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9",
  );
  assert.deepEqual(getXorMappedAddress(decodeStunMessage(w.bytes())), {
    family: "IPv6",
    hostname: "2001:db8:1234:5678:11:2233:4455:6677",
    port: 32853,
  });
});

Deno.test("xor address: absent gives undefined", () => {
  const w = new StunMessageWriter();
  w.startRaw(0x0101, TID);
  assert.equal(getXorMappedAddress(decodeStunMessage(w.bytes())), undefined);
});
