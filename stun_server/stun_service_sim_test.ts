// StunService on virtual time and an in-memory network: per-address sockets and their refresh,
// RFC 5780 (OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST, RESPONSE-PORT), STUN over TCP.
import assert from "node:assert/strict";
import { VirtualRuntime } from "../testing/virtual_runtime.ts";
import type { DatagramSocket, NetAddress, StreamConn } from "../shared/runtime/mod.ts";
import {
  addChangeRequest,
  addResponsePort,
  decodeStunMessage,
  getErrorCode,
  getOtherAddress,
  getResponseOrigin,
  getUnknownAttributes,
  getXorMappedAddress,
  StunClass,
  StunMessageWriter,
  StunMethod,
} from "../shared/stun/mod.ts";
import { StunService, type StunServiceEvent } from "./stun_service.ts";

function binding(fill?: (w: StunMessageWriter) => void): Uint8Array {
  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.Request, crypto.getRandomValues(new Uint8Array(12)));
  fill?.(writer);
  return writer.bytes().slice();
}

class Inbox {
  readonly items: [Uint8Array, NetAddress][] = [];
  constructor(socket: DatagramSocket) {
    (async () => {
      for (;;) {
        try {
          const [data, from] = await socket.receive();
          this.items.push([data.slice(), from]);
        } catch {
          return;
        }
      }
    })();
  }
}

async function ask(
  runtime: VirtualRuntime,
  socket: DatagramSocket,
  inbox: Inbox,
  to: { hostname: string; port: number },
  request: Uint8Array,
): Promise<[Uint8Array, NetAddress] | undefined> {
  await socket.send(request, { transport: "udp", ...to });
  await runtime.runUntil(() => inbox.items.length > 0, 1000);
  return inbox.items.shift();
}

Deno.test("stun service sim: one socket per local address; new addresses are bound, vanished ones closed", async () => {
  const runtime = new VirtualRuntime();
  let addresses = ["10.0.0.1", "fd00::1"];
  const events: StunServiceEvent[] = [];
  const service = StunService.listen({
    runtime: runtime.forHost("10.0.0.1"),
    port: 3478,
    localAddresses: () => addresses,
    addressRefreshMs: 5000,
    onEvent: (e) => events.push(e),
  });
  const client = runtime.forHost("10.0.0.9").net.listenDatagram({ hostname: "10.0.0.9", port: 0 });
  const inbox = new Inbox(client);
  try {
    assert.deepEqual(service.addresses.map((a) => a.hostname), ["10.0.0.1", "fd00::1"]);
    assert.equal(service.tcpAddress?.port, 3478);
    assert.equal(
      await ask(runtime, client, inbox, { hostname: "10.0.0.2", port: 3478 }, binding()),
      undefined,
    );
    addresses = ["10.0.0.1", "10.0.0.2", "fd00::1"];
    await runtime.advance(5001);
    const answer = await ask(
      runtime,
      client,
      inbox,
      { hostname: "10.0.0.2", port: 3478 },
      binding(),
    );
    assert.ok(answer, "the new address is served");
    assert.equal(answer[1].hostname, "10.0.0.2", "answered from the address asked");
    assert.ok(events.some((e) => e.type === "addresses-changed"));
    addresses = ["10.0.0.2"];
    await runtime.advance(5001);
    assert.deepEqual(service.addresses.map((a) => a.hostname), ["10.0.0.2"]);
    assert.equal(
      await ask(runtime, client, inbox, { hostname: "10.0.0.1", port: 3478 }, binding()),
      undefined,
    );
  } finally {
    client.close();
    await service.close();
  }
});

Deno.test("stun service sim: RFC 5780 with an alternate address and port", async () => {
  const runtime = new VirtualRuntime();
  const service = StunService.listen({
    runtime: runtime.forHost("10.0.0.1"),
    hostname: "10.0.0.1",
    port: 3478,
    alternate: { hostname: "10.0.0.2", port: 3479 },
  });
  const client = runtime.forHost("10.0.0.9").net.listenDatagram({
    hostname: "10.0.0.9",
    port: 5000,
  });
  const other = runtime.forHost("10.0.0.9").net.listenDatagram({
    hostname: "10.0.0.9",
    port: 5001,
  });
  const inbox = new Inbox(client);
  const otherInbox = new Inbox(other);
  try {
    assert.equal(service.addresses.length, 4);
    const plain = await ask(
      runtime,
      client,
      inbox,
      { hostname: "10.0.0.1", port: 3478 },
      binding(),
    );
    const message = decodeStunMessage(plain![0]);
    assert.deepEqual(getOtherAddress(message), {
      family: "IPv4",
      hostname: "10.0.0.2",
      port: 3479,
    });
    assert.deepEqual(getResponseOrigin(message), {
      family: "IPv4",
      hostname: "10.0.0.1",
      port: 3478,
    });
    for (
      const [changeIp, changePort, from] of [
        [true, false, "10.0.0.2:3478"],
        [false, true, "10.0.0.1:3479"],
        [true, true, "10.0.0.2:3479"],
      ] as const
    ) {
      const answer = await ask(
        runtime,
        client,
        inbox,
        { hostname: "10.0.0.1", port: 3478 },
        binding((w) => addChangeRequest(w, { changeIp, changePort })),
      );
      assert.ok(answer, `CHANGE-REQUEST ${changeIp} ${changePort}`);
      assert.equal(`${answer[1].hostname}:${answer[1].port}`, from);
      const origin = getResponseOrigin(decodeStunMessage(answer[0]))!;
      assert.equal(`${origin.hostname}:${origin.port}`, from);
    }
    // From the alternate socket, the "other" address is the primary one.
    const fromAlt = await ask(
      runtime,
      client,
      inbox,
      { hostname: "10.0.0.2", port: 3479 },
      binding(),
    );
    assert.deepEqual(getOtherAddress(decodeStunMessage(fromAlt![0]))?.hostname, "10.0.0.1");
    // RESPONSE-PORT: the answer goes to that port of the requester's address.
    await client.send(binding((w) => addResponsePort(w, 5001)), {
      transport: "udp",
      hostname: "10.0.0.1",
      port: 3478,
    });
    assert.ok(await runtime.runUntil(() => otherInbox.items.length > 0, 1000));
    const redirected = decodeStunMessage(otherInbox.items.shift()![0]);
    assert.equal(
      getXorMappedAddress(redirected)?.port,
      5000,
      "the mapped address is the request's source",
    );
  } finally {
    client.close();
    other.close();
    await service.close();
  }
});

Deno.test("stun service sim: without an alternate, CHANGE-REQUEST flags and RESPONSE-PORT get 420", async () => {
  const runtime = new VirtualRuntime();
  const service = StunService.listen({
    runtime: runtime.forHost("10.0.0.1"),
    hostname: "10.0.0.1",
    port: 3478,
  });
  const client = runtime.forHost("10.0.0.9").net.listenDatagram({ hostname: "10.0.0.9", port: 0 });
  const inbox = new Inbox(client);
  try {
    const answer = await ask(
      runtime,
      client,
      inbox,
      { hostname: "10.0.0.1", port: 3478 },
      binding((w) => {
        addChangeRequest(w, { changeIp: false, changePort: true });
        addResponsePort(w, 9);
      }),
    );
    const message = decodeStunMessage(answer![0]);
    assert.equal(getErrorCode(message)?.code, 420);
    assert.deepEqual(getUnknownAttributes(message)?.sort(), [0x0003, 0x0027]);
  } finally {
    client.close();
    await service.close();
  }
});

Deno.test("stun service sim: Binding over TCP on the STUN port, split across reads", async () => {
  const runtime = new VirtualRuntime();
  const service = StunService.listen({
    runtime: runtime.forHost("10.0.0.1"),
    hostname: "10.0.0.1",
    port: 3478,
  });
  try {
    let conn: StreamConn | undefined;
    runtime.forHost("10.0.0.9").net.connect({ hostname: "10.0.0.1", port: 3478 }).then((
      c,
    ) => (conn = c));
    assert.ok(await runtime.runUntil(() => conn !== undefined, 1000));
    const request = binding();
    const received: Uint8Array[] = [];
    (async () => {
      const buffer = new Uint8Array(2048);
      for (;;) {
        const n = await conn!.read(buffer).catch(() => null);
        if (n === null) return;
        received.push(buffer.slice(0, n));
      }
    })();
    await conn!.write(request.subarray(0, 7));
    await runtime.advance(10);
    await conn!.write(request.subarray(7));
    assert.ok(await runtime.runUntil(() => received.length > 0, 1000));
    const answer = decodeStunMessage(received[0]);
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.equal(getXorMappedAddress(answer)?.hostname, "10.0.0.9");
    // Garbage ends the connection; the service goes on.
    await conn!.write(Uint8Array.of(0xff, 0, 0, 0));
    await runtime.advance(10);
    assert.equal(service.stats.tcpAccepted, 1);
    conn!.close();
  } finally {
    await service.close();
  }
});

Deno.test("stun service sim: a taken TCP port leaves UDP serving, and says so", async () => {
  const runtime = new VirtualRuntime();
  const host = runtime.forHost("10.0.0.1");
  const squatter = host.net.listen({ hostname: "10.0.0.1", port: 3478 });
  const events: StunServiceEvent[] = [];
  const service = StunService.listen({
    runtime: host,
    hostname: "10.0.0.1",
    port: 3478,
    onEvent: (e) => events.push(e),
  });
  try {
    assert.equal(service.tcpAddress, undefined);
    assert.equal(service.addresses[0].port, 3478);
    assert.ok(events.some((e) => e.type === "tcp-unavailable"));
  } finally {
    squatter.close();
    await service.close();
  }
});
