import assert from "node:assert/strict";
import { registrationSignedData } from "./registration.ts";

Deno.test("registration: signed data is the domain followed by the nonce", () => {
  const nonce = new Uint8Array(32).fill(7);
  const data = registrationSignedData(nonce);
  assert.equal(new TextDecoder().decode(data.subarray(0, 15)), "p2p-register/v1");
  assert.deepEqual(data.subarray(15), nonce);
  assert.throws(() => registrationSignedData(new Uint8Array(31)), RangeError);
});
