import assert from "node:assert/strict";
import { PathManager } from "./path_manager.ts";

const A = { host: "10.0.0.2", port: 4000 };
const B = { host: "198.18.0.5", port: 5000 };
const NAT = { host: "198.18.0.5", port: 61000 };

Deno.test("connecting becomes direct on a validated probe round trip", () => {
  const path = new PathManager(0, { burstIntervalMs: 100 });
  path.introduce(0, [A, B], 500);
  assert.deepEqual(path.probeTargets(100), [], "nothing before the punch time");
  const targets = path.probeTargets(500);
  assert.deepEqual(targets, [A, B]);
  path.recordProbe("n-a", A, 500);
  path.recordProbe("n-b", B, 500);
  assert.equal(path.probeResponse("n-b", B, 520), "validated");
  assert.equal(path.state, "direct");
  assert.equal(path.path, "udp 198.18.0.5:5000");
  assert.deepEqual(path.takeChange(), {
    state: "direct",
    path: "udp 198.18.0.5:5000",
    reason: "probe round trip",
  });
  assert.equal(path.probeRttMs, 20);
  assert.equal(path.probeResponse("n-b", B, 530), "unknown", "a nonce is used once");
});

Deno.test("a response from another address adds a peer-reflexive candidate, not a path", () => {
  const path = new PathManager(0);
  path.introduce(0, [B], 0);
  path.probeTargets(0);
  path.recordProbe("n1", B, 0);
  assert.equal(path.probeResponse("n1", NAT, 10), "reflexive");
  assert.equal(path.state, "none");
  assert.deepEqual(path.candidates, [B, NAT]);
  path.recordProbe("n2", NAT, 20);
  assert.equal(path.probeResponse("n2", NAT, 30), "validated");
  assert.equal(path.path, "udp 198.18.0.5:61000");
});

Deno.test("no direct path within the connect timeout falls back to the relay and keeps probing", () => {
  const path = new PathManager(0, { connectTimeoutMs: 3000, burstMs: 1000, slowIntervalMs: 2000 });
  path.introduce(0, [A], 0);
  path.tick(2999);
  assert.equal(path.state, "none");
  path.tick(3000);
  assert.equal(path.state, "relayed");
  assert.equal(path.path, "relay");
  assert.equal(path.takeChange()?.state, "relayed");
  let rounds = 0;
  for (let now = 3000; now < 13_000; now += 10) if (path.probeTargets(now).length) rounds++;
  assert.ok(rounds >= 3 && rounds <= 6, `upgrade probes at a bounded rate (backoff): ${rounds}`);
  path.recordProbe("up", A, 13_000);
  path.probeResponse("up", A, 13_010);
  assert.equal(path.state, "direct");
  assert.equal(path.takeChange()?.reason, "upgraded from relay");
});

Deno.test("an unanswered direct path goes mixed (relay too), then relayed; answers hold it", () => {
  const path = new PathManager(0, {
    doubtAfterMs: 4000,
    directTimeoutMs: 8000,
    keepaliveMs: 2000,
    doubtProbeMs: 500,
  });
  path.introduce(0, [A], 0);
  path.probeTargets(0);
  path.recordProbe("n", A, 0);
  path.probeResponse("n", A, 1);
  assert.deepEqual(path.route, { udp: A, relay: false });
  assert.deepEqual(path.probeTargets(1000), []);
  assert.deepEqual(path.probeTargets(2001), [A], "keepalive");
  path.recordProbe("k1", A, 2001);
  path.probeResponse("k1", A, 2010);
  path.tick(5000);
  assert.equal(path.state, "direct", "answered keepalives hold the path");
  assert.deepEqual(path.probeTargets(4010), [A]);
  assert.deepEqual(path.probeTargets(4100), [], "an unanswered keepalive: quicker probes");
  assert.deepEqual(path.probeTargets(4510), [A]);
  // A packet merely received proves nothing: one-way loss would otherwise go unnoticed.
  assert.deepEqual(path.udpAuthenticated(A, 5000), []);
  path.tick(6010);
  assert.equal(path.state, "mixed");
  assert.equal(path.takeChange()?.reason, "direct path in doubt");
  assert.deepEqual(path.route, { udp: A, relay: true }, "both paths while in doubt");
  assert.equal(path.path, "udp 10.0.0.2:4000 + relay");
  path.tick(10_010);
  assert.equal(path.state, "relayed");
  assert.equal(path.takeChange()?.reason, "direct path went silent");
  assert.deepEqual(path.route, { relay: true });
});

Deno.test("mixed returns to direct on proof", () => {
  const path = new PathManager(0, { doubtAfterMs: 1000, directTimeoutMs: 5000 });
  path.introduce(0, [A], 0);
  path.recordProbe("n", A, 0);
  path.probeResponse("n", A, 1);
  path.tick(1001);
  assert.equal(path.state, "mixed");
  path.recordProbe("m", A, 1100);
  assert.equal(path.probeResponse("m", A, 1110), "validated");
  assert.equal(path.state, "direct");
  assert.equal(path.takeChange()?.reason, "direct path confirmed");
});

Deno.test("reset stops probing until introduced again; a peer gone leaves no path", () => {
  const path = new PathManager(0);
  path.introduce(0, [A], 0);
  path.tick(3000);
  assert.equal(path.state, "relayed");
  path.setRelayAvailable(false);
  assert.equal(path.state, "none", "the relay cannot reach a peer that left");
  path.introduce(3500, [A], 3500);
  assert.equal(path.state, "relayed", "a peer introduced again uses the relay at once");
  path.reset("closed");
  assert.equal(path.state, "none");
  assert.deepEqual(path.probeTargets(4000), []);
  path.introduce(4200, [A], 4200);
  assert.equal(path.state, "none");
  assert.deepEqual(path.probeTargets(4200), [A]);
});

Deno.test("candidates are bounded; reflexive ones replace older reflexive ones", () => {
  const path = new PathManager(0, { maxCandidates: 3 });
  path.introduce(0, [A, B], 0);
  assert.equal(path.addReflexive({ host: "1.1.1.1", port: 1 }), true);
  assert.equal(path.addReflexive({ host: "1.1.1.2", port: 1 }), true);
  assert.equal(path.candidates.length, 3);
  assert.deepEqual(path.candidates[2], { host: "1.1.1.2", port: 1 });
});

Deno.test("a live direct path stays when another candidate validates too (no flapping)", () => {
  const path = new PathManager(0);
  path.introduce(0, [A, B], 0);
  path.probeTargets(0);
  path.recordProbe("n-a", A, 0);
  path.recordProbe("n-b", B, 0);
  assert.equal(path.probeResponse("n-a", A, 5), "validated");
  assert.equal(path.path, "udp 10.0.0.2:4000");
  path.takeChange();
  assert.equal(path.probeResponse("n-b", B, 6), "validated");
  assert.equal(path.path, "udp 10.0.0.2:4000", "the first validated path stays");
  assert.equal(path.takeChange(), undefined, "no state change reported");
});

Deno.test("relayed without candidates says so, not 'no direct path in time'", () => {
  const path = new PathManager(0, { connectTimeoutMs: 1000 });
  path.introduce(0, [], 0);
  path.tick(1000);
  assert.equal(path.state, "relayed");
  assert.equal(path.takeChange()?.reason, "no direct candidates to try");
  const other = new PathManager(0, { connectTimeoutMs: 1000 });
  other.introduce(0, [A], 0);
  other.tick(1000);
  assert.equal(other.takeChange()?.reason, "no direct path in time");
});

/** Runs `path` from `from` to `to` ms in 10 ms steps (as its deadline timer would), returning the
 * times of candidate probe rounds. */
function rounds(path: PathManager, from: number, to: number): number[] {
  const at: number[] = [];
  for (let now = from; now < to; now += 10) {
    path.tick(now);
    if (path.probeTargets(now).length > 0) at.push(now);
  }
  return at;
}

Deno.test("a pair never direct settles on the relay after bounded rounds with backoff, then retries slowly", () => {
  const path = new PathManager(0, {
    connectTimeoutMs: 3000,
    burstMs: 5000,
    burstIntervalMs: 100,
    slowIntervalMs: 2000,
    maxSlowIntervalMs: 16_000,
    maxAttempts: 8,
    retryAfterMs: 300_000,
  });
  path.introduce(0, [A, B], 0);
  const burst = rounds(path, 0, 5000);
  assert.ok(burst.length >= 40, `a fast burst first: ${burst.length} rounds`);
  assert.equal(path.state, "relayed");
  const slow = rounds(path, 5000, 200_000);
  const gaps = slow.slice(1).map((t, i) => t - slow[i]);
  assert.equal(slow.length, 8, `bounded: ${slow.join(" ")}`);
  assert.deepEqual(gaps, [2000, 4000, 4000, 8000, 8000, 16000, 16000], "backoff");
  assert.ok(path.settled, "settled on the relay");
  assert.match(path.settled.reason, /not direct-capable/);
  assert.equal(path.state, "relayed");
  const change = path.takeChange();
  assert.equal(change?.settled, true, "the verdict is reported as a change");
  assert.equal(path.nextDeadline(200_000), path.settled.retryAt, "no timer until the retry");
  // The slow periodic retry: a new burst, then the same bounded rounds.
  const retryAt = path.settled.retryAt;
  assert.deepEqual(rounds(path, 200_000, retryAt), [], "silence until the retry");
  const again = rounds(path, retryAt, retryAt + 5000);
  assert.ok(again.length >= 40, "a new burst at the retry");
  assert.equal(path.settled, undefined);
});

Deno.test("a settled pair tries direct again on a trigger: new candidates, a new address of the peer, retry()", () => {
  const options = { burstMs: 1000, burstIntervalMs: 100, maxAttempts: 2, slowIntervalMs: 1000 };
  const settle = () => {
    const path = new PathManager(0, options);
    path.introduce(0, [A], 0);
    rounds(path, 0, 60_000);
    assert.ok(path.settled);
    assert.deepEqual(rounds(path, 60_000, 70_000), []);
    return path;
  };
  const byCandidates = settle();
  assert.deepEqual(byCandidates.addCandidates(70_000, [B]), [B]);
  assert.equal(byCandidates.settled, undefined);
  assert.ok(rounds(byCandidates, 70_000, 71_000).length >= 5, "a new burst");

  const byReflexive = settle();
  byReflexive.addReflexive(NAT);
  assert.equal(byReflexive.settled, undefined);
  assert.ok(rounds(byReflexive, 70_000, 72_000).length >= 1);

  const byRetry = settle();
  byRetry.retry(70_000, "our public address changed");
  assert.equal(byRetry.settled, undefined);
  assert.ok(rounds(byRetry, 70_000, 71_000).length >= 5, "a new burst");
  // Proof at any point ends the doubt for good: direct.
  byRetry.recordProbe("p", A, 71_000);
  byRetry.probeResponse("p", A, 71_010);
  assert.equal(byRetry.state, "direct");
});

Deno.test("a pair that was direct keeps probing every slowIntervalMs after losing the path (no verdict for keepTryingMs)", () => {
  const path = new PathManager(0, {
    burstMs: 1000,
    slowIntervalMs: 2000,
    doubtAfterMs: 1000,
    directTimeoutMs: 2000,
    keepTryingMs: 60_000,
    maxAttempts: 3,
  });
  path.introduce(0, [A], 0);
  path.recordProbe("n", A, 0);
  path.probeResponse("n", A, 1);
  assert.equal(path.state, "direct");
  rounds(path, 10, 3000);
  assert.equal(path.state, "relayed", "lost");
  const lostRounds = rounds(path, 4010, 60_000);
  const gaps = new Set(lostRounds.slice(1).map((t, i) => t - lostRounds[i]));
  assert.deepEqual([...gaps], [2000], "steady 2 s rounds while known direct-capable");
  assert.equal(path.settled, undefined);
  rounds(path, 60_000, 200_000);
  assert.ok(path.settled, "after keepTryingMs it may settle too");
});

Deno.test("traffic from a new address of the peer: probed with the current path; the path moves only if the current one goes unanswered", () => {
  const setup = () => {
    const path = new PathManager(0, { doubtProbeMs: 500 });
    path.introduce(0, [A], 0);
    path.recordProbe("n", A, 0);
    path.probeResponse("n", A, 20); // direct on A, RTT 20 ms
    path.takeChange();
    const targets = path.udpAuthenticated(NAT, 1000);
    assert.deepEqual(targets, [NAT, A], "the new address and the current path, at once");
    assert.deepEqual(path.udpAuthenticated(NAT, 1100), [], "at most every doubtProbeMs");
    path.recordProbe("new", NAT, 1000);
    path.recordProbe("old", A, 1000);
    assert.equal(path.probeResponse("new", NAT, 1020), "validated");
    assert.equal(path.path, "udp 10.0.0.2:4000", "not before the current path had its chance");
    return path;
  };
  const moved = setup();
  assert.ok(moved.nextDeadline(1020) <= 1050, "a timer for the unanswered probe");
  moved.tick(1050); // the probe of A unanswered for two round trips (at least 50 ms)
  assert.equal(moved.path, "udp 198.18.0.5:61000");
  assert.deepEqual(moved.takeChange(), {
    state: "direct",
    path: "udp 198.18.0.5:61000",
    reason: "the peer's address changed",
  });

  const stays = setup();
  stays.probeResponse("old", A, 1025); // the current path answers too
  stays.tick(2000);
  assert.equal(stays.path, "udp 10.0.0.2:4000", "a live path stays (no flapping)");
  assert.equal(stays.takeChange(), undefined);
});

Deno.test("the relay label shows which relay: a switch while relayed is a path change", () => {
  const path = new PathManager(0);
  path.introduce(0, [], 0);
  path.tick(5000);
  assert.equal(path.path, "relay");
  path.takeChange();
  path.setRelayLabel("turn 192.0.2.1:3478");
  assert.equal(path.path, "turn 192.0.2.1:3478");
  assert.equal(path.takeChange()?.path, "turn 192.0.2.1:3478");
  path.setRelayLabel("turn 192.0.2.1:3478");
  assert.equal(path.takeChange(), undefined, "no change for the same relay");
});

Deno.test("the peer's TURN relayed addresses are never direct candidates, and a direct path on one is dropped", () => {
  const relayed = { host: "203.0.113.5", port: 50000 };
  const path = new PathManager(0);
  path.introduce(0, [A, relayed], 0);
  const targets = path.probeTargets(0);
  assert.equal(targets.length, 2);
  path.recordProbe("n", relayed, 0);
  assert.equal(path.probeResponse("n", relayed, 3), "validated");
  assert.equal(path.state, "direct");
  path.setRelayAddresses([relayed]);
  assert.equal(path.state, "relayed");
  assert.deepEqual(path.candidates, [A]);
  assert.equal(path.addReflexive(relayed), false);
});

Deno.test("a relay that becomes available inside the connect window waits for the window (a direct path may still come)", () => {
  const path = new PathManager(0, { connectTimeoutMs: 3000 });
  path.introduce(0, [A], 0);
  path.setRelayAvailable(false, 0);
  path.setRelayAvailable(true, 1000);
  assert.equal(path.state, "none");
  path.tick(3000);
  assert.equal(path.state, "relayed");
});
