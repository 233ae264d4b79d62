import assert from "node:assert/strict";
import { ServerMetrics } from "./metrics.ts";
import { summarize } from "./summary.ts";

Deno.test("summary: rates over the interval, refusals of every kind, nothing when idle", () => {
  let now = 0;
  const metrics = new ServerMetrics("0.1.0", () => now);
  metrics.setGauges({ connected: () => 3, registered: () => 2, queuedBytes: () => 0 });
  const before = metrics.snapshot();
  assert.equal(summarize(before, metrics.snapshot()), null);
  now = 600_000;
  metrics.registrations.inc("accepted", 4);
  metrics.registrations.inc("auth-failed", 2);
  metrics.connections.inc("too-many-connections");
  metrics.relayRefused.inc("relay-quota", 3);
  metrics.stunAnswered.set("success", 1200);
  metrics.relayBytes = 60_000_000;
  const line = summarize(before, metrics.snapshot());
  assert.ok(line);
  assert.deepEqual(line.properties, {
    minutes: 10,
    registered: 2,
    registrations: 4,
    relayRate: 100_000,
    stunRate: 2,
    refused: 6,
  });
});
