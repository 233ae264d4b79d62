import assert from "node:assert/strict";
import { PresenceWatcher } from "./presence.ts";

const id = (n: number) => n.toString(16).padStart(40, "0");

Deno.test("presence: offline contacts are asked at once, paced, then with a doubling interval", () => {
  const asked: [number, string][] = [];
  let now = 0;
  const watcher = new PresenceWatcher({
    probe: (peer) => asked.push([now, peer]),
    firstRetryMs: 1000,
    maxRetryMs: 4000,
    minGapMs: 100,
  });
  const contacts = [id(1), id(2), id(3)];
  const online = new Set([id(3)]);
  for (; now <= 10_000; now += 50) watcher.tick(now, contacts, online);
  const times = (peer: string) => asked.filter(([, p]) => p === peer).map(([t]) => t);
  assert.deepEqual(times(id(3)), [], "an online contact is not asked");
  assert.deepEqual(times(id(1)), [0, 1000, 3000, 7000]);
  assert.deepEqual(times(id(2)), [100, 1100, 3100, 7100], "paced by minGapMs");
  for (let i = 1; i < asked.length; i++) assert.ok(asked[i][0] - asked[i - 1][0] >= 100);
});

Deno.test("presence: a contact that went online and offline again is asked again soon", () => {
  const asked: [number, string][] = [];
  let now = 0;
  const watcher = new PresenceWatcher({
    probe: (peer) => asked.push([now, peer]),
    firstRetryMs: 1000,
    maxRetryMs: 60_000,
    minGapMs: 0,
  });
  const contacts = [id(1)];
  for (; now < 20_000; now += 100) watcher.tick(now, contacts, new Set());
  const before = asked.length;
  watcher.tick(now, contacts, new Set([id(1)])); // online now
  now += 100;
  watcher.tick(now, contacts, new Set()); // and gone: asked at once, not after the backoff
  assert.equal(asked.length, before + 1);
  assert.equal(asked.at(-1)![0], now);
  // Contacts removed from the list are no longer asked about.
  for (now += 100; now < 200_000; now += 100) watcher.tick(now, [], new Set());
  assert.equal(asked.length, before + 1);
});
