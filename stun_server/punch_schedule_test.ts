import assert from "node:assert/strict";
import { MAX_PUNCH_LEAD_MS, MIN_PUNCH_LEAD_MS, punchLeadMs, punchPlan } from "./punch_schedule.ts";

Deno.test("punch schedule: lead time follows the larger RTT within bounds", () => {
  assert.equal(punchLeadMs(undefined, undefined), MIN_PUNCH_LEAD_MS);
  assert.equal(punchLeadMs(-1, 20), MIN_PUNCH_LEAD_MS);
  assert.equal(punchLeadMs(100, 30), 300);
  assert.equal(punchLeadMs(30, 250), 600);
  assert.equal(punchLeadMs(60_000, 1), MAX_PUNCH_LEAD_MS);
});

Deno.test("punch schedule: each side waits the lead minus its own one-way delay", () => {
  const plan = punchPlan(10, 150);
  assert.equal(plan.leadMs, 400);
  // Side A hears after 5 ms and punches 395 ms later; side B hears after 75 ms, punches 325 ms
  // later: both at 400 ms on the server's clock.
  assert.equal(5 + plan.punchInMsA, 75 + plan.punchInMsB);
  assert.deepEqual(punchPlan(undefined, undefined), {
    leadMs: MIN_PUNCH_LEAD_MS,
    punchInMsA: MIN_PUNCH_LEAD_MS,
    punchInMsB: MIN_PUNCH_LEAD_MS,
  });
});
