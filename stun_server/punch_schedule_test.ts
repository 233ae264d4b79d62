import assert from "node:assert/strict";
import { MAX_PUNCH_LEAD_MS, MIN_PUNCH_LEAD_MS, punchLeadMs } from "./punch_schedule.ts";

Deno.test("punch schedule: lead time follows the larger RTT within bounds", () => {
  assert.equal(punchLeadMs(undefined, undefined), MIN_PUNCH_LEAD_MS);
  assert.equal(punchLeadMs(-1, 20), MIN_PUNCH_LEAD_MS);
  assert.equal(punchLeadMs(100, 30), 300);
  assert.equal(punchLeadMs(30, 250), 600);
  assert.equal(punchLeadMs(60_000, 1), MAX_PUNCH_LEAD_MS);
});
