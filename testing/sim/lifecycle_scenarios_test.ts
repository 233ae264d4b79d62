/**
 * Named link-lifecycle scenarios of issue 9 on virtual time, each against the REAL client and
 * server: hand-written fault schedules for the causes the seeded runs found (each failed before
 * its fix; the seed that found it is named), checked by the same invariants, plus what each fix
 * promises beyond them (a client log line, a time bound).
 */
import assert from "node:assert/strict";
import { buildSchedule, clientSpec, type Fault } from "./schedule.ts";
import { runSchedule } from "./scenario.ts";
import { realSystem } from "./real_system.ts";

interface LogLine {
  node: string;
  at: number;
  message: string;
}

async function run(
  clients: [string, string],
  faults: Fault[],
  options: { tailMs?: number } = {},
) {
  const logs: LogLine[] = [];
  const system = realSystem({
    clientLog: (node, at, message) => logs.push({ node, at, message }),
  });
  const schedule = buildSchedule(
    1,
    clients.map((nat, i) =>
      clientSpec(i === 0 ? "a" : "b", nat, {
        uplink: { delayMs: 15 + 10 * i },
        downlink: { delayMs: 20 + 10 * i },
      })
    ),
    faults,
    { tailMs: options.tailMs },
  );
  const result = await runSchedule(system, schedule, { keepTrace: 40 });
  const failure = result.violations.map((v) => `[${v.invariant}] ${v.at} ms: ${v.detail}`)
    .join("\n");
  return { result, logs, failure };
}

Deno.test("NAT mapping expiry: the peer's new mapped port is adopted from its traffic at once (seed 4)", async () => {
  const { result, logs, failure } = await run(["none", "port-restricted"], [
    { kind: "nat-expiry", node: "b", at: 14_000, durationMs: 0 },
    { kind: "nat-expiry", node: "b", at: 24_000, durationMs: 0 },
  ]);
  assert.deepEqual(result.violations, [], failure);
  const moved = logs.filter((l) => l.node === "a" && /the peer's address changed/.test(l.message));
  assert.equal(moved.length, 2, "a follows b to its new port after each expiry");
  assert.ok(moved[0].at - 14_000 < 3000, `first move after ${moved[0].at - 14_000} ms`);
});

Deno.test("NAT mapping expiry behind two port-restricted NATs: the new port is found by STUN and told in-band (seed 76)", async () => {
  const { result, logs, failure } = await run(["port-restricted", "port-restricted"], [
    { kind: "nat-expiry", node: "b", at: 17_000, durationMs: 0 },
  ]);
  assert.deepEqual(result.violations, [], failure);
  // The next STUN keepalive is due at 30 s: the unanswered direct path makes b ask earlier.
  const stun = logs.find((l) => l.node === "b" && l.at > 17_000 && /STUN mapped/.test(l.message));
  assert.ok(stun && stun.at < 21_000, `b learns its new port soon: ${stun?.at}`);
  const moved = logs.find((l) =>
    l.node === "a" && l.at > 17_000 && /udp 203.0.113.2/.test(l.message)
  );
  assert.ok(moved && moved.at < 21_500, `a is direct to b's new port: ${moved?.at}`);
});

Deno.test("a partition that heals: the signaling connection redials instead of waiting out TCP backoff (seed 478)", async () => {
  const { result, logs, failure } = await run(["symmetric", "symmetric"], [
    {
      kind: "partition",
      at: 20_000,
      durationMs: 11_000,
      groups: [["a"], ["b", "server"]],
      transports: ["udp", "tcp"],
    },
  ]);
  assert.deepEqual(result.violations, [], failure);
  const back = logs.find((l) =>
    l.node === "a" && l.at > 31_000 && /"state":"registered"/.test(l.message)
  );
  assert.ok(back && back.at < 33_000, `a is registered again soon after the heal: ${back?.at}`);
});

Deno.test("a restarted server: clients see it answer STUN again and register within a second (seed 550)", async () => {
  const { result, logs, failure } = await run(["symmetric", "port-restricted"], [
    { kind: "restart", node: "server", at: 12_000, durationMs: 5_000 },
  ]);
  assert.deepEqual(result.violations, [], failure);
  for (const node of ["a", "b"]) {
    const back = logs.find((l) =>
      l.node === node && l.at > 17_000 && /"state":"registered"/.test(l.message)
    );
    assert.ok(back && back.at < 18_500, `${node} registered again at ${back?.at}`);
  }
});

Deno.test("a pair that is not direct-capable settles on the relay with a reason, and stays usable", async () => {
  const { result, logs, failure } = await run(["symmetric", "symmetric"], [], { tailMs: 120_000 });
  assert.deepEqual(result.violations, [], failure);
  for (const node of ["a", "b"]) {
    const settled = logs.filter((l) => l.node === node && /not direct-capable/.test(l.message));
    assert.ok(settled.length > 0, `${node} settled`);
    // About a minute of backed-off rounds after the 5 s burst, once.
    assert.ok(settled[0].at > 40_000 && settled[0].at < 90_000, `${node} at ${settled[0].at}`);
  }
  assert.ok(result.counts.delivered > 0 && result.counts.failed === 0);
});
