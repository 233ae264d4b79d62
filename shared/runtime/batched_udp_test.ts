import assert from "node:assert/strict";
import { batchedDatagramRuntime, batchedUdpAvailable, systemRuntime } from "./mod.ts";

Deno.test({
  name: "batched udp: datagrams both ways, many at once, IPv4 and IPv6 (with mapped IPv4)",
  ignore: !batchedUdpAvailable(),
  fn: async () => {
    const runtime = batchedDatagramRuntime(systemRuntime);
    for (
      const [bindHost, peerHost] of [["127.0.0.1", "127.0.0.1"], ["::", "127.0.0.1"], [
        "::1",
        "::1",
      ]]
    ) {
      const socket = runtime.net.listenDatagram({ hostname: bindHost, port: 0 });
      const peer = Deno.listenDatagram({ transport: "udp", hostname: peerHost, port: 0 });
      try {
        assert.ok(socket.addr.port > 0);
        const target = {
          transport: "udp" as const,
          hostname: bindHost === "::" ? peerHost : bindHost,
          port: socket.addr.port,
        };
        // 200 datagrams arrive in batches; every one is seen once, in order.
        for (let i = 0; i < 200; i++) await peer.send(Uint8Array.of(i >> 8, i & 0xff, 7), target);
        const seen: number[] = [];
        const buffer = new Uint8Array(64);
        while (seen.length < 200) {
          const [data, from] = await socket.receive(buffer);
          assert.equal(data.length, 3);
          assert.equal(from.port, (peer.addr as Deno.NetAddr).port);
          seen.push((data[0] << 8) | data[1]);
        }
        assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i));
        // Sends are queued and flushed together.
        const to = { ...(peer.addr as Deno.NetAddr), transport: "udp" as const };
        for (let i = 0; i < 100; i++) socket.send(Uint8Array.of(i), to);
        const large = new Uint8Array(5000).fill(9);
        await socket.send(large, to);
        const got: number[] = [];
        let largeSeen = false;
        while (got.length < 100 || !largeSeen) {
          const [data] = await peer.receive();
          if (data.length === 5000) largeSeen = true;
          else got.push(data[0]);
        }
        assert.equal(got.length, 100);
      } finally {
        socket.close();
        peer.close();
      }
    }
  },
});

Deno.test({
  name: "batched udp: close rejects a pending receive; a taken port is refused",
  ignore: !batchedUdpAvailable(),
  fn: async () => {
    const runtime = batchedDatagramRuntime(systemRuntime);
    const socket = runtime.net.listenDatagram({ hostname: "127.0.0.1", port: 0 });
    assert.throws(() =>
      runtime.net.listenDatagram({ hostname: "127.0.0.1", port: socket.addr.port })
    );
    const pending = socket.receive();
    socket.close();
    await assert.rejects(pending);
    await assert.rejects(socket.receive());
  },
});
