/**
 * End-to-end tests that need UDP blocked or lossy between clients: the real server and clients
 * run inside a private network namespace (loopback only) with nftables rules in it, so the host
 * is never touched. They need root; elsewhere they are skipped and say why.
 */
import assert from "node:assert/strict";
import { ClientProcess } from "../../testing/client_process.ts";
import { NetnsServer, netnsUnavailable, TestNamespace } from "../../testing/netns.ts";
import { exchangeBetweenAll, messageTexts, peerStateIs } from "./scenarios.ts";

const unavailable = await netnsUnavailable();
const WAIT = 60_000;
const TCP_PORT = 3478;
const STUN_PORT = 54321;
const FIRST_UDP_PORT = 40001;

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: unavailable ? `${name} (skipped: ${unavailable})` : name,
    ignore: unavailable !== undefined,
    fn,
  });
}

async function withLab(
  clientCount: number,
  rules: string[],
  body: (ns: TestNamespace, clients: ClientProcess[]) => Promise<void>,
): Promise<void> {
  const ns = await TestNamespace.create("p2pc");
  let server: NetnsServer | undefined;
  const clients: ClientProcess[] = [];
  try {
    for (const rule of rules) await ns.addRule(rule);
    server = await NetnsServer.start(ns, TCP_PORT, STUN_PORT);
    for (let i = 0; i < clientCount; i++) {
      clients.push(ClientProcess.start({
        servers: [`127.0.0.1:${TCP_PORT}`],
        args: ["--udp-port", String(FIRST_UDP_PORT + i)],
        netns: ns.name,
      }));
    }
    await Promise.all(clients.map((c) => c.registered()));
    await body(ns, clients);
    const statuses = await Promise.all(clients.map((c) => c.stop()));
    for (const [i, status] of statuses.entries()) {
      assert.equal(status.code, 0, `client ${i} exit; stderr:\n${clients[i].logs.slice(-2000)}`);
      assert.deepEqual(clients[i].badLines, []);
    }
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await server?.stop();
    await ns.delete();
  }
}

const BLOCK_ALL = `udp sport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} ` +
  `udp dport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} drop`;

test("two clients with UDP between them blocked exchange messages over the relay", async () => {
  await withLab(2, [BLOCK_ALL], async (_ns, [a, b]) => {
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "a relayed");
    await b.waitFor(peerStateIs(a.id, "relayed"), WAIT, "b relayed");
    await a.command(`send ${b.id} via relay`);
    await b.command(`send ${a.id} back via relay`);
    await b.waitFor((e) => e.type === "message", WAIT, "message at b");
    await a.waitFor((e) => e.type === "message", WAIT, "message at a");
    assert.deepEqual(messageTexts(b, a.id), ["via relay"]);
    assert.deepEqual(messageTexts(a, b.id), ["back via relay"]);
    assert.ok(!a.events.some(peerStateIs(b.id, "direct")), "never direct while UDP is blocked");
  });
});

test("five clients with UDP between them blocked exchange messages over the relay", async () => {
  await withLab(5, [BLOCK_ALL], async (_ns, clients) => {
    await exchangeBetweenAll(clients, "relayed", WAIT);
  });
});

test("relay upgrades to direct once UDP is unblocked and falls back when it dies, no message lost or repeated", async () => {
  await withLab(2, [BLOCK_ALL], async (ns, [a, b]) => {
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "a relayed");
    await b.waitFor(peerStateIs(a.id, "relayed"), WAIT, "b relayed");
    const expected: string[] = [];
    for (let i = 0; i < 30; i++) {
      expected.push(`m${i}`);
      await a.command(`send ${b.id} m${i}`);
    }
    await ns.flush();
    for (let i = 30; i < 60; i++) {
      expected.push(`m${i}`);
      await a.command(`send ${b.id} m${i}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await a.waitFor(peerStateIs(b.id, "direct"), WAIT, "a upgraded to direct");
    await b.waitFor(peerStateIs(a.id, "direct"), WAIT, "b upgraded to direct");
    for (let i = 60; i < 80; i++) {
      expected.push(`m${i}`);
      await a.command(`send ${b.id} m${i}`);
    }
    await b.waitForCount((e) => e.type === "message", expected.length, WAIT, "all messages");
    await a.waitForCount((e) => e.type === "delivered", expected.length, WAIT, "all delivered");
    assert.deepEqual(messageTexts(b, a.id), expected, "every message once, in order");
    const states = a.events.filter((e) => e.type === "peer" && e.peer === b.id).map((e) => e.state);
    assert.deepEqual(states.slice(0, 3), ["connecting", "relayed", "direct"]);
    // The direct path dies: back to the relay, still exactly once and in order.
    await ns.addRule(BLOCK_ALL);
    const from = a.events.length;
    await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "fallback to the relay", from);
    for (let i = 80; i < 100; i++) {
      expected.push(`m${i}`);
      await a.command(`send ${b.id} m${i}`);
    }
    await b.waitForCount(
      (e) => e.type === "message",
      expected.length,
      WAIT,
      "messages after fallback",
    );
    assert.deepEqual(
      messageTexts(b, a.id),
      expected,
      "every message once, in order, after the fallback",
    );
  });
});

test("order is kept and nothing is lost or repeated under 5% induced UDP loss", async () => {
  const loss = `udp sport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} ` +
    `udp dport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} numgen random mod 100 < 5 counter drop`;
  await withLab(2, [loss], async (ns, [a, b]) => {
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "direct"), WAIT, "a direct");
    await b.waitFor(peerStateIs(a.id, "direct"), WAIT, "b direct");
    const expectedAtB: string[] = [];
    const expectedAtA: string[] = [];
    for (let i = 0; i < 200; i++) {
      expectedAtB.push(`a${i}-${"x".repeat(i % 7 === 0 ? 3000 : 20)}`);
      await a.command(`send ${b.id} ${expectedAtB[i]}`);
      if (i % 2 === 0) {
        expectedAtA.push(`b${i}`);
        await b.command(`send ${a.id} b${i}`);
      }
    }
    await b.waitForCount((e) => e.type === "message", expectedAtB.length, 120_000, "messages at b");
    await a.waitForCount((e) => e.type === "message", expectedAtA.length, 120_000, "messages at a");
    assert.deepEqual(messageTexts(b, a.id), expectedAtB);
    assert.deepEqual(messageTexts(a, b.id), expectedAtA);
    assert.ok(await ns.countedPackets() > 0, "the loss rule really dropped packets");
  });
});
