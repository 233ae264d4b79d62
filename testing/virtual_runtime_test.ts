import assert from "node:assert/strict";
import { VirtualRuntime } from "./virtual_runtime.ts";
import type { MemoryNetwork } from "./memory_network.ts";
import { sleep, TimeoutError, withTimeout } from "../shared/runtime/timing.ts";

Deno.test("virtual timers fire in deadline order, ties in order set, only when advanced", async () => {
  const runtime = new VirtualRuntime();
  const fired: string[] = [];
  runtime.setTimer(() => fired.push("b"), 20);
  runtime.setTimer(() => fired.push("a"), 10);
  runtime.setTimer(() => fired.push("c"), 20);
  const cancelled = runtime.setTimer(() => fired.push("x"), 15);
  runtime.clearTimer(cancelled);
  await runtime.advance(9);
  assert.deepEqual(fired, []);
  await runtime.advance(11);
  assert.deepEqual(fired, ["a", "b", "c"]);
  assert.deepEqual(runtime.now(), 20);
});

Deno.test("a 35 s sleep on virtual time resumes an awaiting chain", async () => {
  const runtime = new VirtualRuntime();
  let done = false;
  (async () => {
    await sleep(runtime, 35_000);
    await Promise.resolve();
    done = true;
  })();
  assert.deepEqual(await runtime.runUntil(() => done, 40_000, 1000), true);
  assert.deepEqual(runtime.now(), 35_000);
});

Deno.test("withTimeout rejects on virtual time", async () => {
  const runtime = new VirtualRuntime();
  const never = new Promise<number>(() => {});
  const result = assert.rejects(withTimeout(runtime, never, 500, "answer"), TimeoutError);
  await runtime.advance(500);
  await result;
});

Deno.test("same seed, same randomness", () => {
  assert.deepEqual(
    new VirtualRuntime({ seed: 3 }).randomBytes(8),
    new VirtualRuntime({ seed: 3 }).randomBytes(8),
  );
});

Deno.test("memory network: UDP between hosts with a drop policy, TCP in order with FIN", async () => {
  const runtime = new VirtualRuntime();
  const network = runtime.net as MemoryNetwork;
  const a = runtime.forHost("10.0.0.1").net.listenDatagram({ hostname: "0.0.0.0", port: 5000 });
  const b = runtime.forHost("10.0.0.2").net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
  network.policy = (t) => t.length === 2 ? { drop: true } : { delayMs: 30 };
  await b.send(new Uint8Array([1, 2]), a.addr);
  await b.send(new Uint8Array([3]), a.addr);
  const received = a.receive();
  await runtime.advance(30);
  const [bytes, from] = await received;
  assert.deepEqual([...bytes], [3]);
  assert.deepEqual(from, b.addr);

  const listener = runtime.forHost("10.0.0.1").net.listen({ hostname: "0.0.0.0", port: 3478 });
  const accepted = listener.accept();
  const dialing = runtime.forHost("10.0.0.2").net.connect({ hostname: "10.0.0.1", port: 3478 });
  await runtime.advance(100);
  const client = await dialing;
  const server = await accepted;
  await client.write(new TextEncoder().encode("hello "));
  await client.write(new TextEncoder().encode("world"));
  await client.closeWrite();
  await runtime.advance(100);
  const buffer = new Uint8Array(64);
  let text = "";
  for (;;) {
    const n = await server.read(buffer);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assert.deepEqual(text, "hello world");
  a.close();
  await assert.rejects(a.receive(), Deno.errors.BadResource);
});
