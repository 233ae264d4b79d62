import assert from "node:assert/strict";
import type { StreamConn } from "../../shared/runtime/mod.ts";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import {
  ClientConnection,
  type ConnectionEvents,
  type ConnectionPhase,
  PhaseError,
} from "./connection.ts";
import { RegisteredClient } from "./registered_client.ts";

function connection(): ClientConnection {
  const stream = {
    localAddr: { transport: "tcp", hostname: "10.0.0.1", port: 3478 },
    remoteAddr: { transport: "tcp", hostname: "10.0.0.2", port: 5000 },
    read: () => new Promise<number | null>(() => {}),
    write: (bytes: Uint8Array) => Promise.resolve(bytes.length),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  } as StreamConn;
  const events = {} as ConnectionEvents;
  return new ClientConnection(stream, events, {
    runtime: new VirtualRuntime(),
    remoteHost: "10.0.0.2",
    serial: 1,
    controlRate: 50,
    controlBurst: 100,
  });
}

/** The phase, without the narrowing earlier assertions put on `conn.phase`. */
function phaseOf(conn: ClientConnection): ConnectionPhase {
  return conn.phase;
}

function client(conn: ClientConnection): RegisteredClient {
  return new RegisteredClient(conn, {
    id: "ab".repeat(20),
    publicKey: "k",
    stunUsername: "u",
    stunPassword: "p",
    localAddresses: [],
    registrationNonce: undefined,
    rttMs: 0,
    lastPingAt: 0,
  }, () => {});
}

Deno.test("connection: the phases follow registration, and skipping one is refused", () => {
  const conn = connection();
  assert.equal(conn.phase.name, "awaiting-hello");
  assert.throws(() => conn.beginVerify(), PhaseError);
  conn.challenge("k", new Uint8Array(32));
  assert.equal(conn.phase.name, "challenged");
  assert.throws(() => conn.challenge("k", new Uint8Array(32)), PhaseError);
  const { nonce } = conn.beginVerify();
  assert.equal(nonce.length, 32);
  assert.throws(() => conn.beginVerify(), PhaseError, "one signature attempt per challenge");
  const registered = client(conn);
  conn.register(registered);
  assert.equal(conn.client, registered);
  assert.equal(conn.beginClose("client-bye"), registered);
  assert.equal(conn.client, null);
  assert.ok(conn.closed);
  assert.equal(conn.beginClose("again"), null, "closing twice is a no-op");
  conn.lingerUntil(100);
  conn.markReadEnded();
  const phase = phaseOf(conn);
  assert.ok(phase.name === "closing" && phase.lingerUntil === 100 && phase.readEnded);
  assert.ok(conn.release("released"));
  assert.deepEqual(conn.phase, { name: "closed", reason: "client-bye" });
  assert.ok(!conn.release("released"));
});

Deno.test("connection: an unregistered connection closes from any phase", () => {
  const conn = connection();
  conn.challenge("k", new Uint8Array(32));
  assert.equal(conn.beginClose("registration-timeout"), null);
  assert.equal(conn.phase.name, "closing");
  assert.throws(() => conn.beginVerify(), PhaseError);
});

Deno.test("registered client: the first pong replaces the registration RTT, later ones are smoothed", () => {
  const c = client(connection());
  c.rttMs = 40; // from registration
  c.addRttSample(10);
  assert.equal(c.rttMs, 10);
  c.addRttSample(50);
  assert.equal(c.rttMs, 20);
});
