/**
 * Issue 11, "no packet cannon": the probe budget alone, then real clients on virtual time where
 * an attacker's introductions name 10 fake candidate addresses (and unspecified, broadcast,
 * multicast and loopback ones) and it connects again every 4 s for 60 s.
 */
import assert from "node:assert/strict";
import { ProbeBudget } from "./probe_budget.ts";
import { createWorld, type SimClient } from "../testing/client_harness.ts";
import type { ProbeBudgetOptions } from "./probe_budget.ts";

const VICTIM = { host: "192.0.2.9", port: 4000 };

Deno.test("probe budget: a silent address gets its burst, then a trickle, then almost nothing", () => {
  const budget = new ProbeBudget();
  let sent = 0;
  // A punch round every 80 ms for 60 s (what the scheduler asks for at most).
  for (let now = 0; now <= 60_000; now += 80) {
    if (budget.admit(VICTIM, 149, now) === "allowed") sent++;
  }
  // 32 at once, one per 4 s for 30 s, one per 30 s after.
  assert.ok(sent >= 32 && sent <= 32 + 8 + 1, `sent ${sent}`);
  let late = 0;
  for (let now = 60_000; now <= 120_000; now += 80) {
    if (budget.admit(VICTIM, 149, now) === "allowed") late++;
  }
  assert.ok(late <= 2, `after a silent minute ${late}`);
  assert.equal(budget.admit(VICTIM, 1200, 120_000), "too-large", "never data");
});

Deno.test("probe budget: all silent addresses together stay within the global rate", () => {
  const budget = new ProbeBudget();
  let sent = 0;
  let bytes = 0;
  // A fresh address every millisecond (an attacker cycling through addresses).
  for (let now = 0; now < 60_000; now++) {
    if (
      budget.admit({ host: `198.51.100.${now % 250}`, port: 1024 + now }, 149, now) === "allowed"
    ) {
      sent++;
      bytes += 149;
    }
  }
  assert.ok(sent <= 256 + 60 * 20 + 1, `sent ${sent}`);
  assert.ok(bytes / 60 <= 4000, `${bytes / 60} bytes/s`);
});

Deno.test("probe budget: an answering address is free for 30 s (RFC 7675), then probed afresh", () => {
  const budget = new ProbeBudget({ addressBurst: 2 });
  budget.admit(VICTIM, 41, 0);
  budget.admit(VICTIM, 41, 0);
  assert.equal(budget.admit(VICTIM, 41, 0), "address-exhausted");
  budget.answered(VICTIM, 100);
  for (let i = 0; i < 1000; i++) assert.equal(budget.admit(VICTIM, 1200, 200), "verified");
  assert.equal(budget.verified(VICTIM, 30_099), true);
  assert.equal(budget.verified(VICTIM, 30_100), false);
  assert.equal(budget.admit(VICTIM, 1200, 30_100), "too-large", "consent lapsed: no data");
  assert.equal(budget.admit(VICTIM, 41, 30_100), "allowed", "probed again from a fresh burst");
});

Deno.test("probe budget: the address table is bounded", () => {
  const budget = new ProbeBudget({ maxAddresses: 16 });
  budget.answered(VICTIM, 0);
  for (let i = 0; i < 1000; i++) budget.admit({ host: "198.51.100.1", port: 2000 + i }, 41, 1);
  assert.equal(budget.verified(VICTIM, 2), true, "verified addresses are kept over silent ones");
});

// An introduction carries at most 17 candidates (MAX_LOCAL_ADDRESSES + 1): 10 fake ones, 6 that
// must never be probed, and the attacker's real one.
const FAKE_HOSTS = Array.from({ length: 10 }, (_, i) => `203.0.113.${i + 1}`);
const NEVER = ["0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1", "::", "ff02::1"];

interface AttackResult {
  perFake: Map<string, number>;
  fakeBytes: number;
  never: number;
  relayed: boolean;
  delivered: boolean;
  thirdDirect: boolean;
}

/** `b` introduces itself to `a` with fake candidates, again every 4 s for 60 s of virtual time. */
async function attack(probeBudget: ProbeBudgetOptions | undefined): Promise<AttackResult> {
  const world = await createWorld(7);
  const perFake = new Map<string, number>(FAKE_HOSTS.map((h) => [h, 0]));
  let fakeBytes = 0;
  let never = 0;
  world.network.policy = (transit) => {
    if (transit.transport !== "udp") return undefined;
    const pair = [transit.from.hostname, transit.to.hostname].sort().join(" ");
    // The attacker is reachable only through the relay: the victim keeps punching.
    if (pair === "10.0.0.1 10.0.0.2") return { drop: true };
    if (transit.from.hostname !== "10.0.0.1") return undefined;
    const host = transit.to.hostname;
    if (perFake.has(host)) {
      perFake.set(host, perFake.get(host)! + 1);
      fakeBytes += transit.length;
    }
    if (NEVER.includes(host)) never++;
    return undefined;
  };
  try {
    const options = probeBudget ? { probeBudget } : {};
    const a = await world.addClient("10.0.0.1", undefined, options);
    const b = await world.addClient("10.0.0.2");
    const registered = (c: SimClient) => c.events.some((e) => e.type === "registered");
    assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
    world.mini.rewriteIntroduction = (message, to) => {
      if (to !== a.identity.id || message.peer !== b.identity.id) return message;
      const real = message.candidates as { host: string; port: number; kind: string }[];
      const fakes = [...FAKE_HOSTS, ...NEVER].map((host) => ({ host, port: 4000, kind: "local" }));
      return { ...message, candidates: [...fakes, ...real] };
    };
    for (let round = 0; round < 15; round++) {
      b.client.connect(a.identity.id);
      await world.runtime.advance(4000);
    }
    const relayed = a.client.list().some((row) =>
      row.peer === b.identity.id && row.state === "relayed"
    );
    b.client.send(a.identity.id, "still reachable");
    const delivered = await world.runtime.runUntil(
      () => a.events.some((e) => e.type === "message" && e.text === "still reachable"),
      10_000,
    );
    const c = await world.addClient("10.0.0.3");
    assert.ok(await world.runtime.runUntil(() => registered(c), 5000));
    c.client.connect(a.identity.id);
    let thirdDirect = await world.runtime.runUntil(
      () => c.client.list().some((row) => row.peer === a.identity.id && row.state === "direct"),
      10_000,
    );
    c.client.send(a.identity.id, "from a real peer");
    thirdDirect &&= await world.runtime.runUntil(
      () => a.events.some((e) => e.type === "message" && e.text === "from a real peer"),
      10_000,
    );
    return { perFake, fakeBytes, never, relayed, delivered, thirdDirect };
  } finally {
    world.network.policy = undefined;
    await world.close();
  }
}

Deno.test("no packet cannon: fake candidates re-introduced every 4 s for 60 s get a bounded trickle; real peers connect", async () => {
  const result = await attack(undefined);
  const counts = [...result.perFake.values()];
  // Each fake address: its burst of 32, one per 4 s in its first 30 s, one per 30 s after.
  assert.ok(counts.every((n) => n >= 1 && n <= 41), `per fake address: ${counts}`);
  const rate = result.fakeBytes / 64;
  assert.ok(rate <= 4000, `${rate.toFixed(0)} bytes/s to addresses that never answered`);
  assert.equal(result.never, 0, "nothing to unspecified, broadcast, multicast or loopback");
  assert.ok(result.relayed, "the attacker is still served (relayed)");
  assert.ok(result.delivered, "and its messages arrive");
  assert.ok(result.thirdDirect, "another peer connects directly meanwhile");
});

Deno.test("no packet cannon (control): without the budget the same attack is a cannon", async () => {
  const unlimited = { addressBurst: 1e9, globalBurst: 1e9, globalPerSecond: 1e9 };
  const result = await attack(unlimited);
  const counts = [...result.perFake.values()];
  assert.ok(counts.every((n) => n > 41 * 10), `per fake address without a budget: ${counts}`);
});
