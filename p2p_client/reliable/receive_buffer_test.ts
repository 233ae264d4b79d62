import assert from "node:assert/strict";
import { type DataFrame, FrameType, MAX_ACK_RANGES } from "../../shared/peer/frames.ts";
import { ChannelProtocolError } from "./errors.ts";
import { ReceiveBuffer } from "./receive_buffer.ts";

function single(seq: number, value: number, streamId = 1): DataFrame {
  return {
    type: FrameType.Data,
    streamId,
    seq,
    first: true,
    last: true,
    messageLength: 1,
    payload: new Uint8Array([value]),
  };
}

Deno.test("receive buffer: reorders, merges ranges and reports them in the ACK", () => {
  const buffer = new ReceiveBuffer({ windowFragments: 16, maxMessageBytes: 100 });
  const out: Uint8Array[] = [];
  assert.equal(buffer.ackFrame(), undefined);
  for (const seq of [2, 4, 3, 7, 9, 8]) {
    assert.equal(buffer.accept(single(seq, seq), out), "out-of-order");
  }
  assert.deepEqual(out, []);
  assert.deepEqual(buffer.ackFrame()?.ranges, [{ start: 2, end: 5 }, { start: 7, end: 10 }]);
  assert.equal(buffer.accept(single(3, 3), out), "duplicate");
  assert.equal(buffer.accept(single(16, 16), out), "beyond-window");
  assert.equal(buffer.accept(single(0, 0), out), "in-order");
  assert.equal(buffer.accept(single(1, 1), out), "out-of-order"); // released 2..4
  assert.deepEqual(out.map((m) => m[0]), [0, 1, 2, 3, 4]);
  assert.deepEqual(buffer.ackFrame(), {
    type: FrameType.Ack,
    streamId: 1,
    cumulative: 5,
    window: 16,
    ranges: [{ start: 7, end: 10 }],
  });
  assert.equal(buffer.bufferedFragments, 3);
  assert.equal(buffer.accept(single(0, 0), out), "duplicate");
});

Deno.test("receive buffer: reassembles fragments and refuses broken sequences", () => {
  const buffer = new ReceiveBuffer({ windowFragments: 8, maxMessageBytes: 5 });
  const out: Uint8Array[] = [];
  const frag = (seq: number, first: boolean, last: boolean, bytes: number[], length?: number) =>
    ({
      type: FrameType.Data,
      streamId: 1,
      seq,
      first,
      last,
      messageLength: length,
      payload: new Uint8Array(bytes),
    }) as DataFrame;
  buffer.accept(frag(1, false, false, [3, 4]), out);
  buffer.accept(frag(2, false, true, [5]), out);
  assert.equal(out.length, 0);
  buffer.accept(frag(0, true, false, [1, 2], 5), out);
  assert.deepEqual(out, [new Uint8Array([1, 2, 3, 4, 5])]);
  assert.throws(() => buffer.accept(frag(3, false, true, [1]), out), ChannelProtocolError);
  const other = new ReceiveBuffer({ windowFragments: 8, maxMessageBytes: 5 });
  assert.throws(() => other.accept(frag(0, true, false, [1], 6), out), ChannelProtocolError);
  other.accept(frag(0, true, false, [1], 2), out);
  assert.throws(() => other.accept(frag(1, false, true, [1, 2]), out), ChannelProtocolError);
});

Deno.test("receive buffer: follows a new stream, ignores retired ones, caps ACK ranges", () => {
  const buffer = new ReceiveBuffer({ windowFragments: 1000, maxMessageBytes: 10 });
  const out: Uint8Array[] = [];
  buffer.accept(single(0, 1, 10), out);
  buffer.accept(single(0, 2, 20), out);
  assert.equal(buffer.streamId, 20);
  assert.equal(buffer.accept(single(1, 3, 10), out), "stale-stream");
  assert.deepEqual(out.map((m) => m[0]), [1, 2]);
  for (let seq = 2; seq < 300; seq += 2) buffer.accept(single(seq, 0, 20), out);
  const ack = buffer.ackFrame();
  assert.equal(ack?.ranges.length, MAX_ACK_RANGES);
  assert.deepEqual(ack?.ranges[0], { start: 2, end: 3 });
});
