import assert from "node:assert/strict";
import { systemRuntime } from "../../shared/runtime/mod.ts";
import { freeTcpPort, NatsServer, pollUntil } from "../../testing/nats_server.ts";
import type { ClusterDelivery, ClusterHandler } from "./bus.ts";
import { ClusterNode } from "./cluster_node.ts";
import { NatsTransport, parseNatsServers } from "./nats_transport.ts";

const X = "ab".repeat(20);
const Y = "cd".repeat(20);

Deno.test("parseNatsServers: comma-separated URLs, bare host:port, clear errors", () => {
  assert.deepEqual(parseNatsServers("nats://a:4222,b:4223"), ["nats://a:4222", "nats://b:4223"]);
  assert.deepEqual(parseNatsServers(" tls://n1:4222 "), ["tls://n1:4222"]);
  assert.throws(() => parseNatsServers(""), /at least one/);
  assert.throws(() => parseNatsServers("http://a:80"), /bad NATS URL/);
});

class Recorder implements ClusterHandler {
  deliveries: ClusterDelivery[] = [];
  relays: [string, string, Uint8Array][] = [];
  onDelivery(message: ClusterDelivery): void {
    this.deliveries.push(message);
  }
  onRelay(from: string, to: string, payload: Uint8Array): void {
    this.relays.push([from, to, payload]);
  }
  onReplaced(): void {}
  onNodeLost(): void {}
  onAvailability(): void {}
}

function node(name: string, url: string) {
  const transport = NatsTransport.start({ servers: [url], runtime: systemRuntime });
  const cluster = new ClusterNode({
    nodeName: name,
    transport,
    runtime: systemRuntime,
    heartbeatMs: 200,
    syncGraceMs: 100,
  });
  const events = new Recorder();
  cluster.setHandler(events);
  return { cluster, events };
}

Deno.test({
  name: "cluster over a real nats-server: presence, delivery, relay; NATS killed and restarted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const nats = await NatsServer.start();
    const a = node("a", nats.url);
    const b = node("b", nats.url);
    try {
      assert.ok(await pollUntil(() => a.cluster.available && b.cluster.available, 10_000));
      a.cluster.announce(X);
      assert.ok(await pollUntil(() => b.cluster.locate(X) === "a", 5000), "presence reaches b");
      const payload = crypto.getRandomValues(new Uint8Array(1200));
      assert.ok(b.cluster.relay("a", Uint8Array.fromHex(Y), Uint8Array.fromHex(X), payload));
      assert.ok(
        b.cluster.send("a", { type: "peer-left", node: "b", from: Y, to: X, reason: "timeout" }),
      );
      assert.ok(await pollUntil(() => a.events.relays.length === 1, 5000));
      assert.deepEqual(a.events.relays[0], [Y, X, payload]);
      assert.ok(await pollUntil(() => a.events.deliveries.length === 1, 5000));

      await nats.stop();
      assert.ok(await pollUntil(() => !a.cluster.available && !b.cluster.available, 10_000));
      assert.equal(
        a.cluster.send("b", { type: "peer-left", node: "a", from: X, to: Y, reason: "timeout" }),
        false,
      );
      // Both expire each other while NATS is away (lease 600 ms).
      assert.ok(await pollUntil(() => b.cluster.locate(X) === undefined, 15_000));
      await nats.restart();
      assert.ok(
        await pollUntil(() => a.cluster.available && b.cluster.available, 15_000),
        "both reconnect",
      );
      assert.ok(await pollUntil(() => b.cluster.locate(X) === "a", 15_000), "presence heals");
      assert.ok(b.cluster.relay("a", Uint8Array.fromHex(Y), Uint8Array.fromHex(X), payload));
      assert.ok(await pollUntil(() => a.events.relays.length === 2, 5000));
    } finally {
      await a.cluster.close();
      await b.cluster.close();
      await nats.stop();
    }
  },
});

Deno.test({
  name: "cluster over nats: a node started before NATS connects once NATS is up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const port = freeTcpPort();
    const a = node("a", `nats://127.0.0.1:${port}`);
    let nats: NatsServer | null = null;
    try {
      assert.equal(a.cluster.available, false);
      nats = await NatsServer.start({ port });
      assert.ok(await pollUntil(() => a.cluster.available, 10_000));
    } finally {
      await a.cluster.close();
      await nats?.stop();
    }
  },
});
