import assert from "node:assert/strict";
import { inRange, parseCidr, PeerPolicy } from "./peer_policy.ts";

Deno.test("turn peer policy: CIDR parsing and matching", () => {
  assert.deepEqual(parseCidr("10.0.0.0/8").prefix, 8);
  assert.equal(parseCidr("2001:db8::1").prefix, 128);
  for (const bad of ["10.0.0.0/33", "x/8", "10.0.0.0/8/1", "10.0.0.0/-1"]) {
    assert.throws(() => parseCidr(bad), RangeError, bad);
  }
  assert.ok(inRange(Uint8Array.of(172, 31, 255, 255), parseCidr("172.16.0.0/12")));
  assert.ok(!inRange(Uint8Array.of(172, 32, 0, 0), parseCidr("172.16.0.0/12")));
});

Deno.test("turn peer policy: loopback, private, link-local denied by default; flags open them", () => {
  const strict = new PeerPolicy();
  for (
    const denied of [
      "127.0.0.1",
      "::1",
      "10.0.0.1",
      "192.168.0.1",
      "172.20.0.1",
      "169.254.1.1",
      "fe80::1",
      "fd00::1",
      "::ffff:10.0.0.1",
      "0.0.0.0",
      "224.0.0.1",
    ]
  ) {
    assert.equal(strict.allows(denied), false, denied);
  }
  for (const allowed of ["8.8.8.8", "2001:db8::1", "198.18.0.1", "192.0.2.1"]) {
    assert.equal(strict.allows(allowed), true, allowed);
  }
  assert.equal(strict.allows("not-an-ip"), false);
  assert.equal(new PeerPolicy({ allowLoopback: true }).allows("127.0.0.1"), true);
  const ranged = new PeerPolicy({
    allowed: [parseCidr("10.1.0.0/16")],
    denied: [parseCidr("8.8.8.0/24")],
  });
  assert.equal(ranged.allows("10.1.2.3"), true);
  assert.equal(ranged.allows("10.2.0.1"), false);
  assert.equal(ranged.allows("8.8.8.8"), false);
});
