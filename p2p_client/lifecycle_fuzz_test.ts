/**
 * Random fault schedules against two real clients and the real server on virtual time (a small
 * cousin of the simulator in `testing/sim/`): loss, one-way loss, partitions, freezes of either
 * client, cut signaling, restarts and crashes of either client (with its stored outbox) and
 * restarts of the server,
 * with messages both ways throughout; then everything heals. Checked
 * on every schedule: one outcome per message, nothing reported failed was printed, nothing
 * printed twice or out of order, and the link is usable again without a command. Each failure
 * names its seed.
 */
import assert from "node:assert/strict";
import { createWorld, type SimClient } from "../testing/client_harness.ts";
import { seededRandom } from "./reliable/simulated_network.ts";
import type { ClientEvent } from "./events.ts";

const SCHEDULES = Number(Deno.env.get("LIFECYCLE_FUZZ_SCHEDULES") ?? 40);

type Fault =
  | { kind: "loss"; rate: number }
  | { kind: "one-way"; from: string }
  | { kind: "partition" }
  | { kind: "freeze"; who: 0 | 1 }
  | { kind: "cut-signaling"; who: 0 | 1 };

function outcomes(events: ClientEvent[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of events) {
    const id = e.type === "delivered" || e.type === "unconfirmed"
      ? e.messageId
      : e.type === "error"
      ? e.messageId
      : undefined;
    if (id === undefined) continue;
    const kind = e.type === "error" ? "failed" : e.type;
    out.set(id, [...(out.get(id) ?? []), kind]);
  }
  return out;
}

function check(seed: number, from: SimClient, to: SimClient, sent: Map<number, string>): void {
  const reported = outcomes(from.events);
  const printed = to.events.flatMap((e) =>
    e.type === "message" && e.from === from.identity.id ? [e.text] : []
  );
  const where = `seed ${seed}, ${from.host} → ${to.host}`;
  for (const [id, text] of sent) {
    const list = reported.get(id) ?? [];
    assert.equal(list.length, 1, `${where}: message ${text} has outcomes [${list}]`);
    if (list[0] === "failed") {
      assert.ok(!printed.includes(text), `${where}: failed ${text} printed`);
    }
    if (list[0] === "delivered") assert.ok(printed.includes(text), `${where}: ${text} not printed`);
  }
  assert.equal(new Set(printed).size, printed.length, `${where}: printed twice: ${printed}`);
  const order = [...sent.values()];
  const indexes = printed.map((text) => order.indexOf(text));
  assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y), `${where}: out of order`);
}

for (let seed = 1; seed <= SCHEDULES; seed++) {
  Deno.test(`lifecycle fuzz: schedule ${seed}`, async () => {
    const random = seededRandom(seed * 7919);
    const world = await createWorld(seed, { server: "real" });
    try {
      const a = await world.addClient("10.0.0.1");
      if (Deno.env.get("LIFECYCLE_FUZZ_VERBOSE")) {
        const push = a.events.push.bind(a.events);
        a.events.push = (...items: ClientEvent[]) => {
          for (const e of items) console.log(`t=${world.runtime.now()} A ${JSON.stringify(e)}`);
          return push(...items);
        };
      }
      const b = await world.addClient("10.0.0.2");
      const pair = [a, b];
      const sent = [new Map<number, string>(), new Map<number, string>()];
      let fault: Fault | undefined;
      let faultUntil = 0;
      const hosts = [a.host, b.host];
      world.network.policy = (t) => {
        const now = world.runtime.now();
        if (!fault || now >= faultUntil) return undefined;
        const between = hosts.includes(t.from.hostname) && hosts.includes(t.to.hostname);
        switch (fault.kind) {
          case "loss":
            return t.transport === "udp" && random() < fault.rate ? { drop: true } : undefined;
          case "one-way":
            return t.transport === "udp" && between && t.from.hostname === fault.from
              ? { drop: true }
              : undefined;
          case "partition":
            return t.transport === "udp" && between ? { drop: true } : undefined;
          case "cut-signaling": {
            const host = hosts[fault.who];
            return t.transport === "tcp" && (t.from.hostname === host || t.to.hostname === host)
              ? { delayMs: faultUntil - now }
              : undefined;
          }
          default:
            return undefined;
        }
      };
      assert.ok(
        await world.runtime.runUntil(
          () => pair.every((c) => c.events.some((e) => e.type === "registered")),
          10_000,
        ),
      );
      a.client.connect(b.identity.id);
      await world.runtime.advance(3000);
      let counter = 0;
      for (let round = 0; round < 16; round++) {
        if (!fault || world.runtime.now() >= faultUntil) {
          for (const c of pair) c.runtime.thaw();
          const kinds = [
            "loss",
            "one-way",
            "partition",
            "freeze",
            "cut-signaling",
            "restart-client",
            "crash-client",
            "restart-server",
            "none",
          ];
          const kind = kinds[Math.floor(random() * kinds.length)];
          const who = (random() < 0.5 ? 0 : 1) as 0 | 1;
          fault = kind === "loss"
            ? { kind, rate: 0.1 + random() * 0.3 }
            : kind === "one-way"
            ? { kind, from: hosts[who] }
            : kind === "partition" || kind === "freeze" || kind === "cut-signaling"
            ? { kind, who } as Fault
            : undefined;
          faultUntil = world.runtime.now() + 2000 + random() * 38_000;
          if (fault?.kind === "freeze") pair[fault.who].runtime.freeze();
          if (Deno.env.get("LIFECYCLE_FUZZ_VERBOSE")) {
            console.log(`t=${world.runtime.now()} fault ${kind} ${who}`);
          }
          if (kind === "restart-client") await pair[who].restart();
          if (kind === "crash-client") await pair[who].crashRestart();
          if (kind === "restart-server") await world.restartServer();
        }
        for (const [i, [x, y]] of [[a, b], [b, a]].entries()) {
          if (random() < 0.6 && !x.runtime.frozen) {
            const text = `m${counter++}`;
            const id = x.client.send(y.identity.id, text);
            if (id !== undefined) sent[i].set(id, text);
          }
        }
        await world.runtime.advance(2500 + random() * 2500);
      }
      // Heal everything; the link must be usable again without a command.
      fault = undefined;
      for (const c of pair) c.runtime.thaw();
      await world.runtime.advance(5000);
      const finalAB = a.client.send(b.identity.id, "final a→b")!;
      const finalBA = b.client.send(a.identity.id, "final b→a")!;
      sent[0].set(finalAB, "final a→b");
      sent[1].set(finalBA, "final b→a");
      const delivered = (c: SimClient, id: number) =>
        c.events.some((e) => e.type === "delivered" && e.messageId === id);
      const usable = await world.runtime.runUntil(
        () => delivered(a, finalAB) && delivered(b, finalBA),
        20_000,
      );
      await world.runtime.advance(35_000);
      if (Deno.env.get("LIFECYCLE_FUZZ_VERBOSE")) {
        const count = (c: SimClient, t: string) => c.events.filter((e) => e.type === t).length;
        console.log(
          `seed ${seed}: sent ${sent[0].size}/${sent[1].size}, delivered ${count(a, "delivered")}/${
            count(b, "delivered")
          }, unconfirmed ${count(a, "unconfirmed")}/${count(b, "unconfirmed")}, states ${[
            ...new Set(a.events.flatMap((e) => e.type === "peer" ? [e.state] : [])),
          ]}`,
        );
      }
      check(seed, a, b, sent[0]);
      check(seed, b, a, sent[1]);
      assert.ok(
        usable,
        `seed ${seed}: usable after healing (A ${a.client.list()[0]?.state}, B ${
          b.client.list()[0]?.state
        })`,
      );
    } finally {
      await world.close();
    }
  });
}
