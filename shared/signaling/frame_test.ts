import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeControlBody,
  decodeRelayBody,
  encodeControlFrame,
  encodeRelayFrame,
  FrameDecoder,
  peerIdToBytes,
} from "./frame.ts";
import { FRAME_KIND_CONTROL, FRAME_KIND_RELAY, MAX_CONTROL_BYTES } from "./constants.ts";
import { FrameError } from "./errors.ts";

const PEER = "ab".repeat(20);

Deno.test("frame: control frame round trip", () => {
  const frames = new FrameDecoder().push(encodeControlFrame({ type: "ping", t: 7 }));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].kind, FRAME_KIND_CONTROL);
  assert.deepEqual(decodeControlBody(frames[0].body), { type: "ping", t: 7 });
});

Deno.test("frame: relay frame round trip keeps peer and payload", () => {
  const payload = new Uint8Array([9, 8, 7]);
  const [frame] = new FrameDecoder().push(encodeRelayFrame(PEER, payload));
  assert.equal(frame.kind, FRAME_KIND_RELAY);
  const body = decodeRelayBody(frame.body);
  assert.equal(body.peer, PEER);
  assert.deepEqual(body.payload, payload);
});

Deno.test("frame: frames split at every byte and many frames per read decode in order", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
      (payloads, cuts) => {
        const frames = payloads.map((p) => encodeRelayFrame(PEER, p));
        const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
        let at = 0;
        for (const f of frames) {
          stream.set(f, at);
          at += f.length;
        }
        const decoder = new FrameDecoder();
        const got: Uint8Array[] = [];
        let offset = 0;
        let i = 0;
        while (offset < stream.length) {
          const size = cuts[i++ % cuts.length];
          for (const frame of decoder.push(stream.subarray(offset, offset + size))) {
            got.push(decodeRelayBody(frame.body).payload);
          }
          offset += size;
        }
        assert.deepEqual(got, payloads);
        assert.equal(decoder.pendingBytes, 0);
      },
    ),
    { seed: 42, numRuns: 300 },
  );
});

Deno.test("frame: 64 KiB relay frames across reads of any size decode intact with a retained buffer", () => {
  // The client's decoder (issue 14) keeps a buffer for a partial 64 KiB frame between reads and
  // decodes whole frames straight from the read chunk.
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 65_536 - 21 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 0, max: 128 * 1024 }),
      (sizes, cuts, retainBytes) => {
        const payloads = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
        const stream = new Uint8Array(sizes.reduce((n, size) => n + 25 + size, 0));
        let at = 0;
        for (const p of payloads) {
          const frame = encodeRelayFrame(PEER, p);
          stream.set(frame, at);
          at += frame.length;
        }
        const decoder = new FrameDecoder({ retainBytes });
        const got: Uint8Array[] = [];
        // One reused read buffer, as the client's read loop has: bodies must be copies.
        const read = new Uint8Array(200_000);
        let offset = 0;
        let i = 0;
        while (offset < stream.length) {
          const size = Math.min(cuts[i++ % cuts.length], stream.length - offset);
          read.set(stream.subarray(offset, offset + size));
          for (const frame of decoder.push(read.subarray(0, size))) {
            got.push(decodeRelayBody(frame.body).payload);
          }
          read.fill(0xee, 0, size);
          offset += size;
        }
        assert.deepEqual(got, payloads);
        assert.equal(decoder.pendingBytes, 0);
      },
    ),
    { seed: 7, numRuns: 60 },
  );
});

Deno.test("frame: a length split across reads is still checked before the body arrives", () => {
  const decoder = new FrameDecoder({ maxFrameLength: 100, retainBytes: 1 << 20 });
  assert.equal(decoder.push(new Uint8Array([0, 0])).length, 0);
  assert.throws(
    () => decoder.push(new Uint8Array([0, 101])),
    (e) => e instanceof FrameError && e.code === "frame-too-large",
  );
  // After a whole frame, a zero length split across reads.
  const zero = new FrameDecoder();
  const ping = encodeControlFrame({ type: "ping", t: 1 });
  assert.equal(zero.push(new Uint8Array([...ping, 0, 0])).length, 1);
  assert.throws(
    () => zero.push(new Uint8Array([0, 0, 1])),
    (e) => e instanceof FrameError && e.code === "bad-frame",
  );
});

Deno.test("frame: length above the maximum throws frame-too-large before the body arrives", () => {
  const decoder = new FrameDecoder({ maxFrameLength: 100 });
  assert.throws(
    () => decoder.push(new Uint8Array([0, 0, 0, 101])),
    (e) => e instanceof FrameError && e.code === "frame-too-large",
  );
  assert.throws(
    () => new FrameDecoder().push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1])),
    (e) => e instanceof FrameError && e.code === "frame-too-large",
  );
});

Deno.test("frame: a frame of exactly the maximum length is accepted", () => {
  const decoder = new FrameDecoder({ maxFrameLength: 100 });
  const frame = new Uint8Array(104);
  frame[3] = 100;
  frame[4] = FRAME_KIND_RELAY;
  assert.equal(decoder.push(frame).length, 1);
});

Deno.test("frame: zero length is a bad frame", () => {
  assert.throws(
    () => new FrameDecoder().push(new Uint8Array([0, 0, 0, 0])),
    (e) => e instanceof FrameError && e.code === "bad-frame",
  );
});

Deno.test("frame: control bodies that are not UTF-8 JSON objects with a type are bad frames", () => {
  const bad = [
    new Uint8Array([0xff, 0xfe]),
    new TextEncoder().encode("{not json"),
    new TextEncoder().encode("[1,2]"),
    new TextEncoder().encode('{"type":5}'),
    new TextEncoder().encode("null"),
  ];
  for (const body of bad) {
    assert.throws(() => decodeControlBody(body), (e) => e instanceof FrameError);
  }
});

Deno.test("frame: encoders refuse out-of-range input", () => {
  assert.throws(() => encodeControlFrame({ type: "x".repeat(MAX_CONTROL_BYTES) }), RangeError);
  assert.throws(() => encodeRelayFrame(PEER, new Uint8Array(0)), RangeError);
  assert.throws(() => encodeRelayFrame(PEER, new Uint8Array(70_000)), RangeError);
  assert.throws(() => encodeRelayFrame("zz", new Uint8Array(1)), TypeError);
  assert.throws(() => decodeRelayBody(new Uint8Array(20)), FrameError);
  assert.deepEqual(peerIdToBytes(PEER), new Uint8Array(20).fill(0xab));
});
