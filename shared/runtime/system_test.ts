import assert from "node:assert/strict";
import { systemRuntime } from "./mod.ts";

Deno.test("system runtime: interface addresses list loopback, IPv4 first, no link-local IPv6", () => {
  const addresses = systemRuntime.net.interfaceAddresses!();
  assert.ok(addresses.includes("127.0.0.1"));
  assert.ok(addresses.every((a) => !/^fe[89ab]/i.test(a) && !a.includes("%")));
  const firstV6 = addresses.findIndex((a) => a.includes(":"));
  if (firstV6 >= 0) assert.ok(addresses.slice(firstV6).every((a) => a.includes(":")));
  assert.equal(new Set(addresses).size, addresses.length);
});
