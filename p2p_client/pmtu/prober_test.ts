import assert from "node:assert/strict";
import { PmtuProber, type PmtuProberOptions } from "./prober.ts";

/**
 * Runs a prober against a path that carries packets up to `pathMax` bytes (answered after `rtt`
 * ms) or drops everything (`answers: false`), on virtual time, until `until` ms. Returns the
 * sizes probed in order.
 */
function drive(
  prober: PmtuProber,
  path: { pathMax: number; rtt: number; answers?: boolean },
  from: number,
  until: number,
): number[] {
  const probed: number[] = [];
  const acks: { at: number; id: number }[] = [];
  let now = from;
  for (let step = 0; step < 10_000 && now <= until; step++) {
    const probe = prober.poll(now);
    if (probe !== undefined) {
      probed.push(probe.size);
      if (path.answers !== false && probe.size <= path.pathMax) {
        acks.push({ at: now + path.rtt, id: probe.id });
      }
      continue;
    }
    const nextAck = acks.length > 0 ? acks[0].at : Infinity;
    const next = Math.min(nextAck, prober.nextDeadline() ?? Infinity);
    if (next === Infinity || next > until) break;
    now = Math.max(now, next);
    while (acks.length > 0 && acks[0].at <= now) prober.onAck(acks.shift()!.id, now);
  }
  return probed;
}

const options: PmtuProberOptions = { baseSize: 1200, maxSize: 65_507 };

Deno.test("pmtu: loopback carries the largest size: found in two probes", () => {
  const prober = new PmtuProber(options);
  prober.start(0);
  assert.equal(prober.size, 1200);
  const probed = drive(prober, { pathMax: 65_507, rtt: 0.1 }, 0, 10_000);
  assert.deepEqual(probed, [1200, 65_507]);
  assert.equal(prober.state, "search-complete");
  assert.equal(prober.size, 65_507);
});

Deno.test("pmtu: an Ethernet path is found within the granularity, never above it", () => {
  const prober = new PmtuProber(options);
  prober.start(0);
  const probed = drive(prober, { pathMax: 1472, rtt: 20 }, 0, 60_000);
  assert.equal(prober.state, "search-complete");
  assert.ok(prober.size <= 1472 && prober.size > 1472 - 64, `size ${prober.size}`);
  // Each failing size costs three probes; the search is bounded.
  assert.ok(probed.length <= 40, `${probed.length} probes`);
  assert.equal(probed[0], 1200);
  assert.equal(probed[1], 65_507);
});

Deno.test("pmtu: a peer that never answers (older client) leaves the base size, error state", () => {
  const prober = new PmtuProber(options);
  prober.start(0);
  const probed = drive(prober, { pathMax: 65_507, rtt: 1, answers: false }, 0, 10_000);
  assert.deepEqual(probed, [1200, 1200, 1200]);
  assert.equal(prober.state, "error");
  assert.equal(prober.size, 1200);
  // The raise timer tries again after 600 s; a peer that now answers is found.
  assert.equal(prober.nextDeadline(), 3000 + 600_000);
  drive(prober, { pathMax: 65_507, rtt: 1 }, 603_000, 700_000);
  assert.equal(prober.state, "search-complete");
  assert.equal(prober.size, 65_507);
});

Deno.test("pmtu: a black hole or a path change drops to the base and searches again", () => {
  const prober = new PmtuProber(options);
  prober.start(0);
  drive(prober, { pathMax: 65_507, rtt: 1 }, 0, 1000);
  assert.equal(prober.size, 65_507);
  prober.blackHole(2000);
  assert.equal(prober.size, 1200);
  assert.equal(prober.state, "base");
  drive(prober, { pathMax: 9000, rtt: 1 }, 2000, 60_000);
  assert.equal(prober.size, 8952);
  prober.pathChanged(70_000);
  assert.equal(prober.size, 1200);
  drive(prober, { pathMax: 1200, rtt: 50 }, 70_000, 200_000);
  assert.equal(prober.size, 1200);
  assert.equal(prober.state, "search-complete");
});

Deno.test("pmtu: the raise timer finds a path that grew; late and unknown ACKs change nothing", () => {
  const prober = new PmtuProber(options);
  assert.equal(prober.poll(0), undefined); // not started
  prober.start(0);
  const base = prober.poll(0)!;
  prober.onAck(999, 0.5);
  assert.equal(prober.state, "base");
  prober.onAck(base.id, 1);
  prober.onAck(base.id, 1); // a duplicate
  assert.equal(prober.state, "searching");
  drive(prober, { pathMax: 1452, rtt: 1 }, 1, 100_000);
  const found = prober.size;
  assert.ok(found <= 1452 && found > 1452 - 64);
  const raiseAt = prober.nextDeadline()!;
  assert.ok(raiseAt >= 600_000);
  drive(prober, { pathMax: 65_507, rtt: 1 }, raiseAt, raiseAt + 10_000);
  assert.equal(prober.size, 65_507);
});

Deno.test("pmtu: bad sizes are refused", () => {
  assert.throws(() => new PmtuProber({ baseSize: 2000, maxSize: 1200 }), RangeError);
  const same = new PmtuProber({ baseSize: 1200, maxSize: 1200 });
  same.start(0);
  assert.deepEqual(drive(same, { pathMax: 1200, rtt: 1 }, 0, 10_000), [1200]);
  assert.equal(same.state, "search-complete");
});

Deno.test("pmtu: real probes through sealed sessions over a path that drops large packets", async () => {
  const { handshakenSessionPair } = await import("../../shared/peer/testing.ts");
  const { decodeFrame, FrameType } = await import("../../shared/peer/frames.ts");
  const { probeAnswer, probeFrame, probeIdOf } = await import("./prober.ts");
  const [a, b] = await handshakenSessionPair({
    initiatorIndex: 1,
    responderIndex: 2,
    now: () => 0,
  });
  const pathMax = 9000; // a jumbo-frame path: 9000-byte UDP payloads at most
  const prober = new PmtuProber(options);
  prober.start(0);
  let now = 0;
  for (let step = 0; step < 200 && prober.state !== "search-complete"; step++) {
    const probe = prober.poll(now);
    if (probe === undefined) {
      now = prober.nextDeadline() ?? now + 1;
      continue;
    }
    const packet = a.sealLargeSync(probeFrame(probe));
    assert.equal(packet.length, probe.size);
    if (packet.length > pathMax) continue; // dropped by the path
    const frame = decodeFrame(b.openSync(packet)!);
    assert.equal(frame.type, FrameType.PmtuProbe);
    if (frame.type !== FrameType.PmtuProbe) return;
    const answer = decodeFrame(a.openSync(b.sealSync(probeAnswer(frame)))!);
    if (answer.type !== FrameType.PmtuAck) throw new Error("not an ack");
    assert.equal(answer.size, probe.size - 29);
    now += 1;
    prober.onAck(probeIdOf(answer), now);
  }
  assert.equal(prober.state, "search-complete");
  assert.equal(prober.size, 8952);
  // The answer was sealed 0xE5 too: both sides learnt that the other reads large packets.
  assert.equal(a.peerReadsLarge && b.peerReadsLarge, true);
});
