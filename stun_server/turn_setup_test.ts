// The STUN port with TURN started through startServer (as main.ts does), on virtual time: TURN
// answers, its counters reach the server's metrics, and shutdown frees everything.
import assert from "node:assert/strict";
import { VirtualRuntime } from "../testing/virtual_runtime.ts";
import {
  addMessageIntegrity,
  addNonce,
  addRealm,
  addRequestedTransport,
  addUsername,
  decodeStunMessage,
  getErrorCode,
  getNonce,
  longTermKey,
  StunClass,
  StunMessageWriter,
  TurnMethod,
} from "../shared/stun/mod.ts";
import { startServer } from "./server.ts";
import { stunTurnListen } from "./turn_setup.ts";
import { stunTurnConfig } from "./turn_flags.ts";
import { relayBudget } from "./relay_budget.ts";

Deno.test("turn setup: TURN through startServer, counted in the server metrics", async () => {
  const runtime = new VirtualRuntime();
  const budget = relayBudget(1_000_000, () => runtime.now());
  const server = startServer({
    runtime: runtime.forHost("203.0.113.1"),
    hostname: "203.0.113.1",
    tcpPort: 3478,
    stunPort: 3479,
    listenStun: stunTurnListen(stunTurnConfig({ turnUser: [{ name: "alice", password: "pw" }] })),
    relayBudget: budget,
  });
  const client = runtime.forHost("198.51.100.2").net.listenDatagram({
    hostname: "198.51.100.2",
    port: 0,
  });
  try {
    const ask = async (nonce?: string) => {
      const writer = new StunMessageWriter();
      writer.start(TurnMethod.Allocate, StunClass.Request, runtime.randomBytes(12));
      addRequestedTransport(writer, 17);
      if (nonce !== undefined) {
        addUsername(writer, "alice");
        addRealm(writer, "p2p");
        addNonce(writer, nonce);
        addMessageIntegrity(writer, longTermKey("alice", "p2p", "pw"));
      }
      await client.send(writer.bytes().slice(), {
        transport: "udp",
        hostname: "203.0.113.1",
        port: 3479,
      });
      return decodeStunMessage((await runtime.drive(client.receive()))[0].slice());
    };
    const challenge = await ask();
    assert.equal(getErrorCode(challenge)?.code, 401);
    const granted = await ask(getNonce(challenge));
    assert.equal(granted.messageClass, StunClass.SuccessResponse);
    const snapshot = server.metrics.snapshot();
    assert.equal(snapshot.turnAllocations, 1);
    assert.deepEqual(snapshot.turnRequests, { success: 1, 401: 1 });
    assert.ok(server.stun.some((a) => a.port === 3479));
    assert.equal(server.signaling.relayBudget, budget, "the signaling relay draws from it too");
  } finally {
    client.close();
    await runtime.drive(server.close(), 30_000, 10);
  }
  assert.equal(server.metrics.snapshot().turnAllocations, 0, "allocations freed at shutdown");
});
