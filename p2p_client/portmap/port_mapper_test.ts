import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { FakeGateway, type FakeGatewayOptions } from "../../testing/fake_gateway.ts";
import { PortMapper, type PortMapping, type PortMapProtocol } from "./port_mapper.ts";
import { startPortMapping } from "./service.ts";

const GATEWAY = "10.0.1.1";
const LOCAL = "10.0.1.2";

function setup(gatewayOptions: FakeGatewayOptions, protocols?: PortMapProtocol[]) {
  const runtime = new VirtualRuntime({ seed: 5 });
  const gateway = new FakeGateway(runtime.forHost(GATEWAY), GATEWAY, gatewayOptions);
  const changes: Array<[PortMapping | undefined, string]> = [];
  const mapper = new PortMapper({
    runtime: runtime.forHost(LOCAL),
    gateway: GATEWAY,
    localAddress: LOCAL,
    internalPort: 40000,
    fetch: gateway.fetch,
    protocols,
    lifetimeSeconds: 7200,
    onChange: (mapping, reason) => changes.push([mapping, reason]),
  });
  return { runtime, gateway, mapper, changes };
}

async function started(runtime: VirtualRuntime, mapper: PortMapper) {
  let result: PortMapping | undefined | "pending" = "pending";
  mapper.start().then((mapping) => result = mapping);
  assert.ok(await runtime.runUntil(() => result !== "pending", 10_000));
  return result as unknown as PortMapping | undefined;
}

Deno.test("probes all three at once, maps with PCP first, renews before expiry, deletes on close", async () => {
  const { runtime, gateway, mapper, changes } = setup({ maxLifetime: 120 });
  const mapping = await started(runtime, mapper);
  assert.equal(mapping?.protocol, "pcp");
  assert.equal(mapping?.externalAddress, "198.18.0.2");
  assert.equal(mapping?.externalPort, 40000);
  assert.equal(mapping?.lifetimeSeconds, 120);
  assert.deepEqual(mapper.offer, {
    pcp: true,
    natPmp: true,
    upnp: true,
    externalAddress: "198.18.0.2",
  });
  assert.ok(gateway.log.includes("pcp:announce"));
  assert.ok(gateway.log.includes("nat-pmp:address"));
  assert.ok(gateway.log.includes("upnp:GetExternalIPAddress"));
  assert.equal(gateway.log.filter((l) => l === "pcp:map").length, 1);
  // Ten minutes at a 120 s lifetime: renewed every 60 s, never lost.
  for (let second = 0; second < 600; second += 5) {
    await runtime.advance(5000);
    assert.ok(gateway.mappings.has(40000), `mapping alive at ${second + 5} s`);
  }
  const renewals = gateway.log.filter((l) => l === "pcp:map").length - 1;
  assert.ok(renewals >= 9 && renewals <= 11, `${renewals} renewals in 600 s`);
  assert.equal(changes.length, 1, "renewal with the same port reports no change");
  const closing = mapper.close();
  await runtime.runUntil(() => gateway.log.includes("pcp:delete"), 5000);
  await closing;
  assert.equal(gateway.mappings.size, 0);
  assert.equal(changes.at(-1)?.[0], undefined);
  assert.equal(changes.at(-1)?.[1], "deleted on exit");
  gateway.close();
});

for (const protocol of ["nat-pmp", "upnp"] as const) {
  Deno.test(`maps with ${protocol} alone, renews, deletes on close`, async () => {
    const { runtime, gateway, mapper } = setup({ maxLifetime: 600 }, [protocol]);
    const mapping = await started(runtime, mapper);
    assert.equal(mapping?.protocol, protocol);
    assert.equal(mapping?.externalPort, 40000);
    assert.equal(gateway.mappings.get(40000)?.protocol, protocol);
    assert.ok(!gateway.log.some((l) => l.startsWith("pcp")), "PCP not used when disabled");
    await runtime.advance(3600_000);
    assert.ok(gateway.mappings.has(40000), "renewed through an hour");
    const closing = mapper.close();
    await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
    await closing;
    assert.equal(gateway.mappings.size, 0);
    gateway.close();
  });
}

Deno.test("a NAT-PMP-only gateway: PCP says unsupported version, NAT-PMP maps", async () => {
  const { runtime, gateway, mapper } = setup({ pcp: false, upnp: false });
  const mapping = await started(runtime, mapper);
  assert.equal(mapping?.protocol, "nat-pmp");
  assert.deepEqual(mapper.offer, {
    pcp: false,
    natPmp: true,
    upnp: false,
    externalAddress: "198.18.0.2",
  });
  const closing = mapper.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  gateway.close();
});

Deno.test("UPnP conflict on the wanted port retries with another port", async () => {
  const { runtime, gateway, mapper } = setup({ takenPorts: [40000] }, ["upnp"]);
  const mapping = await started(runtime, mapper);
  assert.equal(mapping?.protocol, "upnp");
  assert.notEqual(mapping?.externalPort, 40000);
  assert.equal(gateway.mappings.get(mapping!.externalPort)?.internalPort, 40000);
  const closing = mapper.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  gateway.close();
});

Deno.test("no gateway answers: start gives undefined within the probe budget and retries later", async () => {
  const { runtime, gateway, mapper, changes } = setup({});
  gateway.silent = true;
  const before = runtime.now();
  const mapping = await started(runtime, mapper);
  assert.equal(mapping, undefined);
  assert.ok(runtime.now() - before <= 4000, `gave up after ${runtime.now() - before} ms`);
  assert.deepEqual(mapper.offer, { pcp: false, natPmp: false, upnp: false });
  gateway.silent = false;
  assert.ok(await runtime.runUntil(() => mapper.mapping !== undefined, 70_000, 1000));
  assert.equal(changes.length, 1);
  await runtime.runUntil(() => false, 1);
  const closing = mapper.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  gateway.close();
});

Deno.test("a gateway that stops answering: the mapping is reported lost at expiry, then regained", async () => {
  const { runtime, gateway, mapper, changes } = setup({ maxLifetime: 120 });
  await started(runtime, mapper);
  gateway.silent = true;
  assert.ok(await runtime.runUntil(() => mapper.mapping === undefined, 130_000, 1000));
  assert.ok(runtime.now() <= 125_000, `lost at ${runtime.now()} ms, lifetime 120 s`);
  assert.match(changes.at(-1)![1], /expired/);
  gateway.silent = false;
  assert.ok(await runtime.runUntil(() => mapper.mapping !== undefined, 70_000, 1000));
  const closing = mapper.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  gateway.close();
});

Deno.test("startPortMapping finds the gateway in the routing table and reports the candidate", async () => {
  const runtime = new VirtualRuntime({ seed: 8 });
  const gateway = new FakeGateway(runtime.forHost(GATEWAY), GATEWAY, {});
  const candidates: Array<PortMapping | undefined> = [];
  let service: Awaited<ReturnType<typeof startPortMapping>> | undefined;
  startPortMapping({
    runtime: runtime.forHost(LOCAL),
    internalPort: 40000,
    readFile: () =>
      Promise.resolve(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" +
          "eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
      ),
    interfaces: [{ name: "eth0", family: "IPv4", address: LOCAL, netmask: "255.255.255.0" }],
    fetch: gateway.fetch,
    onCandidate: (mapping) => candidates.push(mapping),
  }).then((s) => service = s);
  assert.ok(await runtime.runUntil(() => service !== undefined, 10_000));
  assert.ok(service?.ok);
  assert.equal(service.gateway, GATEWAY);
  assert.equal(service.localAddress, LOCAL);
  assert.equal(service.mapping?.externalPort, 40000);
  assert.equal(candidates[0]?.externalAddress, "198.18.0.2");
  const closing = service.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  assert.equal(candidates.at(-1), undefined);
  gateway.close();

  const none = await startPortMapping({
    runtime: runtime.forHost(LOCAL),
    internalPort: 40000,
    readFile: () => Promise.reject(new Error("NotCapable")),
    interfaces: [],
  });
  assert.deepEqual(none, { ok: false, reason: "no-gateway" });
});

Deno.test("startPortMapping guesses the gateway when the routing table is unreadable", async () => {
  const runtime = new VirtualRuntime({ seed: 9 });
  const gateway = new FakeGateway(runtime.forHost(GATEWAY), GATEWAY, {});
  let service: Awaited<ReturnType<typeof startPortMapping>> | undefined;
  startPortMapping({
    runtime: runtime.forHost(LOCAL),
    internalPort: 40000,
    readFile: () => Promise.reject(new Error("NotCapable")),
    guessGateway: true,
    interfaces: [{ name: "eth0", family: "IPv4", address: LOCAL, netmask: "255.255.255.0" }],
    fetch: gateway.fetch,
  }).then((s) => service = s);
  assert.ok(await runtime.runUntil(() => service !== undefined, 10_000));
  assert.ok(service?.ok);
  assert.equal(service.gateway, GATEWAY);
  assert.equal(service.mapping?.protocol, "pcp");
  const closing = service.close();
  await runtime.runUntil(() => gateway.mappings.size === 0, 5000);
  await closing;
  gateway.close();
});
