import assert from "node:assert/strict";
import { enlargeUdpBuffers } from "./socket_buffer.ts";

/** Linux's default receive buffer (`net.core.rmem_default`), as the kernel reports it. */
const LINUX_DEFAULT = 212_992;

Deno.test({
  name: "enlargeUdpBuffers finds Deno's socket by its port and grows its receive buffer",
  ignore: Deno.build.os !== "linux",
  fn() {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const size = enlargeUdpBuffers((socket.addr as Deno.NetAddr).port, 4 << 20);
      assert.ok(size !== undefined, "the socket was not found or FFI is not granted");
      // Unprivileged: capped at rmem_max, reported doubled; as root: 4 MiB, reported doubled.
      assert.ok(size > LINUX_DEFAULT, `receive buffer still ${size}`);
    } finally {
      socket.close();
    }
  },
});

Deno.test({
  name: "enlargeUdpBuffers answers undefined for a port no socket of ours is bound to",
  ignore: Deno.build.os !== "linux",
  fn() {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const port = (socket.addr as Deno.NetAddr).port;
    socket.close();
    assert.equal(enlargeUdpBuffers(port, 4 << 20), undefined);
  },
});
