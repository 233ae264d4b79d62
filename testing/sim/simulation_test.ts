import assert from "node:assert/strict";
import { formatFailure, runBatch } from "./batch.ts";

/** Schedules per run of `deno task test` (issue 9: at least 1,000). */
const RUNS = 1000;

Deno.test(`${RUNS} seeded fault schedules keep every invariant (reference peer)`, async () => {
  const seeds = Array.from({ length: RUNS }, (_, i) => i + 1);
  const results = await runBatch({ system: "reference", seeds, workers: 2 });
  const failed = results.filter((r) => r.violations.length > 0);
  assert.equal(results.length, RUNS);
  assert.ok(
    failed.length === 0,
    `${failed.length} of ${RUNS} schedules failed; first:\n${
      failed.slice(0, 3).map((r) => formatFailure(r, "reference")).join("\n")
    }`,
  );
});
