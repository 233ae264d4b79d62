import assert from "node:assert/strict";
import { PunchScheduler } from "./punch_scheduler.ts";

Deno.test("PunchScheduler waits for the punch time, bursts, then slows down", () => {
  const scheduler = new PunchScheduler(1000, {
    burstIntervalMs: 100,
    burstMs: 1000,
    slowIntervalMs: 2000,
  });
  const fired: number[] = [];
  for (let now = 0; now <= 8000; now += 10) if (scheduler.due(now)) fired.push(now);
  const burst = fired.filter((t) => t < 2000);
  assert.equal(burst[0], 1000);
  assert.equal(burst.length, 10);
  for (let i = 1; i < burst.length; i++) assert.equal(burst[i] - burst[i - 1], 100);
  const slow = fired.filter((t) => t >= 2000);
  assert.ok(slow.length >= 3 && slow.length <= 4, `slow rounds: ${slow}`);
  for (let i = 1; i < slow.length; i++) assert.equal(slow[i] - slow[i - 1], 2000);
});

Deno.test("PunchScheduler.restart starts a new burst", () => {
  const scheduler = new PunchScheduler(0, {
    burstIntervalMs: 50,
    burstMs: 100,
    slowIntervalMs: 1000,
  });
  assert.equal(scheduler.due(0), true);
  assert.equal(scheduler.due(500), false);
  scheduler.restart(600);
  assert.equal(scheduler.nextAt(550), 600);
  assert.equal(scheduler.due(600), true);
  assert.equal(scheduler.due(650), true);
});
