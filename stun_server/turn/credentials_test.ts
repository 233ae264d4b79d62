import assert from "node:assert/strict";
import {
  CombinedCredentials,
  parseUserFile,
  parseUserSpec,
  restPassword,
  SharedSecretCredentials,
  StaticUsers,
} from "./credentials.ts";

Deno.test("turn credentials: NAME:PASSWORD specs and files", () => {
  assert.deepEqual(parseUserSpec("a:b:c"), { name: "a", password: "b:c" });
  assert.throws(() => parseUserSpec(":pw"), RangeError);
  assert.throws(() => parseUserSpec("nopw"), RangeError);
  assert.deepEqual(parseUserFile("# c\n\n alice:1 \r\nbob:2\n"), [
    { name: "alice", password: "1" },
    { name: "bob", password: "2" },
  ]);
  assert.throws(() => parseUserFile("alice:1\nbroken\n"), /line 2/);
});

Deno.test("turn credentials: REST API passwords match coturn's scheme and expire", () => {
  // base64(HMAC-SHA1("secret", "1700000000:alice")), computed independently with Python's hmac.
  assert.equal(restPassword("secret", "1700000000:alice"), "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
  const source = new SharedSecretCredentials(["secret"]);
  assert.equal(
    source.passwordFor("1700000000:alice", 1_699_999_999_000),
    restPassword("secret", "1700000000:alice"),
  );
  assert.equal(source.passwordFor("1700000000:alice", 1_700_000_001_000), undefined);
  assert.equal(source.passwordFor("alice", 0), undefined, "no timestamp, no password");
  assert.equal(source.passwordFor("1700000000", 0), restPassword("secret", "1700000000"));
});

Deno.test("turn credentials: static users first, then the secret", () => {
  const combined = new CombinedCredentials([
    new StaticUsers([{ name: "alice", password: "pw" }]),
    new SharedSecretCredentials(["s"]),
  ]);
  assert.equal(combined.passwordFor("alice", 0), "pw");
  assert.equal(combined.passwordFor("9999999999:x", 0), restPassword("s", "9999999999:x"));
  assert.equal(combined.passwordFor("bob", 0), undefined);
});
