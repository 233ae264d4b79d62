import assert from "node:assert/strict";
import {
  addAddressAttribute,
  addAlternateServer,
  addMappedAddress,
  addOtherAddress,
  addResponseOrigin,
  decodeAddressValue,
  getAlternateServer,
  getMappedAddress,
  getOtherAddress,
  getResponseOrigin,
} from "./address.ts";
import { StunDecodeError, StunEncodeError } from "./errors.ts";
import { decodeStunMessage } from "./message.ts";
import { StunMessageWriter } from "./writer.ts";

function writer(): StunMessageWriter {
  const w = new StunMessageWriter();
  w.startRaw(0x0101, Uint8Array.fromHex("b7e7a701bc34d686fa87dfae"));
  return w;
}

Deno.test("address: MAPPED-ADDRESS wire format, IPv4 and IPv6", () => {
  const w = writer();
  addMappedAddress(w, { hostname: "192.0.2.1", port: 32853 });
  assert.equal(w.bytes().subarray(20).toHex(), "000100080001" + "8055" + "c0000201");
  const w6 = writer();
  addMappedAddress(w6, { hostname: "2001:db8::1", port: 1 });
  assert.equal(
    w6.bytes().subarray(20).toHex(),
    "000100140002" + "0001" + "20010db8000000000000000000000001",
  );
  assert.deepEqual(getMappedAddress(decodeStunMessage(w6.bytes())), {
    family: "IPv6",
    hostname: "2001:db8::1",
    port: 1,
  });
});

Deno.test("address: ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS round-trip", () => {
  const w = writer();
  addAlternateServer(w, { hostname: "198.18.0.1", port: 3478 });
  addResponseOrigin(w, { hostname: "198.18.0.2", port: 3479 });
  addOtherAddress(w, { hostname: "::1", port: 3480 });
  const m = decodeStunMessage(w.bytes());
  assert.deepEqual(getAlternateServer(m), { family: "IPv4", hostname: "198.18.0.1", port: 3478 });
  assert.deepEqual(getResponseOrigin(m), { family: "IPv4", hostname: "198.18.0.2", port: 3479 });
  assert.deepEqual(getOtherAddress(m), { family: "IPv6", hostname: "::1", port: 3480 });
  assert.equal(getMappedAddress(m), undefined);
});

Deno.test("address: malformed values are StunDecodeError", () => {
  for (
    const hex of [
      "",
      "0001",
      "00011f90c00002",
      "00031f90c0000201",
      "00021f90c0000201",
      "00011f90c000020100",
    ]
  ) {
    assert.throws(() => decodeAddressValue(Uint8Array.fromHex(hex)), StunDecodeError, hex);
  }
});

Deno.test("address: bad hostnames and ports are StunEncodeError and leave the message intact", () => {
  const w = writer();
  assert.throws(() => addAddressAttribute(w, 1, "example.org", 1), StunEncodeError);
  assert.throws(() => addAddressAttribute(w, 1, "1.2.3.4", 65536), StunEncodeError);
  assert.throws(() => addAddressAttribute(w, 1, "1.2.3.4", -1), StunEncodeError);
  assert.equal(w.length, 20);
  assert.equal(decodeStunMessage(w.bytes()).attributes.length, 0);
});
