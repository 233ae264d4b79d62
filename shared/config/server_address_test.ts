import assert from "node:assert/strict";
import { formatServerAddress, parseServerAddress } from "./server_address.ts";

Deno.test("parseServerAddress accepts host:port, stun: and stun:// forms", () => {
  assert.deepEqual(parseServerAddress("127.0.0.1:54321"), { host: "127.0.0.1", port: 54321 });
  assert.deepEqual(parseServerAddress("stun:example.org:3478"), {
    host: "example.org",
    port: 3478,
  });
  assert.deepEqual(parseServerAddress("stun://example.org:1"), { host: "example.org", port: 1 });
});

Deno.test("parseServerAddress accepts bracketed IPv6 and applies a default port", () => {
  assert.deepEqual(parseServerAddress("[::1]:3478"), { host: "::1", port: 3478 });
  assert.deepEqual(parseServerAddress("stun://[2001:db8::1]:9"), { host: "2001:db8::1", port: 9 });
  assert.deepEqual(parseServerAddress("[::1]", 3478), { host: "::1", port: 3478 });
  assert.deepEqual(parseServerAddress("localhost", 3478), { host: "localhost", port: 3478 });
});

Deno.test("parseServerAddress explains what is wrong", () => {
  assert.match(parseServerAddress("localhost") as string, /missing port/);
  assert.match(parseServerAddress("::1:3478") as string, /need brackets/);
  assert.match(parseServerAddress("[::1:3478") as string, /unclosed/);
  assert.match(parseServerAddress("host:0") as string, /port must be/);
  assert.match(parseServerAddress("host:65536") as string, /port must be/);
  assert.match(parseServerAddress("host:abc") as string, /port must be/);
  assert.match(parseServerAddress("") as string, /empty/);
  assert.match(parseServerAddress("bad host:1") as string, /not a host name/);
  assert.match(parseServerAddress("[zz]:1") as string, /not an IPv6/);
});

Deno.test("formatServerAddress brackets IPv6", () => {
  assert.equal(formatServerAddress({ host: "::1", port: 3478 }), "[::1]:3478");
  assert.equal(formatServerAddress({ host: "10.0.0.1", port: 7 }), "10.0.0.1:7");
});
