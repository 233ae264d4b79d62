/**
 * Issue 11, fair relay: a client that has not taken its events yet stops reading once about
 * 256 KiB of relay payload wait, so a flood waits in TCP and in the server's fair queue (where an
 * honest frame can pass it), not in megabytes of this process's memory.
 */
import assert from "node:assert/strict";
import { encodeRelayFrame } from "./frame.ts";
import { SignalingConnection } from "./connection.ts";
import type { StreamConn } from "../runtime/mod.ts";

Deno.test("signaling connection: reading pauses at 256 KiB of unread relay payload, resumes as it is taken", async () => {
  const frame = encodeRelayFrame("ab".repeat(20), new Uint8Array(60_000));
  const total = 200; // 12 MB offered
  let offered = 0;
  let read = 0;
  let pending: Uint8Array = new Uint8Array(0);
  const address = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };
  const conn: StreamConn = {
    localAddr: address,
    remoteAddr: address,
    read(buffer) {
      if (pending.length === 0) {
        if (offered === total) return new Promise(() => {}); // nothing more, never closes
        pending = frame;
        offered++;
      }
      const n = Math.min(buffer.length, pending.length);
      buffer.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      read += n;
      return Promise.resolve(n);
    },
    write: (bytes) => Promise.resolve(bytes.length),
    closeWrite: () => Promise.resolve(),
    close() {},
  };
  const signaling = new SignalingConnection(conn, 1 << 16);
  try {
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(read <= 256 * 1024 + 2 * 64 * 1024, `read ${read} bytes before any was taken`);
    assert.ok(read >= 128 * 1024, `read ${read}: reading did start`);
    // Taking the events lets reading go on, to the end.
    let relayed = 0;
    while (relayed < total) {
      const event = await signaling.next(5000);
      assert.equal(event?.kind, "relay");
      relayed++;
    }
    assert.equal(read, total * frame.length);
  } finally {
    signaling.close();
  }
});

Deno.test("signaling connection: a reserved relay frame goes out as sendRelay's would; a cancelled one not at all", async () => {
  const written: number[] = [];
  const address = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };
  const conn: StreamConn = {
    localAddr: address,
    remoteAddr: address,
    read: () => new Promise(() => {}),
    write: (bytes) => {
      written.push(...bytes);
      return Promise.resolve(bytes.length);
    },
    closeWrite: () => Promise.resolve(),
    close() {},
  };
  const signaling = new SignalingConnection(conn);
  try {
    const peer = "ab".repeat(20);
    signaling.reserveRelay(peer, 3).set([1, 2, 3]);
    const cancelled = signaling.reserveRelay("cd".repeat(20), 5);
    assert.equal(signaling.cancelRelay(cancelled), true);
    signaling.sendRelay(peer, new Uint8Array([4]));
    signaling.reserveRelay("cd".repeat(20), 1)[0] = 5;
    await signaling.flush();
    assert.deepEqual(written, [
      ...encodeRelayFrame(peer, new Uint8Array([1, 2, 3])),
      ...encodeRelayFrame(peer, new Uint8Array([4])),
      ...encodeRelayFrame("cd".repeat(20), new Uint8Array([5])),
    ]);
    assert.throws(() => signaling.reserveRelay(peer, 0), RangeError);
    assert.throws(() => signaling.reserveRelay(peer, 65_536), RangeError);
    assert.throws(() => signaling.reserveRelay("xyz", 1), TypeError);
  } finally {
    signaling.close();
  }
});
