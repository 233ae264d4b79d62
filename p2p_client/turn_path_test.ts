// TURN relays as paths, on virtual time: two real clients, the real rendezvous server and our
// TURN server (stun_server/turn/) in one process, direct UDP between the clients dropped by the
// in-memory network. `--relay turn`, `--relay any` (switching to the faster relay and back when
// one dies, exactly once and in order) and `--relay server` (TURN never touched).
import assert from "node:assert/strict";
import { createWorld, type SimClient, type World } from "../testing/client_harness.ts";
import type { Transit, Verdict } from "../testing/memory_network.ts";
import { StunService } from "../stun_server/stun_service.ts";
import { StaticUsers, TurnServer } from "../stun_server/turn/mod.ts";
import type { RelayPolicy } from "./relay_paths.ts";

const TURN = "203.0.113.1";
const A = "198.51.100.1";
const B = "198.51.100.2";
const LABEL = `turn ${TURN}:3478`;

interface Lab {
  world: World;
  a: SimClient;
  b: SimClient;
  /** Datagrams the clients sent to the TURN server. */
  toTurn: () => number;
  /** Drop everything to and from the TURN server. */
  killTurn: () => void;
  close(): Promise<void>;
}

async function lab(
  policy: RelayPolicy,
  options: { serverDelayMs?: number; password?: string; bWithoutTurn?: boolean } = {},
): Promise<Lab> {
  const world = await createWorld(5, { server: "real" });
  const turnRuntime = world.runtime.forHost(TURN);
  const turn = new TurnServer({
    runtime: turnRuntime,
    realm: "example.org",
    credentials: new StaticUsers([{ name: "peer", password: "s3cret" }]),
    relayPorts: { min: 50000, max: 50099 },
  });
  const service = StunService.listen({ runtime: turnRuntime, hostname: TURN, port: 3478, turn });
  let toTurn = 0;
  let turnDead = false;
  world.network.policy = (transit: Transit): Verdict | undefined => {
    const from = transit.from.hostname;
    const to = transit.to.hostname;
    if (transit.transport === "udp" && (from === A || from === B) && (to === A || to === B)) {
      return { drop: true }; // direct UDP between the clients is blocked
    }
    if (to === TURN && (from === A || from === B)) toTurn++;
    if (turnDead && (to === TURN || from === TURN)) return { drop: true };
    if (transit.transport === "tcp" && options.serverDelayMs) {
      return { delayMs: options.serverDelayMs };
    }
    if (to === TURN || from === TURN) return { delayMs: 2 };
    return undefined;
  };
  const clientOptions = {
    relayPolicy: policy,
    turnServers: [{
      host: TURN,
      port: 3478,
      label: LABEL,
      username: "peer",
      credential: options.password ?? "s3cret",
    }],
  };
  const a = await world.addClient(A, undefined, clientOptions);
  const b = await world.addClient(B, undefined, options.bWithoutTurn ? {} : clientOptions);
  const registered = (c: SimClient) => c.events.some((e) => e.type === "registered");
  assert.ok(await world.runtime.runUntil(() => registered(a) && registered(b), 5000));
  return {
    world,
    a,
    b,
    toTurn: () => toTurn,
    killTurn: () => turnDead = true,
    close: async () => {
      await world.close();
      await service.close();
      await turn.close();
    },
  };
}

function row(c: SimClient, peer: SimClient) {
  return c.client.list().find((r) => r.peer === peer.identity.id);
}

function texts(c: SimClient): string[] {
  return c.events.flatMap((e) => e.type === "message" ? [e.text] : []);
}

function paths(c: SimClient, peer: SimClient): (string | null)[] {
  return c.events.flatMap((e) => e.type === "peer" && e.peer === peer.identity.id ? [e.path] : []);
}

async function exchange(t: Lab, prefix: string, count: number, expected: string[]) {
  for (let i = 0; i < count; i++) {
    const text = `${prefix}${i}`;
    expected.push(text);
    t.a.client.send(t.b.identity.id, text);
    await t.world.runtime.advance(50);
  }
}

Deno.test("--relay turn: direct UDP blocked, the server's relay refused: messages go through TURN, exactly once and in order", async () => {
  const t = await lab("turn");
  try {
    const { a, b, world } = t;
    assert.ok(
      await world.runtime.runUntil(
        () =>
          a.events.some((e) => e.type === "turn" && e.state === "allocated") &&
          b.events.some((e) => e.type === "turn" && e.state === "allocated"),
        5000,
      ),
      "both allocated",
    );
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => row(a, b)?.path === LABEL && row(b, a)?.path === LABEL,
        20_000,
      ),
      `paths ${row(a, b)?.path} / ${row(b, a)?.path}`,
    );
    assert.equal(row(a, b)?.state, "relayed");
    const expected: string[] = [];
    await exchange(t, "m", 40, expected);
    assert.ok(await world.runtime.runUntil(() => texts(b).length >= expected.length, 20_000));
    assert.deepEqual(texts(b), expected);
    const delivered = a.events.filter((e) => e.type === "delivered").length;
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.filter((e) => e.type === "delivered").length === 40,
        10_000,
      ),
      `delivered ${delivered}`,
    );
    // The server's relay never carried a peer packet: it never was a path.
    assert.ok(!paths(a, b).includes("relay") && !paths(b, a).includes("relay"));
    assert.equal(world.real.stats.relayedFrames, 0);
    // No credential in any event.
    const all = JSON.stringify([...a.events, ...b.events]);
    assert.ok(!all.includes("s3cret"));
  } finally {
    await t.close();
  }
});

Deno.test("--relay any: the server's relay first, the faster TURN relay once measured, back to the server when TURN dies; exactly once, in order", async () => {
  const t = await lab("any", { serverDelayMs: 40 });
  try {
    const { a, b, world } = t;
    a.client.connect(b.identity.id);
    const expected: string[] = [];
    assert.ok(
      await world.runtime.runUntil(() => row(a, b)?.state === "relayed", 20_000),
      "relayed",
    );
    await exchange(t, "early", 20, expected);
    assert.ok(
      await world.runtime.runUntil(() => row(a, b)?.path === LABEL, 30_000),
      `a's path ${row(a, b)?.path}`,
    );
    await exchange(t, "turn", 20, expected);
    t.killTurn();
    await exchange(t, "dying", 20, expected);
    assert.ok(
      await world.runtime.runUntil(() => row(a, b)?.path === "relay", 40_000),
      `a's path ${row(a, b)?.path}`,
    );
    await exchange(t, "server", 20, expected);
    assert.ok(
      await world.runtime.runUntil(() => texts(b).length >= expected.length, 60_000),
      `got ${texts(b).length} of ${expected.length}`,
    );
    assert.deepEqual(texts(b), expected, "every message once, in order");
    const seen = paths(a, b);
    assert.ok(seen.includes("relay") && seen.includes(LABEL), `paths ${JSON.stringify(seen)}`);
  } finally {
    await t.close();
  }
});

Deno.test("--relay server: TURN is never contacted; the server's relay carries the messages", async () => {
  const t = await lab("server");
  try {
    const { a, b, world } = t;
    a.client.connect(b.identity.id);
    assert.ok(await world.runtime.runUntil(() => row(a, b)?.path === "relay", 20_000));
    const expected: string[] = [];
    await exchange(t, "s", 10, expected);
    assert.ok(await world.runtime.runUntil(() => texts(b).length >= expected.length, 20_000));
    assert.deepEqual(texts(b), expected);
    await world.runtime.advance(20_000);
    assert.equal(t.toTurn(), 0, "no datagram to the TURN server");
    assert.ok(!a.events.some((e) => e.type === "turn"));
  } finally {
    await t.close();
  }
});

Deno.test("a TURN server refusing the credentials: a `turn` failed event without the password; the server relay goes on", async () => {
  const t = await lab("any", { password: "not-it" });
  try {
    const { a, b, world } = t;
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "turn" && e.state === "failed"),
        5000,
      ),
    );
    assert.ok(!JSON.stringify(a.events).includes("not-it"));
    a.client.connect(b.identity.id);
    assert.ok(await world.runtime.runUntil(() => row(a, b)?.path === "relay", 20_000));
    const expected: string[] = [];
    await exchange(t, "x", 5, expected);
    assert.ok(await world.runtime.runUntil(() => texts(b).length >= expected.length, 20_000));
    assert.deepEqual(texts(b), expected);
  } finally {
    await t.close();
  }
});

Deno.test("TURN on one side only: A sends through its allocation, B (no TURN) answers from its own socket and uses the server's relay; B never takes A's relayed address for a direct path", async () => {
  const t = await lab("turn", { bWithoutTurn: true });
  try {
    const { a, b, world } = t;
    assert.ok(
      await world.runtime.runUntil(
        () => a.events.some((e) => e.type === "turn" && e.state === "allocated"),
        5000,
      ),
    );
    a.client.connect(b.identity.id);
    assert.ok(
      await world.runtime.runUntil(
        () => row(a, b)?.path === LABEL && row(b, a)?.path === "relay",
        20_000,
      ),
      `paths ${row(a, b)?.path} / ${row(b, a)?.path}`,
    );
    const expected: string[] = [];
    await exchange(t, "one-sided", 20, expected);
    const back: string[] = [];
    for (let i = 0; i < 5; i++) {
      back.push(`back${i}`);
      b.client.send(a.identity.id, `back${i}`);
    }
    assert.ok(
      await world.runtime.runUntil(
        () => texts(b).length >= expected.length && texts(a).length >= back.length,
        20_000,
      ),
    );
    assert.deepEqual(texts(b), expected);
    assert.deepEqual(texts(a), back);
    await world.runtime.advance(20_000);
    assert.ok(!paths(b, a).some((p) => p?.startsWith("udp")), `b's paths ${paths(b, a)}`);
    assert.ok(!paths(a, b).some((p) => p?.startsWith("udp")), `a's paths ${paths(a, b)}`);
  } finally {
    await t.close();
  }
});

Deno.test("an idle pair relayed through TURN keeps a quiet timer schedule (no busy loop): 10 minutes", async () => {
  for (const policy of ["turn", "server"] as const) {
    const t = await lab(policy);
    try {
      const { a, b, world } = t;
      a.client.connect(b.identity.id);
      const label = policy === "turn" ? LABEL : "relay";
      assert.ok(await world.runtime.runUntil(() => row(a, b)?.path === label, 20_000));
      let calls = 0;
      const base = a.runtime;
      const originalSet = base.setTimer.bind(base);
      const originalDefer = base.defer.bind(base);
      base.setTimer = (callback, delayMs) => {
        calls++;
        return originalSet(callback, delayMs);
      };
      base.defer = (callback) => {
        calls++;
        originalDefer(callback);
      };
      await world.runtime.advance(600_000);
      assert.equal(row(a, b)?.path, label);
      // Measured: 658 (turn) and 527 (server) in 10 minutes: probes every 2 s (direct), relay
      // keepalives every 5 s, refreshes. A busy loop would be thousands.
      assert.ok(calls < 2000, `${policy}: ${calls} timer calls in 10 minutes`);
    } finally {
      await t.close();
    }
  }
});
