import assert from "node:assert/strict";
import { RelayPaths } from "./relay_paths.ts";

const T1 = { id: 1, label: "turn 192.0.2.1:3478" };
const T2 = { id: 2, label: "turn 192.0.2.2:3478" };
const PEER = { host: "198.51.100.7", port: 4000 };
const PEER2 = { host: "198.51.100.8", port: 4000 };

/** Sends every due probe; answers those through relays in `answering` after `rtt` ms. */
function round(
  relays: RelayPaths,
  now: number,
  turn: typeof T1[],
  answering: Map<number | "server", number>,
  serverUsable = true,
): void {
  const probes = relays.probes(now, turn, [PEER, PEER2], serverUsable);
  probes.forEach((probe, i) => {
    const nonce = `${now}-${i}`;
    relays.recordProbe(nonce, probe, now);
    const rtt = answering.get(probe.relay);
    // Only the first address answers through TURN.
    if (rtt === undefined || (probe.target && probe.target !== PEER)) return;
    relays.probeResponse(nonce, probe.relay, probe.target, now + rtt);
  });
}

Deno.test("a TURN path is validated by a probe round trip through it, to the address that answered", () => {
  const relays = new RelayPaths();
  assert.equal(relays.choose(0, "turn", true), undefined, "nothing validated yet");
  round(relays, 0, [T1], new Map([[1, 10]]), false);
  assert.deepEqual(relays.target(1), PEER);
  assert.equal(relays.rttMs(1), 10);
  assert.equal(relays.choose(10, "turn", true), 1);
  assert.equal(relays.label(1), "turn 192.0.2.1:3478");
  // --relay server never takes it.
  assert.equal(relays.choose(10, "server", true), "server");
  assert.equal(relays.choose(10, "server", false), undefined);
});

Deno.test("an answer from another address than the probe went to, or through another relay, proves nothing", () => {
  const relays = new RelayPaths();
  const probes = relays.probes(0, [T1], [PEER], false);
  relays.recordProbe("x", probes[0], 0);
  assert.equal(relays.probeResponse("x", 1, PEER2, 5), false);
  relays.recordProbe("y", probes[0], 0);
  assert.equal(relays.probeResponse("y", "server", undefined, 5), false);
  assert.equal(relays.target(1), undefined);
});

Deno.test("any: the lower round trip wins, with hysteresis; a silent TURN path expires", () => {
  const relays = new RelayPaths({ keepaliveMs: 5000, expireMs: 15_000 });
  // The server relay answers in 40 ms, TURN 1 in 10 ms, TURN 2 in 9 ms.
  round(relays, 0, [T1, T2], new Map<number | "server", number>([["server", 40], [1, 10], [2, 9]]));
  assert.equal(relays.choose(50, "any", true), 2);
  // Equal-ish relays do not flap: 1 at 8 ms is not 25 % better than 2 at ~9.
  for (let t = 5000; t <= 10_000; t += 5000) {
    round(
      relays,
      t,
      [T1, T2],
      new Map<number | "server", number>([["server", 40], [1, 8], [2, 9]]),
    );
    assert.equal(relays.choose(t + 50, "any", true), 2);
  }
  // TURN 2 goes silent: after 15 s without an answer it is dropped, TURN 1 takes over.
  let now = 15_000;
  for (; now <= 30_000; now += 5000) {
    round(relays, now, [T1, T2], new Map<number | "server", number>([["server", 40], [1, 8]]));
  }
  assert.equal(relays.target(2), undefined);
  assert.equal(relays.choose(now, "any", true), 1);
  // An allocation that is gone (no longer listed) is forgotten at once.
  round(relays, now + 5000, [T2], new Map());
  assert.equal(relays.choose(now + 5000, "any", true), "server");
});

Deno.test("probe pace: every candidate each second for 10 s, then every 5 s; validated paths every 5 s", () => {
  const relays = new RelayPaths();
  let sent = 0;
  for (let t = 0; t < 20_000; t += 100) sent += relays.probes(t, [T1], [PEER, PEER2], false).length;
  // 10 rounds in the first 10 s (2 addresses each), then 5 s after the last: 14, 19 s: 12 × 2.
  assert.equal(sent, 24);
  assert.equal(relays.nextDeadline(20_000, false, 2), 24_000);
});
