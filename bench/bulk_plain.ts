/**
 * The references of the bulk benchmark, one end per process: a plain Deno UDP sender and
 * receiver (no crypto, no reliability: datagrams of one size as fast as Deno sends them; the
 * receiver counts what arrives, so its rate is the most Deno's receive path takes, and the rest
 * is lost in its socket buffer), and a plain TCP loopback copy (64 KiB writes and reads).
 *
 * Run: `deno run -A --unstable-net bench/bulk_plain.ts udp-recv|tcp-recv PORT SIZE TOTAL` (prints
 * `ready`), then `... udp-send|tcp-send PORT SIZE TOTAL`. The receiver prints one JSON line:
 * `{"bytes", "datagrams", "seconds"}` (seconds from the first byte to the last).
 *
 * @module
 */
import { readCpuSeconds } from "./proc.ts";

async function main(): Promise<void> {
  const [mode, portText, sizeText, totalText] = Deno.args;
  const port = Number(portText);
  const size = Number(sizeText);
  const total = Number(totalText);
  const now = () => performance.now();
  if (mode === "udp-recv") {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
    const buffer = new Uint8Array(65_536);
    let bytes = 0;
    let datagrams = 0;
    let first = 0;
    let last = 0;
    let cpuAtFirst = 0;
    console.log("ready");
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), first === 0 ? 30_000 : 300);
      });
      const got = await Promise.race([socket.receive(buffer), idle]);
      clearTimeout(timer);
      if (got === null) break;
      if (first === 0) {
        first = now();
        cpuAtFirst = await readCpuSeconds(Deno.pid);
      }
      last = now();
      bytes += got[0].length;
      datagrams++;
      if (bytes >= total) break;
    }
    const cpuSeconds = (await readCpuSeconds(Deno.pid)) - cpuAtFirst;
    console.log(JSON.stringify({ bytes, datagrams, seconds: (last - first) / 1000, cpuSeconds }));
    Deno.exit(0);
  } else if (mode === "udp-send") {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
    const datagram = new Uint8Array(size).fill(0x5a);
    const cpuAtStart = await readCpuSeconds(Deno.pid);
    for (let sent = 0; sent < total; sent += size) await socket.send(datagram, to);
    console.log(JSON.stringify({ cpuSeconds: (await readCpuSeconds(Deno.pid)) - cpuAtStart }));
    socket.close();
  } else if (mode === "tcp-recv") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    console.log("ready");
    const conn = await listener.accept();
    const buffer = new Uint8Array(size);
    let bytes = 0;
    let first = 0;
    let cpuAtFirst = 0;
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      if (first === 0) {
        first = now();
        cpuAtFirst = await readCpuSeconds(Deno.pid);
      }
      bytes += n;
    }
    const seconds = (now() - first) / 1000;
    const cpuSeconds = (await readCpuSeconds(Deno.pid)) - cpuAtFirst;
    console.log(JSON.stringify({ bytes, datagrams: 0, seconds, cpuSeconds }));
    Deno.exit(0);
  } else if (mode === "tcp-send") {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const chunk = new Uint8Array(size).fill(0x5a);
    const cpuAtStart = await readCpuSeconds(Deno.pid);
    for (let sent = 0; sent < total; sent += size) {
      let done = 0;
      while (done < chunk.length) done += await conn.write(chunk.subarray(done));
    }
    console.log(JSON.stringify({ cpuSeconds: (await readCpuSeconds(Deno.pid)) - cpuAtStart }));
    conn.close();
  } else {
    console.error("usage: bulk_plain.ts udp-recv|udp-send|tcp-recv|tcp-send PORT SIZE TOTAL");
    Deno.exit(2);
  }
}

if (import.meta.main) await main();
