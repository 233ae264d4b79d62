import assert from "node:assert/strict";
import {
  addDontFragment,
  addEvenPort,
  addLifetime,
  addRequestedAddressFamily,
  addRequestedTransport,
  addReservationToken,
  decodeStunMessage,
  getEvenPort,
  getLifetime,
  getRequestedAddressFamily,
  getRequestedTransport,
  getReservationToken,
  hasDontFragment,
  StunDecodeError,
  StunEncodeError,
  StunMessageWriter,
} from "./mod.ts";

function fresh(): StunMessageWriter {
  const writer = new StunMessageWriter();
  writer.startRaw(0x0003, new Uint8Array(12));
  return writer;
}

Deno.test("turn allocation attributes: round-trip", () => {
  const writer = fresh();
  addLifetime(writer, 0xffffffff);
  addRequestedTransport(writer, 17);
  addRequestedAddressFamily(writer, "IPv6");
  addEvenPort(writer, true);
  addReservationToken(writer, Uint8Array.fromHex("0011223344556677"));
  addDontFragment(writer);
  const message = decodeStunMessage(writer.bytes());
  assert.equal(getLifetime(message), 0xffffffff);
  assert.equal(getRequestedTransport(message), 17);
  assert.equal(getRequestedAddressFamily(message), "IPv6");
  assert.deepEqual(getEvenPort(message), { reserveNext: true });
  assert.equal(getReservationToken(message)?.toHex(), "0011223344556677");
  assert.equal(hasDontFragment(message), true);
});

Deno.test("turn allocation attributes: absent ones read as undefined/false", () => {
  const message = decodeStunMessage(fresh().bytes());
  assert.equal(getLifetime(message), undefined);
  assert.equal(getRequestedTransport(message), undefined);
  assert.equal(getEvenPort(message), undefined);
  assert.equal(hasDontFragment(message), false);
});

Deno.test("turn allocation attributes: wrong sizes and values are rejected", () => {
  const writer = fresh();
  writer.addAttribute(0x000d, Uint8Array.of(1, 2));
  writer.addAttribute(0x0017, Uint8Array.of(9, 0, 0, 0));
  const message = decodeStunMessage(writer.bytes());
  assert.throws(() => getLifetime(message), StunDecodeError);
  assert.throws(() => getRequestedAddressFamily(message), StunDecodeError);
  assert.throws(() => addLifetime(fresh(), -1), StunEncodeError);
  assert.throws(() => addReservationToken(fresh(), new Uint8Array(7)), StunEncodeError);
});
