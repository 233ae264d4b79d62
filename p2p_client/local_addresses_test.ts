import assert from "node:assert/strict";
import { localCandidates } from "./local_addresses.ts";

const interfaces = [
  { family: "IPv4" as const, address: "10.0.0.5" },
  { family: "IPv4" as const, address: "127.0.0.1" },
  { family: "IPv4" as const, address: "169.254.3.3" },
  { family: "IPv6" as const, address: "fe80::1%eth0" },
  { family: "IPv6" as const, address: "2001:db8::5" },
  { family: "IPv4" as const, address: "10.0.0.5" },
];

Deno.test("localCandidates skips link-local, duplicates, other families and loopback unless asked", () => {
  assert.deepEqual(
    localCandidates(interfaces, { bindHost: "0.0.0.0", port: 7, includeLoopback: false }),
    [{ host: "10.0.0.5", port: 7 }],
  );
  assert.deepEqual(
    localCandidates(interfaces, { bindHost: "0.0.0.0", port: 7, includeLoopback: true }),
    [{ host: "127.0.0.1", port: 7 }, { host: "10.0.0.5", port: 7 }],
  );
  assert.deepEqual(
    localCandidates(interfaces, { bindHost: "::", port: 7, includeLoopback: false }),
    [{ host: "2001:db8::5", port: 7 }],
  );
  assert.deepEqual(
    localCandidates(interfaces, { bindHost: "10.0.0.5", port: 7, includeLoopback: false }),
    [{ host: "10.0.0.5", port: 7 }],
  );
});
