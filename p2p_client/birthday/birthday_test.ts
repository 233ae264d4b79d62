import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import type { MemoryNetwork } from "../../testing/memory_network.ts";
import { BirthdayEasy, BirthdayHard, DEFAULT_BUDGET } from "./birthday.ts";
import { decodeProbe, encodeProbe, ProbeType } from "./probe_codec.ts";

const EASY = "198.18.0.2";
const HARD = "198.18.0.3";

async function attempt(seed: number, easyKey: Uint8Array, hardKey: Uint8Array) {
  const runtime = new VirtualRuntime({ seed });
  const network = runtime.net as MemoryNetwork;
  const sendTimes: number[] = [];
  // The easy side's NAT filters by sender address and port: only what it has sent to gets in.
  const contacted = new Set<string>();
  let filtered = 0;
  network.policy = (transit) => {
    if (transit.from.hostname === EASY) {
      sendTimes.push(runtime.now());
      contacted.add(`${transit.to.hostname}:${transit.to.port}`);
    } else if (
      transit.to.hostname === EASY &&
      !contacted.has(`${transit.from.hostname}:${transit.from.port}`)
    ) {
      filtered++;
      return { drop: true };
    }
    return { delayMs: 20 };
  };
  const easySocket = runtime.forHost(EASY).net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
  const easy = new BirthdayEasy({
    runtime: runtime.forHost(EASY),
    key: easyKey,
    peerAddress: HARD,
    send: (bytes, to) => void easySocket.send(bytes, to),
  });
  void (async () => {
    for (;;) {
      try {
        const [bytes, from] = await easySocket.receive();
        easy.handle(bytes, from);
      } catch {
        return;
      }
    }
  })();
  const hard = new BirthdayHard({
    runtime: runtime.forHost(HARD),
    key: hardKey,
    peer: easySocket.addr,
    timeoutMs: 40_000,
  });
  let easyResult: unknown = "pending";
  let hardResult: unknown = "pending";
  hard.run().then((r) => hardResult = r);
  easy.run().then((r) => easyResult = r);
  await runtime.runUntil(() => easyResult !== "pending" && hardResult !== "pending", 45_000, 100);
  const result = {
    easy: easyResult as Awaited<ReturnType<BirthdayEasy["run"]>>,
    hard: hardResult as Awaited<ReturnType<BirthdayHard["run"]>>,
    openSockets: hard.openSockets,
    easySent: easy.stats.packetsSent,
    easyProbes: easy.stats.probes,
    hardSent: hard.stats.packetsSent,
    sendTimes,
    filtered,
  };
  hard.cancel();
  easySocket.close();
  return result;
}

Deno.test("probes authenticate with the shared key and nothing else", () => {
  const key = new Uint8Array(32).fill(9);
  const probe = encodeProbe(key, ProbeType.EasyProbe, new Uint8Array(8).fill(1));
  assert.equal(decodeProbe(key, probe)?.type, ProbeType.EasyProbe);
  assert.equal(decodeProbe(new Uint8Array(32), probe), undefined);
  for (let i = 0; i < probe.length; i++) {
    const forged = probe.slice();
    forged[i] ^= 1;
    assert.equal(decodeProbe(key, forged), undefined, `bit flip at ${i}`);
  }
  assert.equal(decodeProbe(key, probe.subarray(0, 28)), undefined);
});

Deno.test("birthday punching finds a port within the budget; losers close at once", async () => {
  const key = new Uint8Array(32).fill(7);
  let successes = 0;
  const probesToWin: number[] = [];
  const runs = 20;
  for (let seed = 1; seed <= runs; seed++) {
    const r = await attempt(seed, key, key);
    // Budget: never more than maxProbes probes (+ one answer), never more than 100 in any second.
    assert.ok(r.easySent <= DEFAULT_BUDGET.maxProbes + 1, `easy sent ${r.easySent}`);
    for (let i = 0; i + DEFAULT_BUDGET.ratePerSecond < r.sendTimes.length; i++) {
      const window = r.sendTimes[i + DEFAULT_BUDGET.ratePerSecond] - r.sendTimes[i];
      assert.ok(window >= 999, `101 sends within ${window} ms`);
    }
    if (r.easy !== undefined && r.hard !== undefined) {
      successes++;
      probesToWin.push(r.easyProbes);
      assert.equal(r.easy.remote.hostname, HARD);
      assert.equal(r.easy.remote.port, r.hard.socket?.addr.port, "both sides agree on the port");
      assert.equal(r.openSockets, 1, "every other socket closed");
      assert.ok(
        r.filtered > 0,
        `the filter dropped the hard side's early probes (${r.filtered})`,
      );
      assert.ok(r.hardSent <= 256 + 4, `hard sent ${r.hardSent}`);
    }
  }
  probesToWin.sort((a, b) => a - b);
  // 1 - (1 - 256/64512)^2048 = 99.97% per run.
  assert.ok(successes >= 18, `${successes} of ${runs} succeeded`);
  const median = probesToWin[Math.floor(probesToWin.length / 2)];
  assert.ok(median < 600, `median ${median} probes to win`);
});

Deno.test("a peer without the key never wins and the easy side stops at the budget", async () => {
  const r = await attempt(3, new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
  assert.equal(r.easy, undefined);
  assert.equal(r.hard, undefined);
  assert.equal(r.easyProbes, DEFAULT_BUDGET.maxProbes);
  assert.ok(r.easySent <= DEFAULT_BUDGET.maxProbes + 5, `easy sent ${r.easySent}`);
});
