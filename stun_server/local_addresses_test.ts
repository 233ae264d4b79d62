import assert from "node:assert/strict";
import { bindableAddresses, systemAddresses } from "./local_addresses.ts";

Deno.test("local addresses: IPv4 first, link-local IPv6 and duplicates left out", () => {
  assert.deepEqual(
    bindableAddresses([
      { family: "IPv6", address: "fe80::1%eth0" },
      { family: "IPv6", address: "2001:DB8::1" },
      { family: "IPv4", address: "127.0.0.1" },
      { family: "IPv4", address: "127.0.0.1" },
      { family: "IPv6", address: "febf::1" },
      { family: "IPv4", address: "192.0.2.1" },
    ]),
    ["127.0.0.1", "192.0.2.1", "2001:db8::1"],
  );
  assert.ok(systemAddresses().includes("127.0.0.1"));
});
