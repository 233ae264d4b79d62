import assert from "node:assert/strict";
import { normalizeHost } from "./host_address.ts";

Deno.test("host address: mapped IPv4, brackets and zones are normalised", () => {
  assert.equal(normalizeHost("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeHost("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeHost("[::1]"), "::1");
  assert.equal(normalizeHost("fe80::1%2"), "fe80::1");
  assert.equal(normalizeHost("FE80::A"), "fe80::a");
  assert.equal(normalizeHost("198.18.0.1"), "198.18.0.1");
});
