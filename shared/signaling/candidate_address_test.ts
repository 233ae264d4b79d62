import assert from "node:assert/strict";
import { isCandidateHost } from "./candidate_address.ts";

Deno.test("candidate addresses: unspecified, broadcast and multicast are never candidates", () => {
  for (
    const bad of [
      "0.0.0.0",
      "0.1.2.3",
      "255.255.255.255",
      "224.0.0.1",
      "239.1.1.1",
      "::",
      "ff02::1",
      "::ffff:0.0.0.0",
      "240.0.0.1",
      "not-an-address",
    ]
  ) {
    assert.equal(isCandidateHost(bad), false, bad);
  }
  for (
    const good of [
      "192.0.2.7",
      "10.0.0.1",
      "127.0.0.1",
      "2001:db8::1",
      "fe80::1",
      "::1",
      "203.0.113.255",
    ]
  ) {
    assert.equal(isCandidateHost(good), true, good);
  }
});
