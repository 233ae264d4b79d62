import assert from "node:assert/strict";
import { InvariantChecker, messageText } from "./checker.ts";
import {
  buildSchedule,
  clientSpec,
  directCapable,
  generateSchedule,
  NAT_TYPES,
} from "./schedule.ts";
import { runSchedule } from "./scenario.ts";
import { type ReferenceBug, referenceSystem } from "./reference_peer.ts";

const t = (seq: number, from = "a", to = "b") => messageText(from, to, seq);

Deno.test("checker: a clean exchange passes", () => {
  const c = new InvariantChecker();
  c.sent(0, "a", 1, "b", t(1), 1);
  c.sent(1, "a", 1, "b", t(2), 2);
  c.printed(10, "b", "a", t(1));
  c.printed(11, "b", "a", t(2));
  c.outcome(20, "a", 1, 1, "delivered");
  c.outcome(21, "a", 1, 2, "delivered");
  c.finish(100, () => 1);
  assert.deepEqual(c.violations, []);
});

Deno.test("checker: failed for a printed message, in either order", () => {
  const before = new InvariantChecker();
  before.sent(0, "a", 1, "b", t(1), 1);
  before.printed(10, "b", "a", t(1));
  before.outcome(20, "a", 1, 1, "failed");
  assert.match(before.violations[0].detail, /reported failed, yet it was printed/);
  const after = new InvariantChecker();
  after.sent(0, "a", 1, "b", t(1), 1);
  after.outcome(20, "a", 1, 1, "failed");
  after.printed(30, "b", "a", t(1));
  assert.equal(after.violations[0].invariant, "outcome");
});

Deno.test("checker: two outcomes, no outcome, delivered but never printed", () => {
  const c = new InvariantChecker();
  c.sent(0, "a", 1, "b", t(1), 1);
  c.sent(0, "a", 1, "b", t(2), 2);
  c.sent(0, "a", 1, "b", t(3), 3);
  c.outcome(5, "a", 1, 1, "unconfirmed");
  c.outcome(6, "a", 1, 1, "delivered");
  c.outcome(7, "a", 1, 3, "delivered");
  c.finish(100, () => 1);
  const details = c.violations.map((v) => v.detail).join("\n");
  assert.match(details, /a>b#1 got a second outcome delivered/);
  assert.match(details, /a>b#2 .* has no outcome/);
  assert.match(details, /a>b#3 reported delivered but never printed/);
});

Deno.test("checker: a killed process's sends may end without an outcome", () => {
  const c = new InvariantChecker();
  c.sent(0, "a", 1, "b", t(1), 1);
  c.killed(5, "a", 1);
  c.sent(10, "a", 2, "b", t(2), 1); // the new process starts its IDs again
  c.outcome(20, "a", 2, 1, "delivered");
  c.printed(15, "b", "a", t(2));
  c.finish(100, () => 2);
  assert.deepEqual(c.violations, []);
});

Deno.test("checker: duplicates, reordering and invented messages are caught", () => {
  const c = new InvariantChecker();
  for (let i = 1; i <= 3; i++) c.sent(i, "a", 1, "b", t(i), i);
  c.printed(10, "b", "a", t(2));
  c.printed(11, "b", "a", t(1));
  c.printed(12, "b", "a", t(2));
  c.printed(13, "b", "a", "hello");
  c.printed(14, "b", "c", t(3));
  const details = c.violations.map((v) => v.detail);
  assert.deepEqual(details, [
    "b printed a>b#1 after #2 (out of order)",
    "b printed a>b#2 twice",
    `b printed "hello", which nobody sent`,
    "b printed a>b#3 as coming from c",
  ]);
});

Deno.test("checker: a probe not printed by its deadline, or printed late, breaks liveness", () => {
  const c = new InvariantChecker();
  c.sent(0, "a", 1, "b", t(1), 1, 2000);
  c.sent(0, "b", 1, "a", t(1, "b", "a"), 1, 2000);
  c.checkProbe(2000, t(1));
  c.printed(2500, "a", "b", t(1, "b", "a"));
  c.checkDirect(0, "a", "b", "direct", "relayed");
  assert.deepEqual(c.violations.map((v) => v.invariant), ["usable", "usable", "direct"]);
});

Deno.test("direct capability follows RFC 5128", () => {
  const [none, fullCone, restricted, portRestricted, symmetric] = NAT_TYPES;
  assert.equal(directCapable(symmetric, symmetric), false);
  assert.equal(directCapable(symmetric, portRestricted), false);
  assert.equal(directCapable(portRestricted, symmetric), false);
  assert.equal(directCapable(symmetric, restricted), true);
  assert.equal(directCapable(symmetric, fullCone), true);
  assert.equal(directCapable(symmetric, none), true);
  assert.equal(directCapable(portRestricted, portRestricted), true);
});

Deno.test("schedules: same seed, same schedule; every fault kind appears over 200 seeds", () => {
  assert.deepEqual(generateSchedule(11), generateSchedule(11));
  assert.notDeepEqual(generateSchedule(11), generateSchedule(12));
  const kinds = new Set<string>();
  let longest = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const schedule = generateSchedule(seed);
    for (const fault of schedule.faults) {
      kinds.add(fault.kind);
      if (fault.kind === "freeze") longest = Math.max(longest, fault.durationMs);
      assert.ok(fault.at >= schedule.startMs, "faults start after the first check");
    }
    assert.ok(schedule.clearTimes.length >= 1);
    assert.ok(schedule.endMs > Math.max(...schedule.faults.map((f) => f.at + f.durationMs), 0));
  }
  assert.deepEqual([...kinds].sort(), [
    "delay",
    "dup-reorder",
    "freeze",
    "loss",
    "nat-expiry",
    "one-way",
    "partition",
    "restart",
  ]);
  assert.ok(longest > 30_000, `freezes reach tens of seconds (longest ${longest} ms)`);
});

Deno.test("same seed, same trace: two runs of a seed hash alike; another seed differs", async () => {
  const system = referenceSystem();
  const first = await runSchedule(system, generateSchedule(42), { keepTrace: 200 });
  const second = await runSchedule(system, generateSchedule(42), { keepTrace: 200 });
  const other = await runSchedule(system, generateSchedule(43), { keepTrace: 200 });
  assert.ok(first.traceLines > 1000, `the trace covers packets (${first.traceLines} lines)`);
  assert.equal(first.traceHash, second.traceHash);
  assert.deepEqual(first.trace, second.trace);
  assert.notEqual(first.traceHash, other.traceHash);
});

for (
  const [bug, invariant] of [
    ["no-dedupe", "order"],
    ["no-order", "order"],
    ["failed-for-unconfirmed", "outcome"],
    ["no-relay", "usable"],
  ] as Array<[ReferenceBug, string]>
) {
  Deno.test(`a reference peer with the bug "${bug}" fails the ${invariant} invariant with a seed`, async () => {
    const system = referenceSystem(bug);
    let failing: number | undefined;
    for (let seed = 1; seed <= 200 && failing === undefined; seed++) {
      const result = await runSchedule(system, generateSchedule(seed));
      if (result.violations.some((v) => v.invariant === invariant)) failing = seed;
    }
    assert.ok(failing !== undefined, `no seed in 1..200 caught ${bug}`);
    // The failing seed fails again, identically.
    const again = await runSchedule(system, generateSchedule(failing));
    const once = await runSchedule(system, generateSchedule(failing));
    assert.ok(again.violations.length > 0);
    assert.equal(again.traceHash, once.traceHash);
    // And the correct peer passes that same seed.
    const fixed = await runSchedule(referenceSystem(), generateSchedule(failing));
    assert.deepEqual(fixed.violations, []);
  });
}

Deno.test("checker: an outcome reported inside send, before its ID is known, counts", () => {
  const c = new InvariantChecker();
  c.outcome(0, "a", 1, 1, "failed");
  c.sent(0, "a", 1, "b", t(1), 1);
  c.finish(100, () => 1);
  assert.deepEqual(c.violations, []);
  assert.equal(c.counts.failed, 1);
});

Deno.test("hand-written scenario: a 35 s freeze of one peer behind a port-restricted NAT", async () => {
  const schedule = buildSchedule(7, [
    clientSpec("a", "port-restricted", { uplink: { delayMs: 10 } }),
    clientSpec("b", "restricted-cone", { uplink: { delayMs: 150 } }),
  ], [{ kind: "freeze", node: "b", at: 10_000, durationMs: 35_000 }]);
  assert.deepEqual(schedule.clearTimes, [2_000, 45_000]);
  const result = await runSchedule(referenceSystem(), schedule, { keepTrace: 50 });
  assert.deepEqual(result.violations, []);
  assert.ok(result.counts.unconfirmed + result.counts.failed > 0, "the freeze cost some messages");
  const broken = await runSchedule(referenceSystem("failed-for-unconfirmed"), schedule);
  assert.ok(broken.violations.some((v) => v.invariant === "outcome"));
});
