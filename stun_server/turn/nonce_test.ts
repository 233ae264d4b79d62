import assert from "node:assert/strict";
import { NonceIssuer } from "./nonce.ts";

Deno.test("turn nonce: valid, stale after its lifetime, bound to the client, unforgeable", () => {
  let now = 1000;
  const issuer = new NonceIssuer(crypto.getRandomValues(new Uint8Array(32)), 60_000, () => now);
  const nonce = issuer.issue("192.0.2.1");
  assert.ok(nonce.length <= 128, "NONCE is at most 128 characters");
  assert.equal(issuer.check(nonce, "192.0.2.1"), "valid");
  assert.equal(issuer.check(nonce, "192.0.2.2"), "invalid");
  assert.equal(
    issuer.check(nonce.slice(0, -1) + (nonce.endsWith("0") ? "1" : "0"), "192.0.2.1"),
    "invalid",
  );
  const other = new NonceIssuer(new Uint8Array(32), 60_000, () => now);
  assert.equal(other.check(nonce, "192.0.2.1"), "invalid", "another server's key");
  now += 60_001;
  assert.equal(issuer.check(nonce, "192.0.2.1"), "stale");
  assert.equal(issuer.check("garbage", "192.0.2.1"), "invalid");
});
