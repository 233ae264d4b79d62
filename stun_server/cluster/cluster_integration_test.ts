/**
 * The server cluster end to end, with real processes: a real `nats-server` on a free loopback
 * port, three server nodes (`--cluster`), and 30 real clients spread over them. Every pair
 * exchanges messages directly, then (30 other clients, `--relay-only`) through the relay across
 * nodes; a node is killed and its clients carry on through another node with their IDs; NATS is
 * stopped (cross-node introductions are refused with `cluster-unavailable`, clients on one node
 * still meet) and started again (cross-node introductions work again).
 */
import assert from "node:assert/strict";
import { ClientProcess } from "../../testing/client_process.ts";
import { messageTexts, peerStateIs } from "../../p2p_client/e2e/scenarios.ts";
import { NatsServer, pollUntil } from "../../testing/nats_server.ts";
import { ServerProcess } from "../../testing/server_process.ts";

const WAIT = 120_000;
const CLIENTS = 30;

function addressOf(server: ServerProcess): string {
  return `127.0.0.1:${server.tcpPort}`;
}

/** Starts `count` clients; client i prefers node i mod 3, then the next node. */
async function startClients(
  nodes: ServerProcess[],
  count: number,
  args: string[] = [],
): Promise<ClientProcess[]> {
  const clients: ClientProcess[] = [];
  for (let i = 0; i < count; i++) {
    const servers = [0, 1, 2].map((k) => addressOf(nodes[(i + k) % nodes.length]));
    clients.push(ClientProcess.start({ servers, args }));
  }
  await Promise.all(clients.map((c) => c.registered(WAIT)));
  return clients;
}

async function stopClients(clients: ClientProcess[]): Promise<void> {
  await Promise.all(clients.map((c) => c.dispose()));
}

/**
 * Every pair of `clients` connects and exchanges one message each way. The 435 connections of 30
 * client processes are made in waves (client i connects to every j > i, and the wave completes
 * before the next starts), so that 30 processes punching 435 pairs at once on two cores do not
 * miss their punch instants; the messages then go out all at once.
 */
async function exchangeInWaves(
  clients: readonly ClientProcess[],
  state: string,
): Promise<void> {
  for (let i = 0; i < clients.length; i++) {
    const later = clients.slice(i + 1);
    for (const b of later) await clients[i].command(`connect ${b.id}`);
    for (const b of later) {
      await clients[i].waitFor(peerStateIs(b.id, state), WAIT, `${i} -> ${b.id} ${state}`);
      await b.waitFor(peerStateIs(clients[i].id, state), WAIT, `${b.id} -> ${i} ${state}`);
    }
  }
  for (const [i, a] of clients.entries()) {
    for (const [j, b] of clients.entries()) {
      if (i !== j) await a.command(`send ${b.id} ${i}->${j}`);
    }
  }
  for (const [j, b] of clients.entries()) {
    await b.waitForCount((e) => e.type === "message", clients.length - 1, WAIT, `messages at ${j}`);
    for (const [i, a] of clients.entries()) {
      if (i !== j) assert.deepEqual(messageTexts(b, a.id), [`${i}->${j}`]);
    }
  }
}

/** `from` sends `text` to `to`; waits until `to` received it exactly once. */
async function deliver(from: ClientProcess, to: ClientProcess, text: string): Promise<void> {
  await from.command(`send ${to.id} ${text}`);
  await to.waitFor(
    (e) => e.type === "message" && e.from === from.id && e.text === text,
    WAIT,
    text,
  );
}

Deno.test({
  name:
    "cluster: 30 clients on three nodes over NATS: direct, relayed, a node killed, NATS restarted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const nats = await NatsServer.start();
    const nodes: ServerProcess[] = [];
    const all: ClientProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        nodes.push(
          await ServerProcess.start({
            args: ["--cluster", nats.url, "--node-name", `n${i}`, "--heartbeat-ms", "2000"],
          }),
        );
      }

      await t.step(
        "30 clients over three nodes: every pair exchanges messages directly",
        async () => {
          const clients = await startClients(nodes, CLIENTS);
          all.push(...clients);
          for (const [i, c] of clients.entries()) {
            const registered = c.of("registered")[0];
            assert.equal(registered.server, addressOf(nodes[i % 3]), "spread over the nodes");
          }
          await exchangeInWaves(clients, "direct");
          await stopClients(clients);
        },
      );

      const relayed = await startClients(nodes, CLIENTS, ["--relay-only"]);
      all.push(...relayed);
      await t.step(
        "30 relay-only clients: every pair exchanges messages through the relay across nodes",
        async () => {
          await exchangeInWaves(relayed, "relayed");
        },
      );

      await t.step(
        "a node is killed: its clients carry on through another node with their IDs",
        async () => {
          await nodes[0].kill();
          const moved = relayed.filter((_, i) => i % 3 === 0);
          const stayed = relayed.filter((_, i) => i % 3 !== 0);
          for (const client of moved) {
            const again = await client.waitFor(
              (e) => e.type === "registered" && e.server !== addressOf(nodes[0]),
              WAIT,
              "registration on another node",
            );
            assert.equal(again.id, client.id, "the same ID on the new node");
          }
          // Moved clients and everyone else: messages both ways, through the relay of the nodes
          // they are on now (each moved client is introduced again to its peers).
          for (const [i, a] of moved.entries()) {
            for (const [j, b] of stayed.entries()) {
              await deliver(a, b, `after-kill-${i}-${j}`);
              await deliver(b, a, `after-kill-back-${j}-${i}`);
            }
          }
          for (const client of relayed) {
            const texts = client.of("message").map((e) => `${e.from}|${e.text}`);
            assert.equal(new Set(texts).size, texts.length, "no message delivered twice");
          }
        },
      );

      await t.step(
        "NATS stopped: cross-node introductions refused, same-node ones served; NATS back: served again",
        async () => {
          const live = [nodes[1], nodes[2]];
          // Two fresh pairs: a and b on different nodes, c on a's node.
          const [a, b, c] = [
            ClientProcess.start({ servers: [addressOf(live[0])] }),
            ClientProcess.start({ servers: [addressOf(live[1])] }),
            ClientProcess.start({ servers: [addressOf(live[0])] }),
          ];
          all.push(a, b, c);
          await Promise.all([a, b, c].map((x) => x.registered(WAIT)));
          await nats.stop();
          // The nodes notice within a second or two; until then a connect may still go out and
          // be lost with the bus, so ask again until the refusal comes (bounded).
          const refused = await pollUntil(
            async () => {
              await a.command(`connect ${b.id}`);
              return await pollUntil(
                () =>
                  a.of("error").some((e) => e.code === "cluster-unavailable" && e.peer === b.id),
                1500,
              );
            },
            30_000,
            0,
          );
          assert.ok(refused, "cross-node connect refused with cluster-unavailable");
          await a.command(`connect ${c.id}`);
          await a.waitFor(peerStateIs(c.id, "direct"), WAIT, "same-node pair during the outage");
          await deliver(a, c, "during-outage");

          await nats.restart();
          const served = await pollUntil(
            async () => {
              await a.command(`connect ${b.id}`);
              return await pollUntil(() => a.events.some(peerStateIs(b.id, "direct")), 3000);
            },
            60_000,
            0,
          );
          assert.ok(served, "cross-node connect works again after NATS is back");
          await deliver(a, b, "after-outage");
          await deliver(b, a, "after-outage-back");
        },
      );
    } finally {
      await Promise.all(all.map((c) => c.dispose()));
      for (const node of nodes) await node.kill().catch(() => {});
      await nats.stop();
    }
  },
});

Deno.test({
  name:
    "cluster: --workers 2 shares the TCP port, joins the workers over NATS, relays between them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const nats = await NatsServer.start();
    let server: ServerProcess | null = null;
    const clients: ClientProcess[] = [];
    try {
      server = await ServerProcess.start({
        args: ["--cluster", nats.url, "--workers", "2", "--node-name", "w"],
      });
      const announcement = server.announcement as unknown as {
        stun: unknown[];
        workers: { pid: number; node: string }[];
      };
      assert.deepEqual(announcement.workers.map((w) => w.node), ["w-0", "w-1"]);
      assert.notEqual(announcement.workers[0].pid, announcement.workers[1].pid);
      assert.equal(announcement.stun.length, 2, "one STUN port per worker");
      // Eight clients on the one port: the kernel spreads them over both workers, so some pairs
      // are on different workers and meet through the cluster bus.
      for (let i = 0; i < 8; i++) {
        clients.push(ClientProcess.start({ servers: [addressOf(server)] }));
      }
      await Promise.all(clients.map((c) => c.registered(WAIT)));
      await exchangeInWaves(clients, "direct");
      await Promise.all(clients.map((c) => c.dispose()));
      // Relay-only clients: pairs on different workers relay over the workers' loopback link.
      const relayed: ClientProcess[] = [];
      for (let i = 0; i < 6; i++) {
        relayed.push(ClientProcess.start({ servers: [addressOf(server)], args: ["--relay-only"] }));
      }
      clients.push(...relayed);
      await Promise.all(relayed.map((c) => c.registered(WAIT)));
      await exchangeInWaves(relayed, "relayed");
      assert.match(server.logs, /linked to sibling/, "the workers linked to each other");
      await Promise.all(relayed.map((c) => c.dispose()));
      const status = await server.stop();
      assert.equal(status.code, 0, "the supervisor stops its workers cleanly");
      server = null;
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
      await server?.kill();
      await nats.stop();
    }
  },
});
