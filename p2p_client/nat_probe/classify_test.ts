import assert from "node:assert/strict";
import { classifyNat, type NatObservations, punchable } from "./classify.ts";

const base: NatObservations = {
  localPort: 40000,
  localAddresses: ["10.0.1.2", "127.0.0.1"],
  primary: { hostname: "198.18.0.2", port: 40000 },
};
const at = (port: number) => ({ hostname: "198.18.0.2", port });

Deno.test("RFC 5780 mapping tests: independent, address-dependent, address-and-port-dependent", () => {
  assert.equal(
    classifyNat({ ...base, alternateAddress: at(40000) }).mapping,
    "endpoint-independent",
  );
  assert.equal(
    classifyNat({ ...base, alternateAddress: at(50001), alternateAddressAndPort: at(50001) })
      .mapping,
    "address-dependent",
  );
  const symmetric = classifyNat({
    ...base,
    primary: at(61000),
    alternateAddress: at(50001),
    alternateAddressAndPort: at(50002),
  });
  assert.equal(symmetric.mapping, "address-and-port-dependent");
  assert.equal(symmetric.portPreserved, false);
  assert.equal(symmetric.behindNat, true);
  // Without RFC 5780, two servers tell only dependent or not.
  assert.equal(classifyNat({ ...base, otherServers: [at(40001)] }).mapping, "endpoint-dependent");
  assert.equal(classifyNat({ ...base, otherServers: [at(40000)] }).mapping, "endpoint-independent");
  assert.equal(classifyNat(base).mapping, "unknown");
  // Not behind a NAT: the mapped address is local.
  const open = classifyNat({ ...base, primary: { hostname: "10.0.1.2", port: 40000 } });
  assert.equal(open.behindNat, false);
  assert.equal(open.mapping, "endpoint-independent");
});

Deno.test("RFC 5780 filtering tests and UDP blocked", () => {
  const f = (both?: boolean, port?: boolean) =>
    classifyNat({ ...base, changeIpAndPortAnswered: both, changePortAnswered: port }).filtering;
  assert.equal(f(true, true), "endpoint-independent");
  assert.equal(f(false, true), "address-dependent");
  assert.equal(f(false, false), "address-and-port-dependent");
  assert.equal(f(undefined, undefined), "unknown");
  const blocked = classifyNat({ ...base, primary: undefined });
  assert.equal(blocked.udpReachable, false);
  assert.equal(blocked.mapping, "unknown");
});

Deno.test("punchable follows the textbook pairs", () => {
  const eim = "endpoint-independent" as const;
  const apd = "address-and-port-dependent" as const;
  const symmetric = { mapping: apd, filtering: apd };
  const portRestricted = { mapping: eim, filtering: apd };
  const restricted = { mapping: eim, filtering: "address-dependent" as const };
  assert.equal(punchable(symmetric, symmetric), false);
  assert.equal(punchable(symmetric, portRestricted), false);
  assert.equal(punchable(portRestricted, symmetric), false);
  assert.equal(punchable(symmetric, restricted), true);
  assert.equal(punchable(portRestricted, portRestricted), true);
});
