/**
 * In-process tests of the whole server (signaling + STUN) on virtual time over the in-memory
 * network: no spawned process, no real sockets, no waiting. Hosts: the server at 10.0.0.1,
 * clients at 10.0.0.2 and up.
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import type { ServerMessage, ServerMessageOf } from "../shared/signaling/mod.ts";
import {
  addFingerprint,
  addMessageIntegrity,
  addUsername,
  decodeStunMessage,
  shortTermKey,
  StunClass,
  StunMessageWriter,
  StunMethod,
} from "../shared/stun/mod.ts";
import { FreezableRuntime } from "../testing/freezable_runtime.ts";
import { ServerWorld, WORLD_SERVER, WORLD_TCP_PORT } from "../testing/server_world.ts";
import { type ServerOptions, startServer } from "./server.ts";

const SERVER = WORLD_SERVER;
const TCP_PORT = WORLD_TCP_PORT;
const STUN_PORT = 54321;

const World = ServerWorld;

Deno.test("server in-process: registration, newer session wins, impersonation refused", async (t) => {
  const world = new World();
  try {
    await t.step(
      "registration issues the key-bound ID and echoes the registration nonce",
      async () => {
        const a = await world.register({ nonce: "instance-a" });
        assert.equal(a.registered!.id, a.me.id);
        assert.equal(a.registered!.stunPort, STUN_PORT);
        assert.equal(a.registered!.registrationNonce, "instance-a");
        await world.until(() => a.of("ping").length > 0, "the first ping");
        assert.equal(world.server.metrics.registrations.get("accepted"), 1);
        assert.equal(world.server.metrics.snapshot().registered, 1);
      },
    );

    await t.step(
      "the same ID again: the newer session wins, the older learns by whom",
      async () => {
        const me = await Identity.generate();
        const first = await world.register({ identity: me, nonce: "n-1" });
        // The same client instance retrying (same nonce) ...
        const retry = await world.register({ identity: me, nonce: "n-1" });
        await world.until(() => first.closed, "the first connection to close");
        const bye = first.of("bye");
        assert.deepEqual(bye, [{ type: "bye", reason: "replaced", registrationNonce: "n-1" }]);
        // ... and another instance (another nonce) replacing the retry.
        const other = await world.register({ identity: me, nonce: "n-2" });
        await world.until(() => retry.closed, "the retry to be replaced");
        assert.deepEqual(retry.of("bye"), [{
          type: "bye",
          reason: "replaced",
          registrationNonce: "n-2",
        }]);
        other.conn.send({ type: "ping", t: 7 });
        await world.until(() => other.of("pong").some((p) => p.t === 7), "the newest to be served");
      },
    );

    await t.step("someone else's public key with a bad signature is refused", async () => {
      const victim = await Identity.generate();
      const attacker = await Identity.generate();
      const conn = await world.connect();
      const signer = { publicKey: victim.publicKey, sign: (d: Uint8Array) => attacker.sign(d) };
      await assert.rejects(world.runtime.drive(conn.register(signer, [])), /auth-failed/);
      await world.until(() => conn.isClosed, "the impersonator to be closed");
      assert.equal(world.server.metrics.registrations.get("auth-failed"), 1);
      assert.equal(world.server.signaling.registry.get(victim.id), undefined);
    });

    await t.step("anything but hello first is refused and closed", async () => {
      const conn = await world.connect();
      conn.send({ type: "connect", peer: "00".repeat(20) });
      const seen: ServerMessage[] = [];
      const drained = (async () => {
        for await (const e of conn) if (e.kind === "message") seen.push(e.message);
      })();
      await world.until(() => conn.isClosed, "the connection to close");
      await drained;
      assert.equal(seen[0].type, "error");
      assert.equal((seen[0] as ServerMessageOf<"error">).code, "not-registered");
      assert.deepEqual(seen[1], { type: "bye", reason: "protocol-error" });
    });
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: the same instance registering again keeps its introductions", async () => {
  const world = new World();
  try {
    const me = await Identity.generate();
    const a = await world.register({ identity: me, nonce: "instance-1" });
    const b = await world.register();
    a.conn.send({ type: "connect", peer: b.me.id });
    await world.until(() => b.of("introduce").length === 1, "the introduction");
    // A's slow registration was retried on a second connection: it replaces the first.
    const again = await world.register({ identity: me, nonce: "instance-1", localPort: 40_002 });
    await world.until(() => a.closed, "the first connection to close");
    assert.deepEqual(a.of("bye"), [{
      type: "bye",
      reason: "replaced",
      registrationNonce: "instance-1",
    }]);
    // B is not told A left; it learns A's new candidates; relay works both ways at once.
    await world.until(() => b.of("candidates").length === 1, "the candidates update");
    assert.deepEqual(b.of("peer-left"), []);
    assert.equal(b.of("candidates")[0].candidates[0].port, 40_002);
    again.conn.sendRelay(b.me.id, new Uint8Array([1]));
    b.conn.sendRelay(me.id, new Uint8Array([2]));
    await world.until(
      () => b.relayed.length === 1 && again.relayed.length === 1,
      "relay both ways",
    );
    assert.deepEqual(again.of("error"), []);

    // Another instance of the same identity (another nonce) is a real replacement.
    const other = await world.register({ identity: me, nonce: "instance-2" });
    await world.until(() => b.of("peer-left").length === 1, "peer-left for the replaced instance");
    assert.deepEqual(b.of("peer-left")[0], { type: "peer-left", peer: me.id, reason: "replaced" });
    other.conn.sendRelay(b.me.id, new Uint8Array([3]));
    await world.until(() => other.of("error").length === 1, "relay refused until introduced");
    assert.equal(other.of("error")[0].code, "relay-not-brokered");
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: a stale registration of the same instance never replaces its retry", async () => {
  const world = new World();
  try {
    const me = await Identity.generate();
    const runtime = world.hostRuntime();
    const slow = await world.connect(runtime); // the first attempt, slow to complete ...
    const retry = await world.connect(runtime); // ... so the client retried on a new connection
    const registered = await world.runtime.drive(retry.register(me, [], 10_000, "n"));
    assert.equal(registered.registrationNonce, "n");
    await assert.rejects(world.runtime.drive(slow.register(me, [], 10_000, "n")), /replaced/);
    await world.until(() => slow.isClosed, "the stale connection to close");
    assert.equal(world.server.signaling.registry.get(me.id)?.connection.serial, 2);
    retry.send({ type: "ping", t: 5 });
    await world.runtime.drive(retry.waitFor("pong", 5000));
    assert.equal(world.server.metrics.registrations.get("superseded"), 1);
    retry.close();
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: introductions, relay and relay refusals", async () => {
  const world = new World();
  try {
    const a = await world.register();
    const b = await world.register();
    const c = await world.register();
    a.conn.send({ type: "connect", peer: "ab".repeat(20), requestId: "r0" });
    await world.until(() => a.of("error").length === 1, "unknown-peer");
    assert.equal(a.of("error")[0].code, "unknown-peer");
    assert.equal(a.of("error")[0].requestId, "r0");

    a.conn.send({ type: "connect", peer: b.me.id, requestId: "r1" });
    await world.until(
      () => a.of("introduce").length === 1 && b.of("introduce").length === 1,
      "introductions",
    );
    const [toA] = a.of("introduce");
    const [toB] = b.of("introduce");
    assert.equal(toA.peer, b.me.id);
    assert.equal(toA.role, "initiator");
    assert.equal(toA.requestId, "r1");
    assert.equal(toB.peer, a.me.id);
    assert.equal(toB.role, "responder");
    assert.deepEqual(toA.candidates, [{ host: "192.168.1.2", port: 40_000, kind: "local" }]);
    assert.equal(toA.punchAt, toB.punchAt);
    assert.ok(toA.punchInMs !== undefined && toB.punchInMs !== undefined);
    assert.equal(world.server.metrics.introductions, 1);

    for (let i = 0; i < 10; i++) a.conn.sendRelay(b.me.id, new Uint8Array(100).fill(i));
    await world.until(() => b.relayed.length === 10, "relayed frames");
    assert.ok(b.relayed.every((r, i) => r.peer === a.me.id && r.payload[0] === i));
    assert.equal(world.server.metrics.relayFrames, 10);
    assert.equal(world.server.metrics.relayFramesToNodes, 0, "both clients are on this server");
    assert.equal(world.server.metrics.relayBytes, 1000);

    // C is online but was not introduced to A; D's ID is not online at all.
    a.conn.sendRelay(c.me.id, new Uint8Array(5));
    a.conn.sendRelay("cd".repeat(20), new Uint8Array(6));
    await world.until(() => a.of("error").length === 3, "two relay refusals");
    const [, notBrokered, offline] = a.of("error");
    assert.deepEqual(
      [notBrokered.code, notBrokered.peer, notBrokered.bytes],
      ["relay-not-brokered", c.me.id, 5],
    );
    // Not online at all: the same answer, so a stranger cannot tell (issue 11).
    assert.deepEqual([offline.code, offline.bytes], ["relay-not-brokered", 6]);
    assert.equal(world.server.metrics.relayRefused.get("relay-not-brokered"), 2);
    assert.equal(c.relayed.length, 0);
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: a silent client times out and its peers hear peer-left timeout", async () => {
  const world = new World({ heartbeatMs: 1000 });
  try {
    const a = await world.register();
    const b = await world.register();
    a.conn.send({ type: "connect", peer: b.me.id });
    await world.until(() => b.of("introduce").length === 1, "the introduction");
    b.answerPings = false; // B freezes: nothing more arrives from it
    const frozenAt = world.runtime.now();
    await world.until(() => a.of("peer-left").length === 1, "peer-left", 10_000);
    assert.deepEqual(a.of("peer-left")[0], { type: "peer-left", peer: b.me.id, reason: "timeout" });
    const elapsed = world.runtime.now() - frozenAt;
    assert.ok(elapsed >= 2500 && elapsed <= 3600, `timed out after ${elapsed} ms`);
    await world.until(() => b.closed, "B's connection to close");
    assert.deepEqual(b.of("bye").at(-1), { type: "bye", reason: "timeout" });
    assert.equal(world.server.metrics.heartbeatTimeouts, 1);
    assert.ok(!a.closed, "A, which answers pings, is still connected");
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: a server frozen past the dead period does not drop the clients it could not hear", async () => {
  let frozen: FreezableRuntime | null = null;
  const world = new World(
    { heartbeatMs: 1000 },
    (runtime) => frozen = new FreezableRuntime(runtime),
  );
  try {
    const a = await world.register();
    await world.until(() => a.of("ping").length > 0, "the first ping");
    await world.runtime.advance(1500); // a few heartbeats
    // The server process stops (kill -STOP, a long pause) for 4 dead periods; A answers every
    // ping it got and keeps its connection, so what the server finds at the thaw is a pong.
    frozen!.freeze();
    await world.runtime.advance(10_000);
    frozen!.thaw();
    await world.runtime.advance(1500);
    assert.ok(!a.closed, "A was not dropped for the server's own silence");
    assert.equal(world.server.metrics.heartbeatTimeouts, 0);
    // A client that really is silent still times out.
    a.answerPings = false;
    await world.until(() => a.closed, "A's timeout once it stops answering", 20_000);
    assert.equal(world.server.metrics.heartbeatTimeouts, 1);
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: a connection that never registers is closed at the deadline", async () => {
  const world = new World({ registrationTimeoutMs: 2000 });
  try {
    const conn = await world.connect();
    await world.until(() => conn.isClosed, "the timeout", 5000);
    assert.ok(world.runtime.now() >= 2000);
    assert.equal(world.server.metrics.registrations.get("timeout"), 1);
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: connections per address and server-full are refused with a reason", async () => {
  const world = new World({ maxConnectionsPerAddress: 2, maxClients: 2 });
  try {
    const runtime = world.hostRuntime();
    await world.register({ runtime });
    await world.register({ runtime });
    const third = await world.connect(runtime);
    await assert.rejects(
      world.runtime.drive(third.waitFor("registered", 5000)),
      /too-many-connections/,
    );
    await assert.rejects(world.runtime.drive(world.register()), /server-full/);
    assert.equal(world.server.metrics.connections.get("too-many-connections"), 1);
    assert.equal(world.server.metrics.registrations.get("server-full"), 1);
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: shutdown says bye server-shutdown to every client", async () => {
  const world = new World();
  const a = await world.register();
  const b = await world.register();
  await world.runtime.drive(world.server.close(), 30_000, 10);
  await world.until(() => a.closed && b.closed, "both to be closed");
  assert.deepEqual(a.of("bye").at(-1), { type: "bye", reason: "server-shutdown" });
  assert.deepEqual(b.of("bye").at(-1), { type: "bye", reason: "server-shutdown" });
  await world.close();
});

Deno.test("server in-process: a public endpoint learned after the introduction is passed on", async () => {
  const world = new World();
  try {
    const hostA = { address: "10.0.0.50", runtime: world.hostRuntime("10.0.0.50") };
    const a = await world.register({ runtime: hostA.runtime });
    const b = await world.register();
    b.conn.send({ type: "connect", peer: a.me.id });
    await world.until(() => b.of("introduce").length === 1, "the introduction");
    assert.deepEqual(b.of("introduce")[0].candidates.map((c) => c.kind), ["local"]);

    // Now A's authenticated STUN Binding arrives: the server learns its public endpoint.
    const udp = hostA.runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
    const writer = new StunMessageWriter();
    writer.start(StunMethod.Binding, StunClass.Request, new Uint8Array(12).fill(3));
    addUsername(writer, a.registered!.stunUsername);
    addMessageIntegrity(writer, shortTermKey(a.registered!.stunPassword));
    addFingerprint(writer);
    await udp.send(writer.bytes().slice(), { transport: "udp", hostname: SERVER, port: STUN_PORT });
    const [answer] = await world.runtime.drive(udp.receive());
    assert.equal(decodeStunMessage(answer).messageClass, StunClass.SuccessResponse);
    udp.close();

    await world.until(() => b.of("candidates").length === 1, "the candidates update");
    assert.deepEqual(b.of("candidates")[0], {
      type: "candidates",
      from: a.me.id,
      candidates: [
        { host: hostA.address, port: udp.addr.port, kind: "public" },
        { host: "192.168.1.2", port: 40_000, kind: "local" },
      ],
    });
    await world.until(() => a.of("endpoint").length === 1, "A's own endpoint");
    assert.equal(world.server.metrics.candidateUpdates, 1);
    assert.equal(world.server.metrics.snapshot().stunAnswered.success, 1);

    // New local addresses are passed on too; changes in quick succession are coalesced into
    // one update a second after the previous one, carrying the latest list.
    const firstAt = world.runtime.now();
    for (let i = 0; i < 20; i++) {
      a.conn.send({
        type: "addresses",
        localAddresses: [{ host: "192.168.1.9", port: 41_000 + i }],
      });
    }
    await world.until(() => b.of("candidates").length === 2, "the second update");
    assert.ok(world.runtime.now() - firstAt <= 1100);
    assert.deepEqual(b.of("candidates")[1].candidates.map((c) => `${c.host}:${c.port}`), [
      `${hostA.address}:${udp.addr.port}`,
      "192.168.1.9:41019",
    ]);
    await world.runtime.advance(3000);
    assert.equal(b.of("candidates").length, 2, "no further updates");
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: both sides punch at the same moment under 10 ms vs 150 ms RTT", async () => {
  const world = new World({ heartbeatMs: 500 });
  const near = { address: "10.0.0.50", runtime: world.hostRuntime("10.0.0.50") };
  const far = { address: "10.0.0.51", runtime: world.hostRuntime("10.0.0.51") };
  const oneWay = (host: string) => host === near.address ? 5 : host === far.address ? 75 : 0;
  world.network.policy = (transit) => ({
    delayMs: Math.max(oneWay(transit.from.hostname), oneWay(transit.to.hostname)),
  });
  try {
    const a = await world.register({ runtime: near.runtime });
    const b = await world.register({ runtime: far.runtime });
    // Let a few heartbeats measure each side's RTT.
    await world.runtime.advance(2000);
    a.conn.send({ type: "connect", peer: b.me.id });
    await world.until(
      () => a.of("introduce").length === 1 && b.of("introduce").length === 1,
      "introductions",
    );
    const arrivalA = a.arrivals.find((x) => x.message.type === "introduce")!;
    const arrivalB = b.arrivals.find((x) => x.message.type === "introduce")!;
    const punchA = arrivalA.at + (arrivalA.message as ServerMessageOf<"introduce">).punchInMs!;
    const punchB = arrivalB.at + (arrivalB.message as ServerMessageOf<"introduce">).punchInMs!;
    assert.ok(arrivalB.at - arrivalA.at >= 60, "the far side hears much later");
    assert.ok(Math.abs(punchA - punchB) <= 2, `punch instants ${punchA} and ${punchB} differ`);
  } finally {
    world.network.policy = undefined;
    await world.close();
  }
});

Deno.test("server in-process: logs tell each connection's story; a refusal flood is rate-limited", async () => {
  const lines: { level: string; message: string; properties: Record<string, unknown> }[] = [];
  const record = (level: string) => (message: string, properties: Record<string, unknown> = {}) =>
    void lines.push({ level, message, properties });
  const logger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warning"),
    error: record("error"),
  } as unknown as ServerOptions["logger"];
  const world = new World({ logger });
  try {
    const a = await world.register();
    const b = await world.register();
    a.conn.send({ type: "connect", peer: b.me.id });
    await world.until(() => b.of("introduce").length === 1, "the introduction");
    a.conn.sendRelay(b.me.id, new Uint8Array(300));
    await world.until(() => b.relayed.length === 1, "the relayed frame");
    a.conn.send({ type: "bye" });
    await world.until(() => a.closed, "A to close");
    const info = lines.filter((l) => l.level === "info").map((l) => l.message);
    assert.equal(info.filter((m) => m.startsWith("registered ")).length, 2);
    assert.ok(info.some((m) => m.startsWith("introduced ")));
    const closed = lines.find((l) =>
      l.message.startsWith("closed ") && l.properties.id === a.me.id
    );
    assert.ok(closed, "A's closing line");
    assert.equal(closed.properties.reason, "client-bye");
    assert.equal(closed.properties.frames, 1);
    assert.equal(closed.properties.bytes, 300);

    // 60 impersonation attempts within a few virtual seconds: a handful of WARNING lines.
    const victim = await Identity.generate();
    const attacker = await Identity.generate();
    const signer = { publicKey: victim.publicKey, sign: (d: Uint8Array) => attacker.sign(d) };
    const runtime = world.hostRuntime();
    for (let i = 0; i < 60; i++) {
      const conn = await world.connect(runtime);
      await assert.rejects(world.runtime.drive(conn.register(signer, [])), /auth-failed/);
      conn.close();
    }
    assert.equal(world.server.metrics.registrations.get("auth-failed"), 60);
    const warnings = lines.filter((l) =>
      l.level === "warning" && l.properties.kind === "auth-failed"
    );
    assert.ok(warnings.length >= 1 && warnings.length <= 15, `${warnings.length} warning lines`);
  } finally {
    await world.close();
  }
});

Deno.test("server in-process: a crashed server restarted on the same ports takes the same IDs back", async () => {
  const world = new World();
  const me = await Identity.generate();
  const before = await world.register({ identity: me });
  await world.runtime.drive(world.server.abort());
  await world.until(() => before.closed, "the client to see the connection drop");
  assert.deepEqual(before.of("bye"), [], "a crash says no bye");
  const restarted = startServer({
    runtime: world.runtime.forHost(SERVER),
    tcpPort: TCP_PORT,
    stunPort: STUN_PORT,
  });
  try {
    const conn = await world.connect();
    const registered = await world.runtime.drive(conn.register(me, []));
    assert.equal(registered.id, me.id);
    assert.equal(restarted.metrics.snapshot().registered, 1);
    conn.close();
  } finally {
    await world.runtime.drive(restarted.close(), 30_000, 10);
    await world.close();
  }
});

Deno.test("server in-process: a relay budget shared with TURN refuses relay frames once spent", async () => {
  let left = 300;
  const world = new World({
    relayBudget: {
      take(bytes) {
        if (bytes > left) return false;
        left -= bytes;
        return true;
      },
    },
  });
  try {
    const a = await world.register();
    const b = await world.register();
    a.conn.send({ type: "connect", peer: b.me.id });
    await world.until(() => a.of("introduce").length === 1, "the introduction");
    for (let i = 0; i < 3; i++) a.conn.sendRelay(b.me.id, new Uint8Array(150).fill(i));
    await world.until(() => a.of("error").length === 1, "the refusal");
    assert.equal(a.of("error")[0].code, "relay-quota");
    assert.equal(b.relayed.length, 2);
    assert.equal(left, 0);
  } finally {
    await world.close();
  }
});
