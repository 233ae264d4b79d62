import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import type { MemoryNetwork } from "../../testing/memory_network.ts";
import type { DatagramSocket, NetAddress } from "../../shared/runtime/runtime.ts";
import {
  addOtherAddress,
  addResponseOrigin,
  addXorMappedAddress,
  decodeStunMessage,
  getChangeRequest,
  StunClass,
  StunMessageWriter,
  StunMethod,
} from "../../shared/stun/mod.ts";
import { probeNat } from "./nat_probe.ts";

const PRIMARY = "198.18.0.1";
const ALTERNATE = "198.18.0.200";
const V6_SERVER = "2001:db8::1";

/** An RFC 5780 STUN server on two addresses and two ports (and a plain IPv6 one). */
function startServer(runtime: VirtualRuntime, rfc5780: boolean) {
  const sockets = new Map<string, DatagramSocket>();
  for (const address of [PRIMARY, ALTERNATE]) {
    for (const port of [3578, 3579]) {
      sockets.set(
        `${address}:${port}`,
        runtime.forHost(address).net.listenDatagram({ hostname: address, port }),
      );
    }
  }
  sockets.set(
    `[${V6_SERVER}]:3578`,
    runtime.forHost(V6_SERVER).net.listenDatagram({ hostname: V6_SERVER, port: 3578 }),
  );
  const serve = async (socket: DatagramSocket) => {
    for (;;) {
      let bytes: Uint8Array;
      let from: NetAddress;
      try {
        [bytes, from] = await socket.receive();
      } catch {
        return;
      }
      const request = decodeStunMessage(bytes);
      const change = getChangeRequest(request);
      const here = socket.addr;
      let answerFrom = socket;
      if (rfc5780 && change && !here.hostname.includes(":")) {
        const address = change.changeIp
          ? (here.hostname === PRIMARY ? ALTERNATE : PRIMARY)
          : here.hostname;
        const port = change.changePort ? (here.port === 3578 ? 3579 : 3578) : here.port;
        answerFrom = sockets.get(`${address}:${port}`)!;
      }
      const writer = new StunMessageWriter();
      writer.start(StunMethod.Binding, StunClass.SuccessResponse, request.transactionId);
      addXorMappedAddress(writer, { hostname: from.hostname, port: from.port });
      addResponseOrigin(writer, { hostname: answerFrom.addr.hostname, port: answerFrom.addr.port });
      if (rfc5780 && !here.hostname.includes(":")) {
        addOtherAddress(writer, {
          hostname: here.hostname === PRIMARY ? ALTERNATE : PRIMARY,
          port: here.port === 3578 ? 3579 : 3578,
        });
      }
      await answerFrom.send(writer.bytes().slice(), from);
    }
  };
  for (const socket of sockets.values()) void serve(socket);
  return () => {
    for (const socket of sockets.values()) socket.close();
  };
}

async function report(
  runtime: VirtualRuntime,
  host: string,
  servers: { hostname: string; port: number }[],
) {
  let result: Awaited<ReturnType<typeof probeNat>> | undefined;
  // A dual-stack host: IPv6 binds get the host's IPv6 address.
  const v4 = runtime.forHost(host);
  const v6 = runtime.forHost("2001:db8::9").net;
  probeNat({
    runtime: {
      ...v4,
      now: () => v4.now(),
      net: {
        ...v4.net,
        listenDatagram: (bind) =>
          bind.hostname === "::" ? v6.listenDatagram(bind) : v4.net.listenDatagram(bind),
      },
    },
    servers,
    localAddresses: [host, "2001:db8::9"],
    portMappingProbe: () => Promise.resolve({ pcp: false, natPmp: true, upnp: false }),
  }).then((r) => result = r);
  assert.ok(await runtime.runUntil(() => result !== undefined, 10_000));
  return result!;
}

Deno.test("probeNat without a NAT: RFC 5780 tests, IPv6 endpoint, latency per server", async () => {
  const runtime = new VirtualRuntime({ seed: 2 });
  (runtime.net as MemoryNetwork).policy = () => ({ delayMs: 15 });
  const stop = startServer(runtime, true);
  const got = await report(runtime, "198.18.0.9", [
    { hostname: PRIMARY, port: 3578 },
    { hostname: V6_SERVER, port: 3578 },
  ]);
  assert.equal(got.udpReachable, true);
  assert.equal(got.behindNat, false);
  assert.equal(got.rfc5780, true);
  assert.equal(got.mapping, "endpoint-independent");
  assert.equal(got.filtering, "endpoint-independent");
  assert.equal(got.portPreserved, true);
  assert.match(got.ipv4!, /^198\.18\.0\.9:\d+$/);
  assert.match(got.ipv6!, /^\[2001:db8::9\]:\d+$/);
  assert.deepEqual(got.latency, [
    { server: `${PRIMARY}:3578`, rttMs: 30 },
    { server: `[${V6_SERVER}]:3578`, rttMs: 30 },
  ]);
  assert.deepEqual(got.portMapping, { pcp: false, natPmp: true, upnp: false });
  stop();
});

Deno.test("probeNat: filtering from CHANGE-REQUEST answers the network drops; no RFC 5780; no answer", async () => {
  // Drop what comes from the alternate address: address-dependent filtering.
  const runtime = new VirtualRuntime({ seed: 3 });
  const host = "198.18.0.9";
  (runtime.net as MemoryNetwork).policy = (t) =>
    t.to.hostname === host && t.from.hostname === ALTERNATE ? { drop: true } : { delayMs: 5 };
  const stop = startServer(runtime, true);
  const restricted = await report(runtime, host, [{ hostname: PRIMARY, port: 3578 }]);
  assert.equal(restricted.filtering, "address-dependent");
  stop();

  // A plain STUN server (no OTHER-ADDRESS): mapping from two servers only, filtering unknown.
  const plain = new VirtualRuntime({ seed: 4 });
  const stopPlain = startServer(plain, false);
  const partial = await report(plain, host, [
    { hostname: PRIMARY, port: 3578 },
    { hostname: ALTERNATE, port: 3578 },
  ]);
  assert.equal(partial.rfc5780, false);
  assert.equal(partial.mapping, "endpoint-independent");
  assert.equal(partial.filtering, "unknown");
  stopPlain();

  // Nothing answers: UDP blocked, within the retransmission budget (250+500+1000+2000 ms).
  const silent = new VirtualRuntime({ seed: 5 });
  const start = silent.now();
  const blocked = await report(silent, host, [{ hostname: PRIMARY, port: 3578 }]);
  assert.equal(blocked.udpReachable, false);
  assert.equal(blocked.ipv4, undefined);
  assert.deepEqual(blocked.latency, [{ server: `${PRIMARY}:3578`, rttMs: undefined }]);
  assert.ok(silent.now() - start <= 4000, `${silent.now() - start} ms`);
});
