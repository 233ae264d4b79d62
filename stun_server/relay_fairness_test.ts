/**
 * Issue 11, "48 relay sessions flooding one victim's queue": honest relay latency went from
 * 1.2 ms (p50) to 2,412 ms. Reproduced on virtual time with the victim behind a 10 MiB/s
 * downlink (its server-side socket accepts writes at that rate), 48 flooding senders (as in the issue) at their
 * full relay quota, and one honest sender probing every 50 ms: its latency under the flood must
 * stay within 15 ms of the quiet figure (one 64 KiB write queue at 10 MiB/s is 6 ms), where a
 * single FIFO of 1 MiB would add about 100 ms.
 */
import assert from "node:assert/strict";
import type { Runtime, StreamConn, StreamListener } from "../shared/runtime/mod.ts";
import {
  median,
  relayProbeLatencies,
  ServerWorld,
  startRelayFlood,
  type WorldClient,
} from "../testing/server_world.ts";
import { overriding } from "../testing/overriding.ts";

const FLOODERS = 48;
const LINK_BYTES_PER_MS = 10 * 1024 * 1024 / 1000;

/** The server's runtime, with writes to `slowHost` paced at `bytesPerMs` (a serial link). */
function throttledServerRuntime(base: Runtime, slowHost: string, bytesPerMs: number): Runtime {
  const throttle = (conn: StreamConn): StreamConn => {
    let busyUntil = 0;
    return overriding(conn, {
      write: (bytes: Uint8Array) => {
        const copy = bytes.slice();
        const now = base.now();
        busyUntil = Math.max(busyUntil, now) + copy.length / bytesPerMs;
        return new Promise<number>((resolve, reject) => {
          base.setTimer(() => {
            conn.write(copy).then(() => resolve(copy.length), reject);
          }, busyUntil - now);
        });
      },
    });
  };
  const net = overriding(base.net, {
    listen: (bind): StreamListener => {
      const listener = base.net.listen(bind);
      return {
        addr: listener.addr,
        accept: async () => {
          const conn = await listener.accept();
          return conn.remoteAddr.hostname === slowHost ? throttle(conn) : conn;
        },
        close: () => listener.close(),
      };
    },
  });
  return overriding(base, { net });
}

Deno.test("abuse: 48 senders flooding one receiver leave an honest sender's latency near normal", async () => {
  const world = new ServerWorld(
    {},
    (runtime) => throttledServerRuntime(runtime, "10.0.0.2", LINK_BYTES_PER_MS),
  );
  try {
    const victim = await world.register({ host: "10.0.0.2" });
    const honest = await world.register({ host: "10.0.0.3" });
    const flooders: WorldClient[] = [];
    for (let i = 0; i < FLOODERS; i++) flooders.push(await world.register({ host: "10.0.1.2" }));
    for (const sender of [honest, ...flooders]) {
      sender.conn.send({ type: "connect", peer: victim.me.id });
    }
    await world.until(() => victim.of("introduce").length === FLOODERS + 1, "the introductions");

    const latencies = (count: number) =>
      relayProbeLatencies(world, honest, victim, count, {
        limitMs: 10_000,
        mark: 0xab,
      });

    const quiet = await latencies(10);
    // The flood: every flooder keeps up to 128 KiB of 60 KB frames on its way, all the time.
    const stopFlood = startRelayFlood(world, flooders, victim, new Uint8Array(60_000));
    await world.runtime.runUntil(() => false, 500, 5); // the flood builds up
    const floodStart = world.runtime.now();
    const floodBytesBefore = victim.relayed.filter((r) => r.peer !== honest.me.id).length;
    const flooded = await latencies(20);
    const floodFrames = victim.relayed.filter((r) => r.peer !== honest.me.id).length -
      floodBytesBefore;
    const floodMs = world.runtime.now() - floodStart;
    stopFlood();

    // The flood was real: it kept the victim's link mostly busy.
    const linkShare = floodFrames * 60_000 / (floodMs * LINK_BYTES_PER_MS);
    assert.ok(linkShare > 0.5, `the flood used ${(linkShare * 100).toFixed(0)} % of the link`);
    const q = median(quiet), f = median(flooded);
    assert.ok(
      f <= q + 15,
      `honest p50 ${f.toFixed(1)} ms under the flood vs ${q.toFixed(1)} quiet`,
    );
    assert.ok(Math.max(...flooded) <= q + 40, `honest max ${Math.max(...flooded).toFixed(1)} ms`);
  } finally {
    await world.close();
  }
});
