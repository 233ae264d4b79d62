/**
 * Integration tests of the signaling service against the real server process on loopback.
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import {
  encodeControlFrame,
  encodeRelayFrame,
  registrationSignedData,
  type ServerMessage,
  SignalingConnection,
  SignalingRequestError,
} from "../shared/signaling/mod.ts";
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
import { ServerProcess } from "../testing/server_process.ts";

const WAIT_MS = 15_000;

async function connect(server: ServerProcess, maxBufferedEvents?: number) {
  return await SignalingConnection.connect({
    hostname: server.host,
    port: server.tcpPort,
    maxBufferedEvents,
  });
}

async function registered(
  server: ServerProcess,
  identity?: Identity,
  localAddresses = [{ host: "192.168.7.7", port: 40_000 }],
  maxBufferedEvents?: number,
) {
  const me = identity ?? await Identity.generate();
  const conn = await connect(server, maxBufferedEvents);
  const reply = await conn.register(me, localAddresses, WAIT_MS);
  return { me, conn, reply };
}

/** Reads events until the connection closes; returns every control message seen. */
async function drainUntilClosed(conn: SignalingConnection): Promise<ServerMessage[]> {
  const seen: ServerMessage[] = [];
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const event = await conn.next(Math.max(1, deadline - Date.now()));
    if (event === undefined) return seen;
    if (event.kind === "message") seen.push(event.message);
  }
}

async function assertServed(conn: SignalingConnection): Promise<void> {
  const t = Math.random();
  conn.send({ type: "ping", t });
  const pong = await conn.waitFor("pong", WAIT_MS);
  assert.equal(pong.t, t);
}

async function closeAll(...conns: SignalingConnection[]): Promise<void> {
  for (const conn of conns) conn.close();
  await Promise.all(conns.map((c) => c.closed));
}

Deno.test("signaling: registration, identity binding and brokering", async (t) => {
  const server = await ServerProcess.start();
  try {
    await t.step("registration issues the key-bound ID and STUN credentials", async () => {
      const { me, conn, reply } = await registered(server);
      assert.equal(reply.id, me.id);
      assert.ok(reply.stunUsername.length >= 16);
      assert.ok(reply.stunPassword.length >= 16);
      assert.equal(reply.stunPort, server.stunPort);
      assert.equal(reply.heartbeatMs, 10_000);
      assert.ok(reply.relay.maxPayload > 60_000);
      const ping = await conn.waitFor("ping", WAIT_MS);
      conn.send({ type: "pong", t: ping.t });
      await assertServed(conn);
      await closeAll(conn);
    });

    await t.step(
      "the same key gets the same ID after a reconnect; the newer session wins",
      async () => {
        const me = await Identity.generate();
        const first = await registered(server, me);
        const second = await registered(server, me);
        assert.equal(second.reply.id, first.reply.id);
        const seen = await drainUntilClosed(first.conn);
        assert.deepEqual(seen.at(-1), { type: "bye", reason: "replaced" });
        await assertServed(second.conn);
        await closeAll(first.conn, second.conn);
      },
    );

    await t.step("someone else's public key with a bad signature is refused", async () => {
      const victim = await Identity.generate();
      const attacker = await Identity.generate();
      const conn = await connect(server);
      // Claims the victim's key, signs with its own.
      await assert.rejects(
        conn.register({ publicKey: victim.publicKey, sign: (d) => attacker.sign(d) }, [], WAIT_MS),
        (e) =>
          e instanceof SignalingRequestError && e.reply?.type === "error" &&
          e.reply.code === "auth-failed",
      );
      await drainUntilClosed(conn);
      assert.equal(conn.isClosed, true);
      await closeAll(conn);
    });

    await t.step(
      "a signature replayed from another connection's challenge is refused",
      async () => {
        const victim = await Identity.generate();
        const victimConn = await connect(server);
        let captured: Uint8Array | null = null;
        await victimConn.register(
          {
            publicKey: victim.publicKey,
            sign: async (data) => captured = await victim.sign(data),
          },
          [],
          WAIT_MS,
        );
        assert.ok(captured !== null);
        const attackerConn = await connect(server);
        attackerConn.send({ type: "hello", version: 1, publicKey: victim.publicKey.toBase64() });
        const challenge = await attackerConn.waitFor("challenge", WAIT_MS);
        assert.notDeepEqual(
          registrationSignedData(Uint8Array.fromBase64(challenge.nonce)),
          undefined,
        );
        attackerConn.send({
          type: "register",
          signature: (captured as Uint8Array).toBase64(),
          localAddresses: [],
        });
        await assert.rejects(
          attackerConn.waitFor("registered", WAIT_MS),
          (e) =>
            e instanceof SignalingRequestError && e.reply?.type === "error" &&
            e.reply.code === "auth-failed",
        );
        // The victim's session is untouched.
        await assertServed(victimConn);
        await closeAll(victimConn, attackerConn);
      },
    );

    await t.step("connect to an unknown ID is refused and the connection stays open", async () => {
      const { conn } = await registered(server);
      const unknown = (await Identity.generate()).id;
      conn.send({ type: "connect", peer: unknown, requestId: "q1" });
      const error = await conn.waitFor("error", WAIT_MS);
      assert.equal(error.code, "unknown-peer");
      assert.equal(error.requestId, "q1");
      assert.equal(error.peer, unknown);
      await assertServed(conn);
      await closeAll(conn);
    });

    await t.step(
      "a brokered connect gives both sides the other's candidates, key and one punch time",
      async (s) => {
        const a = await registered(server, undefined, [{ host: "10.0.0.1", port: 5001 }]);
        const b = await registered(server, undefined, [
          { host: "10.0.0.2", port: 5002 },
          { host: "fd00::2", port: 5002 },
        ]);
        a.conn.send({ type: "connect", peer: b.me.id, requestId: "r7" });
        const toA = await a.conn.waitFor("introduce", WAIT_MS);
        const toB = await b.conn.waitFor("introduce", WAIT_MS);
        assert.equal(toA.peer, b.me.id);
        assert.equal(toA.publicKey, b.me.publicKey.toBase64());
        assert.deepEqual(toA.candidates, [
          { host: "10.0.0.2", port: 5002, kind: "local" },
          { host: "fd00::2", port: 5002, kind: "local" },
        ]);
        assert.equal(toA.role, "initiator");
        assert.equal(toA.requestId, "r7");
        assert.equal(toB.peer, a.me.id);
        assert.equal(toB.publicKey, a.me.publicKey.toBase64());
        assert.deepEqual(toB.candidates, [{ host: "10.0.0.1", port: 5001, kind: "local" }]);
        assert.equal(toB.role, "responder");
        assert.equal(toB.requestId, undefined);
        assert.equal(toA.punchAt, toB.punchAt);
        assert.ok(toA.punchAt - toA.serverTime >= 200);

        await s.step("relay round trip between the brokered pair", async () => {
          const payload = crypto.getRandomValues(new Uint8Array(1000));
          a.conn.sendRelay(b.me.id, payload);
          const atB = await nextRelay(b.conn);
          assert.equal(atB.peer, a.me.id);
          assert.deepEqual(atB.payload, payload);
          // A maximal payload (forwarded from the read buffer without a copy) arrives intact.
          const big = crypto.getRandomValues(new Uint8Array(a.reply.relay.maxPayload));
          a.conn.sendRelay(b.me.id, big);
          a.conn.sendRelay(b.me.id, big.subarray(0, 40_000));
          const bigAtB = await nextRelay(b.conn);
          assert.equal(bigAtB.peer, a.me.id);
          assert.deepEqual(bigAtB.payload, big);
          assert.deepEqual((await nextRelay(b.conn)).payload, big.subarray(0, 40_000));
          b.conn.sendRelay(a.me.id, payload.subarray(0, 10));
          const atA = await nextRelay(a.conn);
          assert.equal(atA.peer, b.me.id);
          assert.deepEqual(atA.payload, payload.subarray(0, 10));
        });

        await s.step("relay refusals are reported with code, peer and bytes", async () => {
          const c = await registered(server);
          a.conn.sendRelay(c.me.id, new Uint8Array(33));
          const notBrokered = await a.conn.waitFor("error", WAIT_MS);
          assert.equal(notBrokered.code, "relay-not-brokered");
          assert.equal(notBrokered.peer, c.me.id);
          assert.equal(notBrokered.bytes, 33);
          const offline = (await Identity.generate()).id;
          a.conn.sendRelay(offline, new Uint8Array(5));
          const off = await a.conn.waitFor("error", WAIT_MS);
          // The same code as for an online peer: a stranger cannot learn who is online.
          assert.deepEqual([off.code, off.peer, off.bytes], ["relay-not-brokered", offline, 5]);
          await closeAll(c.conn);
        });

        await s.step("when one side leaves, the other is told", async () => {
          b.conn.send({ type: "bye" });
          await b.conn.flush();
          const left = await a.conn.waitFor("peer-left", WAIT_MS);
          assert.deepEqual(left, { type: "peer-left", peer: b.me.id, reason: "disconnected" });
          a.conn.sendRelay(b.me.id, new Uint8Array(1));
          assert.equal((await a.conn.waitFor("error", WAIT_MS)).code, "relay-not-brokered");
        });
        await closeAll(a.conn, b.conn);
      },
    );

    await t.step("an authenticated STUN Binding reveals the public endpoint", async () => {
      const a = await registered(server);
      const b = await registered(server);
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      try {
        const udpPort = (udp.addr as Deno.NetAddr).port;
        const writer = new StunMessageWriter();
        writer.start(
          StunMethod.Binding,
          StunClass.Request,
          crypto.getRandomValues(new Uint8Array(12)),
        );
        addUsername(writer, a.reply.stunUsername);
        addMessageIntegrity(writer, shortTermKey(a.reply.stunPassword));
        addFingerprint(writer);
        await udp.send(writer.bytes().slice(), {
          transport: "udp",
          hostname: "127.0.0.1",
          port: a.reply.stunPort,
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const [answer] = await Promise.race([
          udp.receive(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error("no STUN answer")), WAIT_MS);
          }),
        ]).finally(() => clearTimeout(timer));
        assert.equal(decodeStunMessage(answer).messageClass, StunClass.SuccessResponse);
        // Its owner is told over TCP ...
        const endpoint = await a.conn.waitFor("endpoint", WAIT_MS);
        assert.deepEqual(endpoint.public, { host: "127.0.0.1", port: udpPort });
        // ... and a brokered peer gets it as the first, public, candidate.
        b.conn.send({ type: "connect", peer: a.me.id });
        const introduce = await b.conn.waitFor("introduce", WAIT_MS);
        assert.deepEqual(introduce.candidates[0], {
          host: "127.0.0.1",
          port: udpPort,
          kind: "public",
        });
      } finally {
        udp.close();
        await closeAll(a.conn, b.conn);
      }
    });

    await t.step(
      "the same ID after a server restart, and clients told bye on SIGTERM",
      async () => {
        const me = await Identity.generate();
        const before = await registered(server, me);
        const byeSeen = drainUntilClosed(before.conn);
        await server.restart(); // SIGTERM, exit code 0 asserted, same ports
        const seen = await byeSeen;
        assert.deepEqual(seen.at(-1), { type: "bye", reason: "server-shutdown" });
        const after = await registered(server, me);
        assert.equal(after.reply.id, before.reply.id);
        await closeAll(before.conn, after.conn);
      },
    );
  } finally {
    await server.stop();
  }
});

async function nextRelay(conn: SignalingConnection) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const event = await conn.next(Math.max(1, deadline - Date.now()));
    if (event === undefined) throw new Error(`closed: ${conn.closeReason}`);
    if (event.kind === "relay") return event;
  }
}

Deno.test("signaling: malformed input is answered or cut off while another client is served", async (t) => {
  const server = await ServerProcess.start();
  const bystander = await registered(server);
  try {
    const cases: { name: string; bytes: Uint8Array[]; expect: string[]; closes: boolean }[] = [
      {
        name: "garbage text",
        bytes: [new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
        expect: ["error:frame-too-large", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "oversized length",
        bytes: [new Uint8Array([0, 1, 0, 1, 1])],
        expect: ["error:frame-too-large", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "oversized length followed by a flood of bytes",
        bytes: [new Uint8Array([0, 0xff, 0, 0, 1]), new Uint8Array(512 * 1024).fill(0x41)],
        expect: ["error:frame-too-large", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "wrongly typed fields, three times",
        bytes: [1, 2, 3].map(() => encodeControlFrame({ type: "ping", t: "soon" })),
        expect: [
          "error:bad-message",
          "error:bad-message",
          "error:bad-message",
          "bye:protocol-error",
        ],
        closes: true,
      },
      {
        name: "invalid JSON, unknown kind and empty frame",
        bytes: [
          frame(1, new TextEncoder().encode("{nope")),
          frame(9, new Uint8Array(3)),
          new Uint8Array(4),
        ],
        expect: ["error:bad-frame", "error:bad-frame", "error:bad-frame", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "unknown type and an unknown field",
        bytes: [
          encodeControlFrame({ type: "teleport" }),
          encodeControlFrame({ type: "hello", version: 1, publicKey: "A".repeat(43) + "=", x: 1 }),
        ],
        expect: ["error:bad-message", "error:bad-message"],
        closes: false,
      },
      {
        name: "a message before registration",
        bytes: [encodeControlFrame({ type: "connect", peer: "00".repeat(20) })],
        expect: ["error:not-registered", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "a relay frame before registration",
        bytes: [encodeRelayFrame("00".repeat(20), new Uint8Array(4))],
        expect: ["error:not-registered", "bye:protocol-error"],
        closes: true,
      },
      {
        name: "an unsupported version",
        bytes: [encodeControlFrame({ type: "hello", version: 2, publicKey: "A".repeat(43) + "=" })],
        expect: ["error:unsupported-version", "bye:protocol-error"],
        closes: true,
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        const conn = await connect(server);
        for (const bytes of c.bytes) conn.sendRaw(bytes);
        const seen: string[] = [];
        if (c.closes) {
          for (const m of await drainUntilClosed(conn)) seen.push(describe(m));
        } else {
          while (seen.length < c.expect.length) {
            seen.push(describe(await conn.waitFor("error", WAIT_MS)));
          }
          await assertServedUnregistered(conn);
        }
        assert.deepEqual(seen, c.expect);
        await closeAll(conn);
        await assertServed(bystander.conn);
      });
    }

    await t.step("a truncated frame followed by end of stream", async () => {
      const tcp = await Deno.connect({ hostname: server.host, port: server.tcpPort });
      await tcp.write(new Uint8Array([0, 0, 0, 100, 1, 123, 34]));
      await tcp.closeWrite();
      const buffer = new Uint8Array(64);
      assert.equal(await tcp.read(buffer), null, "the server closes its side");
      tcp.close();
      await assertServed(bystander.conn);
    });

    await t.step("a client flooding control messages is rate limited, then cut off", async () => {
      const conn = await connect(server);
      for (let i = 0; i < 300; i++) {
        conn.send({ type: "hello", version: 1, publicKey: "A".repeat(43) + "=" });
      }
      const seen = (await drainUntilClosed(conn)).map(describe);
      assert.ok(
        seen.includes("error:rate-limited") || seen.includes("error:bad-message"),
        seen.join(),
      );
      assert.equal(seen.at(-1), "bye:protocol-error");
      await closeAll(conn);
      await assertServed(bystander.conn);
    });
  } finally {
    await closeAll(bystander.conn);
    await server.stop();
  }
});

function frame(kind: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(0, body.length + 1);
  out[4] = kind;
  out.set(body, 5);
  return out;
}

function describe(message: ServerMessage): string {
  if (message.type === "error") return `error:${message.code}`;
  if (message.type === "bye") return `bye:${message.reason}`;
  return message.type;
}

/** An unregistered connection is still served: a valid hello gets a challenge. */
async function assertServedUnregistered(conn: SignalingConnection): Promise<void> {
  const me = await Identity.generate();
  conn.send({ type: "hello", version: 1, publicKey: me.publicKey.toBase64() });
  await conn.waitFor("challenge", WAIT_MS);
}

Deno.test("signaling: a sender over its relay rate is told, per refused frame", async () => {
  const server = await ServerProcess.start({ args: ["--relay-rate", "100000"] });
  try {
    const a = await registered(server);
    const b = await registered(server);
    a.conn.send({ type: "connect", peer: b.me.id });
    await a.conn.waitFor("introduce", WAIT_MS);
    assert.equal(a.reply.relay.bytesPerSecond, 100_000);
    const big = new Uint8Array(a.reply.relay.maxPayload);
    a.conn.sendRelay(b.me.id, big); // within the one-second burst
    a.conn.sendRelay(b.me.id, big); // over it
    const refusal = await a.conn.waitFor("error", WAIT_MS);
    assert.deepEqual([refusal.code, refusal.peer, refusal.bytes], [
      "relay-quota",
      b.me.id,
      big.length,
    ]);
    const first = await nextRelay(b.conn);
    assert.equal(first.payload.length, big.length);
    await closeAll(a.conn, b.conn);
  } finally {
    await server.stop();
  }
});

Deno.test("signaling: peers of a replaced session are told", async () => {
  const server = await ServerProcess.start();
  try {
    const a = await registered(server);
    const b = await registered(server);
    a.conn.send({ type: "connect", peer: b.me.id });
    await a.conn.waitFor("introduce", WAIT_MS);
    const bAgain = await registered(server, b.me);
    const left = await a.conn.waitFor("peer-left", WAIT_MS);
    assert.deepEqual(left, { type: "peer-left", peer: b.me.id, reason: "replaced" });
    // The pair must be brokered again before relaying to the new session.
    a.conn.sendRelay(b.me.id, new Uint8Array(1));
    assert.equal((await a.conn.waitFor("error", WAIT_MS)).code, "relay-not-brokered");
    await closeAll(a.conn, b.conn, bAgain.conn);
  } finally {
    await server.stop();
  }
});

Deno.test("signaling: limits on connections per address and registration time", async () => {
  const server = await ServerProcess.start({
    args: ["--max-conns-per-ip", "2", "--registration-timeout-ms", "300"],
  });
  try {
    const first = await connect(server);
    const second = await connect(server);
    const third = await connect(server);
    assert.deepEqual((await drainUntilClosed(third)).map(describe), ["error:too-many-connections"]);
    const timedOut = (await drainUntilClosed(first)).map(describe);
    assert.deepEqual(timedOut, ["error:timeout", "bye:timeout"]);
    await closeAll(first, second, third);
  } finally {
    await server.stop();
  }
});

Deno.test("signaling: heartbeat timeout tells the peers of a dead session", async () => {
  const server = await ServerProcess.start({ args: ["--heartbeat-ms", "200"] });
  try {
    const alive = await registered(server);
    const silent = await registered(server);
    alive.conn.send({ type: "connect", peer: silent.me.id });
    await alive.conn.waitFor("introduce", WAIT_MS);
    // `alive` answers pings; `silent` never sends anything again.
    const deadline = Date.now() + WAIT_MS;
    let left: ServerMessage | undefined;
    while (left === undefined && Date.now() < deadline) {
      const event = await alive.conn.next(Math.max(1, deadline - Date.now()));
      if (event?.kind !== "message") continue;
      if (event.message.type === "ping") alive.conn.send({ type: "pong", t: event.message.t });
      if (event.message.type === "peer-left") left = event.message;
    }
    assert.deepEqual(left, { type: "peer-left", peer: silent.me.id, reason: "timeout" });
    const seen = (await drainUntilClosed(silent.conn)).map(describe);
    assert.equal(seen.at(-1), "bye:timeout");
    await closeAll(alive.conn, silent.conn);
  } finally {
    await server.stop();
  }
});

Deno.test("signaling: a slow receiver is held to its queue quota without server memory growth", async () => {
  const queueBytes = 256 * 1024;
  const server = await ServerProcess.start({
    args: ["--relay-queue", String(queueBytes), "--relay-rate", "1000000000"],
  });
  try {
    const sender = await registered(server);
    // The receiver stops reading once 4 events are buffered.
    const receiver = await registered(server, undefined, [], 4);
    sender.conn.send({ type: "connect", peer: receiver.me.id });
    await sender.conn.waitFor("introduce", WAIT_MS);
    const rssBefore = await server.rssKiB();
    const payload = new Uint8Array(60_000);
    const total = 2000; // 120 MB, far beyond the queue and the socket buffers
    let refusedFrames = 0;
    let refusedBytes = 0;
    const countRefusals = async (until: () => boolean) => {
      const deadline = Date.now() + WAIT_MS;
      while (!until()) {
        if (Date.now() > deadline) throw new Error(`stuck at ${refusedFrames} refusals`);
        // Short waits so that a condition met by the other reader is noticed promptly.
        const event = await sender.conn.next(100).catch((e) => {
          if (e instanceof Deno.errors.TimedOut) return null;
          throw e;
        });
        if (event?.kind !== "message") continue;
        const m = event.message;
        if (m.type === "ping") sender.conn.send({ type: "pong", t: m.t });
        if (m.type === "error") {
          assert.equal(m.code, "relay-queue-full");
          assert.equal(m.peer, receiver.me.id);
          refusedFrames++;
          refusedBytes += m.bytes ?? 0;
        }
      }
    };
    for (let sent = 0; sent < total;) {
      for (let i = 0; i < 50; i++, sent++) sender.conn.sendRelay(receiver.me.id, payload);
      await sender.conn.flush();
      // Keep at most ~1000 frames unanswered so the test client's own buffers stay small.
      const target = sent - 1000;
      const received = () => refusedFrames >= target;
      if (target > 0) await countRefusals(received);
    }
    const rssAfter = await server.rssKiB();
    assert.ok(refusedFrames >= total / 2, `refused ${refusedFrames} of ${total}`);
    assert.equal(refusedBytes, refusedFrames * payload.length);
    const growthKiB = rssAfter - rssBefore;
    assert.ok(growthKiB < 48 * 1024, `server RSS grew by ${growthKiB} KiB`);
    // Now the receiver reads: every frame is either delivered or was refused, none lost.
    let delivered = 0;
    const done = () => delivered + refusedFrames === total;
    const reading = (async () => {
      const deadline = Date.now() + WAIT_MS;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`stuck at ${delivered} delivered`);
        // Short waits: the last refusal may be what completes the count.
        const event = await receiver.conn.next(100).catch((e) => {
          if (e instanceof Deno.errors.TimedOut) return null;
          throw e;
        });
        if (event === undefined) throw new Error("receiver closed");
        if (event?.kind === "relay") delivered++;
      }
    })();
    await Promise.all([reading, countRefusals(done)]);
    assert.equal(delivered + refusedFrames, total);
    assert.ok(delivered > 0);
    await closeAll(sender.conn, receiver.conn);
  } finally {
    await server.stop();
  }
});

/** A small seeded PRNG (mulberry32), so the chaos test is repeatable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("signaling: random input and abrupt closes at any moment never disturb a bystander", async () => {
  const server = await ServerProcess.start({ args: ["--max-conns-per-ip", "256"] });
  const bystander = await registered(server);
  try {
    const random = prng(20261124);
    const me = await Identity.generate();
    const valid = [
      encodeControlFrame({ type: "hello", version: 1, publicKey: me.publicKey.toBase64() }),
      encodeControlFrame({ type: "ping", t: 1 }),
      encodeRelayFrame(bystander.me.id, new Uint8Array(10)),
    ];
    for (let round = 0; round < 5; round++) {
      const conns = await Promise.all(
        Array.from(
          { length: 20 },
          () => Deno.connect({ hostname: server.host, port: server.tcpPort }),
        ),
      );
      await Promise.all(conns.map(async (tcp) => {
        try {
          for (let step = Math.floor(random() * 6); step > 0; step--) {
            const pick = random();
            let bytes: Uint8Array;
            if (pick < 0.3) bytes = valid[Math.floor(random() * valid.length)];
            else if (pick < 0.6) {
              // A valid frame cut short.
              const frame = valid[Math.floor(random() * valid.length)];
              bytes = frame.subarray(0, 1 + Math.floor(random() * (frame.length - 1)));
            } else {
              bytes = crypto.getRandomValues(new Uint8Array(1 + Math.floor(random() * 300)));
            }
            await tcp.write(bytes);
          }
        } catch {
          // the server may already have cut this connection off
        } finally {
          tcp.close(); // abrupt, at a random point of the exchange
        }
      }));
      await assertServed(bystander.conn);
    }
  } finally {
    await closeAll(bystander.conn);
    await server.stop();
  }
  // Nothing reached the server's error paths: every bad input was an ordinary protocol error.
  assert.doesNotMatch(server.logs, /"level":"(ERROR|FATAL)"/);
});
