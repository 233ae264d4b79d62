import assert from "node:assert/strict";
import { LabeledCounter, ServerMetrics } from "./metrics.ts";
import { prometheusRegistry } from "./metrics_http.ts";

Deno.test("metrics: labeled counters add up by label", () => {
  const counter = new LabeledCounter();
  counter.inc("a");
  counter.inc("b", 4);
  counter.inc("a");
  assert.equal(counter.get("a"), 2);
  assert.equal(counter.get("missing"), 0);
  assert.equal(counter.total, 6);
  assert.deepEqual(counter.toJSON(), { a: 2, b: 4 });
  counter.set("b", 1);
  assert.equal(counter.total, 3);
});

Deno.test("metrics: a snapshot reads gauges and runs collectors first", () => {
  let now = 0;
  const metrics = new ServerMetrics("9.9.9", () => now);
  let stunAnswered = 0;
  metrics.addCollector(() => metrics.stunAnswered.set("success", stunAnswered));
  metrics.addCollector(() => {
    throw new Error("a broken collector does not break a read");
  });
  metrics.setGauges({ connected: () => 3, registered: () => 2, queuedBytes: () => 100 });
  metrics.registrations.inc("accepted", 2);
  metrics.relayBytes = 1234;
  stunAnswered = 7;
  now = 5000;
  const snapshot = metrics.snapshot();
  assert.equal(snapshot.version, "9.9.9");
  assert.equal(snapshot.uptimeSeconds, 5);
  assert.equal(snapshot.connected, 3);
  assert.equal(snapshot.registered, 2);
  assert.equal(snapshot.queuedBytes, 100);
  assert.deepEqual(snapshot.registrations, { accepted: 2 });
  assert.equal(snapshot.relayBytes, 1234);
  assert.deepEqual(snapshot.stunAnswered, { success: 7 });
});

Deno.test("metrics: the Prometheus text carries every counter, label and gauge", async () => {
  const metrics = new ServerMetrics("0.1.0", () => 0);
  metrics.setGauges({ connected: () => 2, registered: () => 2, queuedBytes: () => 0 });
  metrics.relayRefused.inc("relay-quota", 3);
  metrics.relayBytes = 99;
  const registry = prometheusRegistry(metrics);
  const first = await registry.metrics();
  assert.match(first, /^p2p_registered_clients 2$/m);
  assert.match(first, /^p2p_relay_refused_total\{reason="relay-quota"\} 3$/m);
  assert.match(first, /^p2p_relay_bytes_total 99$/m);
  assert.match(first, /^p2p_build_info\{version="0\.1\.0"\} 1$/m);
  // Values are read at every scrape, not accumulated by the exporter.
  metrics.relayBytes = 150;
  const second = await registry.metrics();
  assert.match(second, /^p2p_relay_bytes_total 150$/m);
});
