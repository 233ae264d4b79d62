// TURN client state machine on virtual time, against our own TURN server (stun_server/turn/) in
// the same process on an in-memory network: authentication (401, then 438 when the nonce goes
// stale), refreshes over simulated hours, permissions, channels, retransmission, reallocation.
import assert from "node:assert/strict";
import { VirtualRuntime } from "../testing/virtual_runtime.ts";
import type { DatagramSocket, NetAddress } from "../shared/runtime/mod.ts";
import { StunService } from "../stun_server/stun_service.ts";
import { StaticUsers, TurnServer } from "../stun_server/turn/mod.ts";
import { TurnClient, type TurnClientState } from "./turn_client.ts";
import type { UdpAddress } from "./path_manager.ts";

const SERVER = "203.0.113.1";
const CLIENT = "198.51.100.10";
const PEER = "192.0.2.20";

interface Lab {
  runtime: VirtualRuntime;
  turn: TurnServer;
  service: StunService;
  client: TurnClient;
  received: { from: UdpAddress; text: string }[];
  states: { state: TurnClientState; reason: string }[];
  logs: string[];
  peer: DatagramSocket;
  peerInbox: [string, NetAddress][];
  close(): Promise<void>;
}

/** Timer and defer calls the TURN client made (a busy loop shows as thousands). */
let timerCalls = 0;

function lab(password = "pw", lifetimeS?: number): Promise<Lab> {
  const runtime = new VirtualRuntime({ seed: 3 });
  const serverRuntime = runtime.forHost(SERVER);
  const turn = new TurnServer({
    runtime: serverRuntime,
    realm: "example.org",
    credentials: new StaticUsers([{ name: "alice", password: "pw" }]),
    relayPorts: { min: 50000, max: 50099 },
  });
  const service = StunService.listen({
    runtime: serverRuntime,
    hostname: SERVER,
    port: 3478,
    turn,
  });
  const received: Lab["received"] = [];
  const states: Lab["states"] = [];
  const logs: string[] = [];
  const client = new TurnClient({
    runtime: (() => {
      const base = runtime.forHost(CLIENT);
      return {
        ...base,
        setTimer: (callback: () => void, delayMs: number) => {
          timerCalls++;
          return base.setTimer(callback, delayMs);
        },
        defer: (callback: () => void) => {
          timerCalls++;
          base.defer(callback);
        },
      };
    })(),
    server: { host: SERVER, port: 3478 },
    label: `turn ${SERVER}:3478`,
    username: "alice",
    password,
    lifetimeS,
    onData: (from, bytes) => received.push({ from, text: new TextDecoder().decode(bytes) }),
    onStateChange: (state, reason) => states.push({ state, reason }),
    log: (line) => logs.push(line),
  });
  const peer = runtime.forHost(PEER).net.listenDatagram({ hostname: PEER, port: 7000 });
  const peerInbox: [string, NetAddress][] = [];
  (async () => {
    for (;;) {
      try {
        const [bytes, from] = await peer.receive();
        peerInbox.push([new TextDecoder().decode(bytes), from]);
      } catch {
        return;
      }
    }
  })();
  return Promise.resolve({
    runtime,
    turn,
    service,
    client,
    received,
    states,
    logs,
    peer,
    peerInbox,
    close: async () => {
      await client.close();
      peer.close();
      await service.close();
      await turn.close();
    },
  });
}

const text = (value: string) => new TextEncoder().encode(value);

Deno.test("TURN client: 401 then an authenticated Allocate, a relayed address, data both ways", async () => {
  const t = await lab();
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000), "allocated");
    const relayed = t.client.relayedAddress!;
    assert.equal(relayed.host, SERVER);
    assert.ok(relayed.port >= 50000 && relayed.port <= 50099);
    assert.equal(t.client.mappedAddress?.host, CLIENT);
    // Before a permission, the peer's packets do not pass.
    await t.peer.send(text("too early"), {
      transport: "udp",
      hostname: SERVER,
      port: relayed.port,
    });
    await t.runtime.advance(200);
    assert.deepEqual(t.received, []);
    // Sending installs the permission (the packet waits for it), then goes as a Send indication.
    assert.equal(t.client.send({ host: PEER, port: 7000 }, text("hello 1")), true);
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 1, 2000), "first packet");
    assert.deepEqual(t.peerInbox[0][0], "hello 1");
    assert.equal(t.peerInbox[0][1].port, relayed.port, "from the relayed address");
    assert.ok(t.client.hasPermission(PEER));
    assert.equal(t.client.boundChannels, 1, "a ChannelBind followed the first Send indication");
    for (let i = 2; i <= 5; i++) t.client.send({ host: PEER, port: 7000 }, text(`hello ${i}`));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 5, 2000), "all packets");
    assert.deepEqual(t.peerInbox.map(([m]) => m), [
      "hello 1",
      "hello 2",
      "hello 3",
      "hello 4",
      "hello 5",
    ]);
    // The peer answers: ChannelData (the channel is bound) with the peer's address.
    await t.peer.send(text("back"), { transport: "udp", hostname: SERVER, port: relayed.port });
    assert.ok(await t.runtime.runUntil(() => t.received.length === 1, 2000), "answer");
    assert.deepEqual(t.received[0], { from: { host: PEER, port: 7000 }, text: "back" });
    assert.deepEqual(t.states.map((s) => s.state), ["allocating", "allocated"]);
    assert.ok(!t.logs.join("\n").includes("pw"), "no password in the logs");
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: data goes as ChannelData once the channel is bound", async () => {
  const t = await lab();
  try {
    const lengths: number[] = [];
    (t.runtime.net as unknown as { policy: unknown }).policy = (
      transit: { from: NetAddress; to: NetAddress; length: number },
    ) => {
      if (transit.from.hostname === CLIENT && transit.to.hostname === SERVER) {
        lengths.push(transit.length);
      }
      return undefined;
    };
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    t.client.send({ host: PEER, port: 7000 }, text("a"));
    assert.ok(await t.runtime.runUntil(() => t.client.boundChannels === 1, 2000));
    lengths.length = 0;
    const before = t.peerInbox.length;
    t.client.send({ host: PEER, port: 7000 }, text("bcd"));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === before + 1, 2000));
    // ChannelData: a 4-byte header and the 3 bytes of data (a Send indication would be 40).
    assert.deepEqual(lengths, [7]);
    assert.equal(t.peerInbox.at(-1)?.[0], "bcd");
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: refreshes keep allocation, permission and channel for an hour; 438 is handled", async () => {
  const t = await lab();
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    const relayed = t.client.relayedAddress!;
    // One packet each way every minute for 60 minutes: the allocation (600 s), the permission
    // (300 s), the channel (600 s) and the nonce (600 s) all expire several times over unless
    // refreshed.
    for (let minute = 0; minute < 60; minute++) {
      t.client.send({ host: PEER, port: 7000 }, text(`out ${minute}`));
      await t.peer.send(text(`in ${minute}`), {
        transport: "udp",
        hostname: SERVER,
        port: relayed.port,
      });
      await t.runtime.advance(60_000);
    }
    assert.equal(t.client.state, "allocated");
    assert.equal(t.client.allocations, 1, "never allocated again");
    assert.ok(t.client.staleNonces >= 1, "the nonce went stale (600 s) and was renewed");
    assert.deepEqual(t.client.relayedAddress, relayed);
    assert.equal(t.peerInbox.length, 60, "every packet out arrived");
    // The first inbound packet may come before the permission exists; every later one passes.
    assert.ok(t.received.length >= 59, `inbound ${t.received.length}`);
    assert.equal(t.received.at(-1)?.text, "in 59");
    assert.ok(t.logs.every((line) => !line.includes("pw")));
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: an idle address's permission lapses; using it again asks anew", async () => {
  const t = await lab();
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    t.client.send({ host: PEER, port: 7000 }, text("first"));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 1, 2000));
    await t.runtime.advance(20 * 60_000);
    assert.equal(t.client.state, "allocated", "the allocation is refreshed on its own");
    t.client.send({ host: PEER, port: 7000 }, text("again"));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 2, 2000), "sent again");
    assert.equal(t.peerInbox[1][0], "again");
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: a wrong password fails with 401 (no loop), says so without the password, and retries later", async () => {
  const t = await lab("wrong-secret");
  try {
    let requests = 0;
    (t.runtime.net as unknown as { policy: unknown }).policy = (
      transit: { from: NetAddress; to: NetAddress },
    ) => {
      if (transit.to.hostname === SERVER && transit.to.port === 3478) requests++;
      return undefined;
    };
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "failed", 5000), "failed");
    const failure = t.states.find((s) => s.state === "failed")!;
    assert.match(failure.reason, /401/);
    assert.ok(!failure.reason.includes("wrong-secret"));
    assert.ok(t.logs.every((line) => !line.includes("wrong-secret")));
    // The unauthenticated Allocate, the one with the (wrong) key: no more.
    assert.ok(requests >= 2 && requests <= 4, `Allocate sent ${requests} times`);
    // It tries again later (backoff), and fails again.
    await t.runtime.advance(5000);
    assert.ok(t.states.filter((s) => s.state === "allocating").length >= 2, "retried");
    assert.equal(t.client.send({ host: PEER, port: 7000 }, text("x")), false);
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: lost datagrams are retransmitted (RFC 8489 RTO)", async () => {
  const t = await lab();
  try {
    let dropped = 0;
    (t.runtime.net as unknown as { policy: unknown }).policy = (
      transit: { from: NetAddress; to: NetAddress },
    ) => {
      // The first three answers from the server are lost.
      if (transit.from.hostname === SERVER && transit.to.hostname === CLIENT && dropped < 3) {
        dropped++;
        return { drop: true };
      }
      return undefined;
    };
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 10_000), "allocated");
    assert.equal(dropped, 3);
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: a server that lost the allocation (437 on Refresh) gets a new Allocate", async () => {
  const t = await lab(undefined, 120);
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    const first = t.client.relayedAddress!;
    // The server forgets everything (restart): our next Refresh gets 437.
    await t.service.close();
    await t.turn.close();
    const turn = new TurnServer({
      runtime: t.runtime.forHost(SERVER),
      realm: "example.org",
      credentials: new StaticUsers([{ name: "alice", password: "pw" }]),
      relayPorts: { min: 50000, max: 50099 },
    });
    const service = StunService.listen({
      runtime: t.runtime.forHost(SERVER),
      hostname: SERVER,
      port: 3478,
      turn,
    });
    t.turn = turn;
    t.service = service;
    assert.ok(
      await t.runtime.runUntil(() => t.client.allocations === 2, 700_000, 1000),
      `allocated again; states ${JSON.stringify(t.states)}`,
    );
    assert.equal(t.client.state, "allocated");
    assert.ok(t.client.relayedAddress);
    void first;
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: Data indications before the channel is bound reach onData", async () => {
  const t = await lab();
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    t.client.permit([PEER]);
    assert.ok(await t.runtime.runUntil(() => t.client.hasPermission(PEER), 2000));
    assert.equal(t.client.boundChannels, 0);
    const relayed = t.client.relayedAddress!;
    await t.peer.send(text("via Data"), { transport: "udp", hostname: SERVER, port: relayed.port });
    assert.ok(await t.runtime.runUntil(() => t.received.length === 1, 2000));
    assert.deepEqual(t.received[0], { from: { host: PEER, port: 7000 }, text: "via Data" });
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: one refused address (403) does not cost the others their permission; another family is refused at once", async () => {
  const t = await lab();
  try {
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    // Our server denies private peers by default: asked together, the request is refused, then
    // each address is asked for alone.
    t.client.permit(["10.0.0.9", PEER]);
    assert.ok(await t.runtime.runUntil(() => t.client.hasPermission(PEER), 5000), "allowed one");
    assert.equal(t.client.hasPermission("10.0.0.9"), false);
    assert.equal(t.client.send({ host: "2001:db8::7", port: 7000 }, text("v6")), false);
    t.client.send({ host: PEER, port: 7000 }, text("still fine"));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 1, 2000));
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: a Refresh lost in an outage allocates again from a new socket (the server still holds the old five-tuple's allocation)", async () => {
  const t = await lab();
  try {
    let outage = false;
    (t.runtime.net as unknown as { policy: unknown }).policy = (
      transit: { from: NetAddress; to: NetAddress },
    ) => {
      // The client's socket is bound to 0.0.0.0: match the server's side (port 3478).
      const between = (transit.to.hostname === SERVER && transit.to.port === 3478) ||
        (transit.from.hostname === SERVER && transit.from.port === 3478);
      return outage && between ? { drop: true } : undefined;
    };
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    const first = t.client.mappedAddress!;
    await t.runtime.advance(530_000);
    outage = true; // the Refresh (at 540 s) and its retransmissions are lost
    await t.runtime.advance(45_000);
    outage = false;
    // The Refresh gives up 39.5 s after it started (579.5 s); a new Allocate follows at once, from a
    // new socket, while the old allocation (until 600 s) still exists.
    assert.ok(
      await t.runtime.runUntil(() => t.client.allocations === 2, 30_000, 100),
      `states ${JSON.stringify(t.states.map((s) => s.reason))} logs ${
        t.logs.join(" / ")
      } now ${t.runtime.now()}`,
    );
    assert.ok(t.runtime.now() < 600_000, `allocated again at ${t.runtime.now()} ms`);
    assert.notEqual(t.client.mappedAddress?.port, first.port, "from a new socket");
    t.client.send({ host: PEER, port: 7000 }, text("after the outage"));
    assert.ok(await t.runtime.runUntil(() => t.peerInbox.length === 1, 2000));
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: no busy loop while requests are in flight (an hour with a 100 ms round trip)", async () => {
  const t = await lab();
  try {
    (t.runtime.net as unknown as { policy: unknown }).policy = () => ({ delayMs: 50 });
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    const relayed = t.client.relayedAddress!;
    timerCalls = 0;
    for (let minute = 0; minute < 60; minute++) {
      t.client.send({ host: PEER, port: 7000 }, text(`out ${minute}`));
      await t.peer.send(text(`in ${minute}`), {
        transport: "udp",
        hostname: SERVER,
        port: relayed.port,
      });
      await t.runtime.advance(60_000);
    }
    assert.equal(t.client.allocations, 1);
    assert.ok(t.received.length >= 59, `inbound ${t.received.length}`);
    // Refreshes (allocation, permission, channel) and their retransmission timers: a few hundred.
    assert.ok(timerCalls < 1000, `${timerCalls} timer calls in an hour`);
  } finally {
    await t.close();
  }
});

Deno.test("TURN client: an idle allocation sends a Binding indication every 15 s (NAT keepalive)", async () => {
  const t = await lab();
  try {
    let toServer = 0;
    (t.runtime.net as unknown as { policy: unknown }).policy = (
      transit: { to: NetAddress },
    ) => {
      if (transit.to.hostname === SERVER && transit.to.port === 3478) toServer++;
      return undefined;
    };
    t.client.start();
    assert.ok(await t.runtime.runUntil(() => t.client.state === "allocated", 5000));
    const before = toServer;
    await t.runtime.advance(120_000);
    // 8 keepalives in 2 minutes of silence, and nothing more.
    assert.equal(toServer - before, 8);
    assert.equal(t.client.state, "allocated");
  } finally {
    await t.close();
  }
});
