import assert from "node:assert/strict";
import { classifyNat, type NatObservations, punchable } from "./classify.ts";
import { formatNatReport, planDirect } from "./explain.ts";

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

Deno.test("planDirect: port mapping, birthday roles, relay reasons", () => {
  const eim = "endpoint-independent" as const;
  const apd = "address-and-port-dependent" as const;
  const side = (
    mapping: typeof eim | typeof apd,
    filtering: typeof apd | typeof eim,
    udp = true,
  ) => ({
    nat: { udpReachable: udp, mapping, filtering },
    portMapped: false,
  });
  const symmetric = side(apd, apd);
  const portRestricted = side(eim, apd);
  const fullCone = side(eim, eim);
  assert.deepEqual(planDirect(symmetric, portRestricted), { kind: "birthday", role: "hard" });
  assert.deepEqual(planDirect(portRestricted, symmetric), { kind: "birthday", role: "easy" });
  assert.deepEqual(planDirect(symmetric, symmetric), {
    kind: "relay",
    why: "both sides map per destination",
  });
  assert.deepEqual(planDirect({ ...symmetric, portMapped: true }, symmetric), {
    kind: "port-mapping",
  });
  assert.deepEqual(planDirect(symmetric, fullCone), { kind: "plain" });
  assert.deepEqual(planDirect(side(eim, eim, false), fullCone), {
    kind: "relay",
    why: "udp blocked here",
  });
  assert.deepEqual(planDirect(fullCone, side(eim, eim, false)), {
    kind: "relay",
    why: "peer unreachable over UDP",
  });
  assert.deepEqual(planDirect(fullCone, fullCone, true), { kind: "relay", why: "relay-only" });
});

Deno.test("formatNatReport says what the nat command prints", () => {
  const lines = formatNatReport({
    udpReachable: true,
    behindNat: true,
    mapping: "address-and-port-dependent",
    filtering: "address-and-port-dependent",
    portPreserved: false,
    ipv4: "198.18.0.6:61234",
    ipv6: undefined,
    rfc5780: true,
    latency: [{ server: "198.18.0.1:3578", rttMs: 1.4 }, {
      server: "[2001:db8::1]:3478",
      rttMs: undefined,
    }],
    portMapping: { pcp: true, natPmp: true, upnp: false },
  });
  assert.deepEqual(lines, [
    "UDP: reachable",
    "public IPv4: 198.18.0.6:61234",
    "public IPv6: none",
    "behind a NAT: yes",
    "mapping: address-and-port-dependent",
    "filtering: address-and-port-dependent",
    "port preserved: no",
    "port mapping: PCP, NAT-PMP",
    "latency 198.18.0.1:3578: 1 ms",
    "latency [2001:db8::1]:3478: no answer",
  ]);
});
