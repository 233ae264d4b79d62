import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { computeUserhash, longTermKey, shortTermKey } from "./credentials.ts";

Deno.test("credentials: short-term key is the UTF-8 password", () => {
  assert.deepEqual(
    shortTermKey("VOkJxbRl1RmTxUk/WvJxBt"),
    new TextEncoder().encode("VOkJxbRl1RmTxUk/WvJxBt"),
  );
  assert.deepEqual(shortTermKey("e\u0301"), new TextEncoder().encode("\u00E9"));
});

Deno.test("credentials: long-term MD5 and SHA-256 keys hash user:realm:password", () => {
  const md5 = createHash("md5").update("user:realm:pass").digest();
  assert.deepEqual(longTermKey("user", "realm", "pass"), new Uint8Array(md5));
  const sha = createHash("sha256").update("user:realm:pass").digest();
  assert.deepEqual(longTermKey("user", "realm", "pass", "SHA-256"), new Uint8Array(sha));
  assert.equal(longTermKey("user", "realm", "pass", "SHA-256").length, 32);
});

Deno.test("credentials: USERHASH of the RFC 8489 B.1 user", () => {
  assert.equal(
    computeUserhash("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org").toHex(),
    "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704",
  );
});
