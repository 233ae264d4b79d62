import assert from "node:assert/strict";
import { encodeRelayFrame, FRAME_KIND_RELAY } from "../shared/signaling/mod.ts";
import { type ByteReader, readFrames } from "./frame_reader.ts";

/** Serves `stream` in reads of the given sizes (cycled), recording the buffer sizes offered. */
function scriptedReader(stream: Uint8Array, sizes: number[]): ByteReader & { offered: number[] } {
  let offset = 0;
  let i = 0;
  const offered: number[] = [];
  return {
    offered,
    read(buffer: Uint8Array): Promise<number | null> {
      offered.push(buffer.length);
      if (offset >= stream.length) return Promise.resolve(null);
      const n = Math.min(sizes[i++ % sizes.length], buffer.length, stream.length - offset);
      buffer.set(stream.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function collectingSink() {
  const payloads: number[] = [];
  const events: string[] = [];
  return {
    payloads,
    events,
    onData() {},
    onFrame(kind: number, body: Uint8Array) {
      assert.equal(kind, FRAME_KIND_RELAY);
      payloads.push(body.length - 20);
    },
    onEmptyFrame() {
      events.push("empty");
    },
    onFrameTooLarge(length: number) {
      events.push(`too-large:${length}`);
    },
    ends: [] as string[],
    onEnd(end: string, error?: unknown) {
      this.ends.push(error === undefined ? end : `${end}:${error}`);
    },
    stopAfter: Infinity,
    isStopped() {
      return payloads.length >= this.stopAfter;
    },
  };
}

const PEER = "cd".repeat(20);

Deno.test("frame reader: split reads and many frames per read, large frames grow the buffer", async () => {
  const sizes = [1, 3, 100, 5000, 17, 70000];
  const frames = sizes.map((n) => encodeRelayFrame(PEER, new Uint8Array(Math.min(n, 65_000))));
  for (const readSizes of [[1], [7, 2, 900], [65536], [100_000]]) {
    const sink = collectingSink();
    const reader = scriptedReader(concat(frames), readSizes);
    assert.equal(await readFrames(reader, sink), "eof");
    assert.deepEqual(sink.payloads, sizes.map((n) => Math.min(n, 65_000)));
  }
});

Deno.test("frame reader: buffer starts small, grows under bulk and shrinks when reads turn small", async () => {
  const bulk = Array.from({ length: 8 }, () => encodeRelayFrame(PEER, new Uint8Array(60_000)));
  const trickle = Array.from({ length: 4 }, () => encodeRelayFrame(PEER, new Uint8Array(10)));
  const reads = [1024, 60_025 - 1024, ...Array(7).fill(60_025), 35, 35, 35, 35];
  const reader = scriptedReader(concat([...bulk, ...trickle]), reads);
  const sink = collectingSink();
  await readFrames(reader, sink, { smallBytes: 1024, largeBytes: 131_072 });
  assert.equal(reader.offered[0], 1024);
  assert.ok(reader.offered.some((n) => n >= 65_536), "grew");
  assert.equal(reader.offered.at(-1), 1024, `shrank back after small reads: ${reader.offered}`);
  assert.equal(sink.payloads.length, 12);
});

Deno.test("frame reader: empty frames are reported and skipped, oversized lengths stop reading", async () => {
  const sink = collectingSink();
  const stream = concat([
    new Uint8Array(4),
    encodeRelayFrame(PEER, new Uint8Array(2)),
    new Uint8Array([0, 1, 0, 1, 2, 3]),
    encodeRelayFrame(PEER, new Uint8Array(2)),
  ]);
  assert.equal(await readFrames(scriptedReader(stream, [9]), sink), "too-large");
  assert.deepEqual(sink.ends, ["too-large"]);
  assert.deepEqual(sink.events, ["empty", "too-large:65537"]);
  assert.deepEqual(sink.payloads, [2]);
});

Deno.test("frame reader: stops when asked, between frames", async () => {
  const sink = collectingSink();
  sink.stopAfter = 1;
  const stream = concat([
    encodeRelayFrame(PEER, new Uint8Array(1)),
    encodeRelayFrame(PEER, new Uint8Array(1)),
  ]);
  assert.equal(
    await readFrames(scriptedReader(stream, [1000]), sink),
    "stopped",
  );
  assert.deepEqual(sink.payloads, [1]);
});

Deno.test("frame reader: a read error ends reading once, reported to the sink", async () => {
  const sink = collectingSink();
  let calls = 0;
  const reader = {
    read(buffer: Uint8Array): Promise<number | null> {
      if (calls++ === 0) {
        buffer.set(encodeRelayFrame(PEER, new Uint8Array(3)));
        return Promise.resolve(28);
      }
      return Promise.reject(new Error("reset"));
    },
  };
  assert.equal(await readFrames(reader, sink), "error");
  assert.deepEqual(sink.payloads, [3]);
  assert.deepEqual(sink.ends, ["error:Error: reset"]);
});
