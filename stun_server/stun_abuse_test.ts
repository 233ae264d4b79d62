/**
 * Issue 11's STUN attacks against the whole server on virtual time: forged-source Binding
 * requests (answered at about 60,000/s to the forged address) and a captured authenticated
 * request replayed from another address (the victim's public endpoint became the attacker's).
 */
import assert from "node:assert/strict";
import { encodeFreshness, P2P_FRESHNESS_ATTRIBUTE } from "../shared/stun/freshness.ts";
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
import { honestPairServed, ServerWorld, WORLD_SERVER } from "../testing/server_world.ts";

const STUN_PORT = 54321;

function bindingRequest(id: number): Uint8Array {
  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.Request, new Uint8Array(12).fill(id & 255));
  return writer.bytes().slice();
}

Deno.test("abuse: forged-source STUN requests get a few answers per second per source", async () => {
  const world = new ServerWorld();
  try {
    // The "victim" whose address the attacker forges; it counts what it is sent.
    const victim = world.hostRuntime("198.51.100.7").net.listenDatagram({
      hostname: "0.0.0.0",
      port: 7,
    });
    let reflected = 0;
    (async () => {
      try {
        for (;;) {
          await victim.receive();
          reflected++;
        }
      } catch {
        // closed
      }
    })();
    const start = world.runtime.now();
    // 60,000 requests/s for 2 s, 60 per virtual millisecond, "from" the victim.
    for (let ms = 0; ms < 2000; ms += 10) {
      for (let i = 0; i < 600; i++) {
        victim.send(bindingRequest(i), {
          transport: "udp",
          hostname: WORLD_SERVER,
          port: STUN_PORT,
        });
      }
      await world.runtime.advance(10);
    }
    await world.runtime.advance(100);
    const seconds = (world.runtime.now() - start) / 1000;
    assert.ok(reflected <= 40 + 20 * seconds + 1, `${reflected} answers reflected in ${seconds} s`);
    assert.ok((world.server.metrics.snapshot().stunDropped.rateLimited ?? 0) >= 100_000);
    // An honest STUN client elsewhere is answered during the flood, and an honest pair is served.
    const honest = world.hostRuntime("203.0.113.5").net.listenDatagram({
      hostname: "0.0.0.0",
      port: 0,
    });
    await honest.send(bindingRequest(1), {
      transport: "udp",
      hostname: WORLD_SERVER,
      port: STUN_PORT,
    });
    const [answer] = await world.runtime.drive(honest.receive(), 5000);
    assert.equal(decodeStunMessage(answer).messageClass, StunClass.SuccessResponse);
    honest.close();
    victim.close();
    await honestPairServed(world, ["10.0.50.2", "10.0.51.2"]);
  } finally {
    await world.close();
  }
});

Deno.test("abuse: a captured authenticated STUN request replayed elsewhere changes nothing", async () => {
  const world = new ServerWorld();
  try {
    const hostA = world.hostRuntime("10.0.0.2");
    const a = await world.register({ runtime: hostA });
    const udp = hostA.net.listenDatagram({ hostname: "0.0.0.0", port: 40_000 });
    const authenticated = (id: number, counter?: bigint) => {
      const writer = new StunMessageWriter();
      writer.start(StunMethod.Binding, StunClass.Request, new Uint8Array(12).fill(id));
      addUsername(writer, a.registered!.stunUsername);
      if (counter !== undefined) {
        writer.addAttribute(P2P_FRESHNESS_ATTRIBUTE, encodeFreshness(counter));
      }
      addMessageIntegrity(writer, shortTermKey(a.registered!.stunPassword));
      addFingerprint(writer);
      return writer.bytes().slice();
    };
    const to = { transport: "udp" as const, hostname: WORLD_SERVER, port: STUN_PORT };
    const captured = authenticated(1, 1n);
    await udp.send(captured, to);
    await world.runtime.drive(udp.receive(), 5000);
    await world.until(() => a.of("endpoint").length === 1, "A's endpoint");
    assert.deepEqual(a.of("endpoint")[0].public, { host: "10.0.0.2", port: 40_000 });
    // A retransmission from A itself is answered and changes nothing.
    await udp.send(captured, to);
    await world.runtime.drive(udp.receive(), 5000);

    // The attacker replays it, and an older capture, from its own address.
    const attacker = world.hostRuntime("10.0.66.6").net.listenDatagram({
      hostname: "0.0.0.0",
      port: 5555,
    });
    let answered = 0;
    (async () => {
      try {
        for (;;) {
          await attacker.receive();
          answered++;
        }
      } catch {
        // closed
      }
    })();
    await attacker.send(captured, to);
    await udp.send(authenticated(2, 2n), to); // A's next keep-alive
    await world.runtime.drive(udp.receive(), 5000);
    await attacker.send(captured, to);
    await world.runtime.advance(2000);
    assert.equal(answered, 0, "a replay is not answered");
    assert.equal(a.of("endpoint").length, 1, "the endpoint never changed");
    assert.equal(world.server.metrics.snapshot().stunDropped.replayed, 2);
    attacker.close();
    udp.close();
    await honestPairServed(world, ["10.0.52.2", "10.0.53.2"]);
  } finally {
    await world.close();
  }
});
