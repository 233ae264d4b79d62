import assert from "node:assert/strict";
import {
  addData,
  addResponsePort,
  decodeStunMessage,
  getData,
  getResponsePort,
  nonceCookie,
  parseNonceCookie,
  StunDecodeError,
  StunMessageWriter,
} from "./mod.ts";

Deno.test("response port and data: round-trip, bad size rejected", () => {
  const writer = new StunMessageWriter();
  writer.startRaw(0x0001, new Uint8Array(12));
  addResponsePort(writer, 65535);
  addData(writer, Uint8Array.of(9, 8, 7));
  const message = decodeStunMessage(writer.bytes());
  assert.equal(getResponsePort(message), 65535);
  assert.deepEqual([...getData(message)!], [9, 8, 7]);
  const bad = new StunMessageWriter();
  bad.startRaw(0x0001, new Uint8Array(12));
  bad.addAttribute(0x0027, Uint8Array.of(1, 2));
  assert.throws(() => getResponsePort(decodeStunMessage(bad.bytes())), StunDecodeError);
});

Deno.test("nonce cookie: features round-trip (RFC 8489 9.2)", () => {
  for (const passwordAlgorithms of [false, true]) {
    for (const usernameAnonymity of [false, true]) {
      const cookie = nonceCookie({ passwordAlgorithms, usernameAnonymity });
      assert.equal(cookie.length, 13);
      assert.deepEqual(parseNonceCookie(cookie + "rest"), {
        passwordAlgorithms,
        usernameAnonymity,
      });
    }
  }
  assert.equal(parseNonceCookie("obMatJos2A"), undefined);
  assert.equal(parseNonceCookie("obMatJos2A!AA"), undefined);
});
