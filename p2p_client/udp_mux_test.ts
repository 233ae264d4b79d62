import assert from "node:assert/strict";
import { encodePunch } from "../shared/peer/packet.ts";
import { stunBindingCodec } from "./stun_codec.ts";
import { UdpMux } from "./udp_mux.ts";
import { systemRuntime } from "../shared/runtime/mod.ts";
import type { UdpAddress } from "./path_manager.ts";

Deno.test("UdpMux sorts STUN and peer packets from one socket and drops the rest", async () => {
  const received: { kind: string; from: UdpAddress; type?: string }[] = [];
  const socket = systemRuntime.net.listenDatagram({ hostname: "127.0.0.1", port: 0 });
  const mux = new UdpMux(socket, {
    stun: (_bytes, from) => received.push({ kind: "stun", from }),
    peer: (packet, from) => received.push({ kind: "peer", type: packet.kind, from }),
  });
  mux.start();
  const sender = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: mux.port };
    await sender.send(stunBindingCodec.encodeRequest(new Uint8Array(12), "u", "p"), to);
    await sender.send(encodePunch("aa".repeat(20), "bb".repeat(20)), to);
    await sender.send(new Uint8Array([0x42, 1, 2, 3]), to);
    await sender.send(new Uint8Array(1500).fill(0xe4), to);
    const deadline = Date.now() + 10_000;
    while ((received.length < 2 || mux.dropped < 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const senderPort = (sender.addr as Deno.NetAddr).port;
    assert.deepEqual(received, [
      { kind: "stun", from: { host: "127.0.0.1", port: senderPort } },
      { kind: "peer", type: "punch", from: { host: "127.0.0.1", port: senderPort } },
    ]);
    assert.equal(mux.dropped, 2, "unknown and oversized datagrams are dropped and counted");
    mux.send(new Uint8Array([0xe1]), { host: "127.0.0.1", port: senderPort });
    const [bytes] = await sender.receive();
    assert.deepEqual(bytes, new Uint8Array([0xe1]));
  } finally {
    sender.close();
    await mux.close();
  }
});
