import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameError } from "./errors.ts";
import {
  type AckFrame,
  type DataFrame,
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameType,
  MAX_ACK_RANGES,
  MAX_DATA_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  MAX_LARGE_DATA_PAYLOAD_BYTES,
  MAX_LARGE_FRAME_BYTES,
  MAX_PARAMETERS,
  MAX_SEQUENCE,
  ParameterKey,
  PMTU_PROBE_MIN_BYTES,
} from "./frames.ts";
import { MAX_PEER_PACKET_BYTES } from "./packet.ts";

Deno.test("frames: exact DATA bytes", () => {
  const bytes = encodeFrame({
    type: FrameType.Data,
    streamId: 0x01020304,
    seq: 0x0a0b0c0d0e0f,
    first: true,
    last: false,
    messageLength: 5000,
    payload: new Uint8Array([9, 8, 7]),
  });
  assert.equal(
    bytes.toHex(),
    "01" + "01" + "01020304" + "0a0b0c0d0e0f" + "00001388" + "090807",
  );
  const middle = encodeFrame({
    type: FrameType.Data,
    streamId: 1,
    seq: 2,
    first: false,
    last: true,
    payload: new Uint8Array([0xff]),
  });
  assert.equal(middle.toHex(), "01" + "02" + "00000001" + "000000000002" + "ff");
});

Deno.test("frames: exact ACK, probe, response and close bytes", () => {
  const ack = encodeFrame({
    type: FrameType.Ack,
    streamId: 7,
    cumulative: 100,
    window: 512,
    ranges: [{ start: 102, end: 105 }, { start: 110, end: 111 }],
  });
  assert.equal(
    ack.toHex(),
    "02" + "00000007" + "000000000064" + "00000200" + "02" + "00000002" + "00000003" +
      "0000000a" + "00000001",
  );
  const nonce = Uint8Array.fromHex("0102030405060708");
  assert.equal(encodeFrame({ type: FrameType.PathProbe, nonce }).toHex(), "030102030405060708");
  assert.equal(encodeFrame({ type: FrameType.PathResponse, nonce }).toHex(), "040102030405060708");
  assert.equal(encodeFrame({ type: FrameType.Close, reason: "bye" }).toHex(), "05627965");
});

Deno.test("frames: PMTU probe and ack", () => {
  const nonce = Uint8Array.fromHex("0102030405060708");
  const probe = encodeFrame({ type: FrameType.PmtuProbe, nonce, size: 1400 });
  assert.equal(probe.length, 1400);
  assert.deepEqual(decodeFrame(probe), { type: FrameType.PmtuProbe, nonce, size: 1400 });
  const bad = probe.slice();
  bad[1399] = 1;
  assert.throws(() => decodeFrame(bad), FrameError);
  assert.throws(() => encodeFrame({ type: FrameType.PmtuProbe, nonce, size: 8 }), FrameError);
  assert.throws(
    () => encodeFrame({ type: FrameType.PmtuProbe, nonce, size: MAX_LARGE_FRAME_BYTES + 1 }),
    FrameError,
  );
  assert.equal(
    encodeFrame({ type: FrameType.PmtuAck, nonce, size: 1400 }).toHex(),
    "08" + "0102030405060708" + "00000578",
  );
  assert.throws(() => decodeFrame(Uint8Array.fromHex("080102030405060708000005")), FrameError);
});

Deno.test("frames: limits", () => {
  const full: DataFrame = {
    type: FrameType.Data,
    streamId: 1,
    seq: MAX_SEQUENCE,
    first: true,
    last: false,
    messageLength: 1 << 20,
    payload: new Uint8Array(MAX_DATA_PAYLOAD_BYTES),
  };
  assert.equal(encodeFrame(full).length, MAX_FRAME_BYTES);
  assert.equal(MAX_FRAME_BYTES + 13 + 16, MAX_PEER_PACKET_BYTES);
  // Larger DATA frames are for paths probed larger (TRANSPORT_LARGE); the codec's bound is that.
  const large = { ...full, messageLength: 1 << 20 };
  assert.equal(
    encodeFrame({ ...large, payload: new Uint8Array(MAX_LARGE_DATA_PAYLOAD_BYTES) }).length,
    MAX_LARGE_FRAME_BYTES,
  );
  assert.throws(
    () => encodeFrame({ ...large, payload: new Uint8Array(MAX_LARGE_DATA_PAYLOAD_BYTES + 1) }),
    FrameError,
  );
  assert.throws(() => encodeFrame({ ...full, seq: MAX_SEQUENCE + 1 }), FrameError);
  assert.throws(() => encodeFrame({ ...full, messageLength: undefined }), FrameError);
  assert.throws(() => encodeFrame({ ...full, first: false }), FrameError);
  assert.throws(() => encodeFrame({ ...full, last: true }), FrameError);
  const manyRanges: AckFrame = {
    type: FrameType.Ack,
    streamId: 1,
    cumulative: 0,
    window: 1,
    ranges: Array.from(
      { length: MAX_ACK_RANGES },
      (_, i) => ({ start: 2 * i + 1, end: 2 * i + 2 }),
    ),
  };
  assert.ok(encodeFrame(manyRanges).length <= MAX_FRAME_BYTES);
  assert.throws(
    () => encodeFrame({ ...manyRanges, ranges: [...manyRanges.ranges, { start: 999, end: 1000 }] }),
    FrameError,
  );
  assert.throws(
    () => encodeFrame({ ...manyRanges, ranges: [{ start: 0, end: 1 }] }),
    FrameError,
  );
  assert.throws(
    () => encodeFrame({ ...manyRanges, ranges: [{ start: 5, end: 6 }, { start: 6, end: 7 }] }),
    FrameError,
  );
  assert.throws(() => encodeFrame({ type: FrameType.Close, reason: "x".repeat(257) }), FrameError);
  assert.throws(
    () => encodeFrame({ type: FrameType.PathProbe, nonce: new Uint8Array(7) }),
    FrameError,
  );
  // An empty message is one FIRST|LAST fragment with no payload.
  const empty = encodeFrame({
    type: FrameType.Data,
    streamId: 0,
    seq: 0,
    first: true,
    last: true,
    messageLength: 0,
    payload: new Uint8Array(0),
  });
  assert.equal((decodeFrame(empty) as DataFrame).payload.length, 0);
});

Deno.test("frames: decoding rejects malformed input with FrameError", () => {
  for (
    const hex of [
      "",
      "00",
      "ff",
      "01",
      "0104" + "00000001" + "000000000000" + "aa", // unknown flag
      "0100" + "00000001" + "000000000000", // empty middle fragment
      "0101" + "00000001" + "000000000000" + "00000002" + "aabbcc", // payload > length
      "0103" + "00000001" + "000000000000" + "00000002" + "aa", // FIRST|LAST, wrong length
      "02" + "00000001" + "000000000000" + "00000001" + "01", // range missing
      "02" + "00000001" + "000000000000" + "00000001" + "01" + "00000000" + "00000001", // at cumulative
      "02" + "00000001" + "000000000000" + "00000001" + "01" + "00000001" + "00000000", // empty
      "0301",
      "05ff",
    ]
  ) {
    assert.throws(() => decodeFrame(Uint8Array.fromHex(hex)), FrameError, hex);
  }
  assert.throws(() => decodeFrame(new Uint8Array(MAX_LARGE_FRAME_BYTES + 1).fill(1)), FrameError);
});

const frameArbitrary: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    streamId: fc.nat({ max: 0xffff_ffff }),
    seq: fc.nat({ max: MAX_SEQUENCE }),
    last: fc.boolean(),
    payload: fc.uint8Array({ minLength: 1, maxLength: MAX_DATA_PAYLOAD_BYTES }),
    first: fc.boolean(),
    extra: fc.nat({ max: 1 << 20 }),
  }).map(({ streamId, seq, last, payload, first, extra }): Frame =>
    first
      ? {
        type: FrameType.Data,
        streamId,
        seq,
        first,
        last,
        messageLength: last ? payload.length : payload.length + extra,
        payload,
      }
      : { type: FrameType.Data, streamId, seq, first, last, payload }
  ),
  fc.record({
    streamId: fc.nat({ max: 0xffff_ffff }),
    cumulative: fc.nat({ max: MAX_SEQUENCE - 2 ** 40 }),
    window: fc.nat({ max: 0xffff_ffff }),
    steps: fc.array(
      fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 })),
      {
        maxLength: MAX_ACK_RANGES,
      },
    ),
  }).map(({ streamId, cumulative, window, steps }): Frame => {
    const ranges = [];
    let floor = cumulative;
    for (const [gap, length] of steps) {
      ranges.push({ start: floor + gap, end: floor + gap + length });
      floor += gap + length;
    }
    return { type: FrameType.Ack, streamId, cumulative, window, ranges };
  }),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((nonce): Frame => ({
    type: FrameType.PathProbe,
    nonce,
  })),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((nonce): Frame => ({
    type: FrameType.PathResponse,
    nonce,
  })),
  fc.string({ maxLength: 60 }).map((reason): Frame => ({ type: FrameType.Close, reason })),
  fc.tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.nat({ max: 3000 })).map((
    [nonce, extra],
  ): Frame => ({ type: FrameType.PmtuProbe, nonce, size: PMTU_PROBE_MIN_BYTES + extra })),
  fc.tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.nat({ max: 0xffff_ffff })).map((
    [nonce, size],
  ): Frame => ({ type: FrameType.PmtuAck, nonce, size })),
  fc.array(
    fc.record({ key: fc.nat({ max: 255 }), value: fc.nat({ max: 0xffff_ffff }) }),
    { maxLength: MAX_PARAMETERS },
  ).map((parameters): Frame => ({
    type: FrameType.Parameters,
    parameters: parameters.map(({ key, value }) => ({ key, value })),
  })),
);

Deno.test("frames: every valid frame round-trips (seeded)", () => {
  fc.assert(
    fc.property(frameArbitrary, (frame) => {
      const bytes = encodeFrame(frame);
      assert.ok(bytes.length <= MAX_LARGE_FRAME_BYTES);
      assert.deepEqual(decodeFrame(bytes), frame);
      assert.deepEqual(encodeFrame(decodeFrame(bytes)), bytes);
    }),
    { seed: 20261124, numRuns: 2000 },
  );
});

Deno.test("frames: random and mutated input never throws anything but FrameError (seeded)", () => {
  const mutated = fc.tuple(
    frameArbitrary,
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
    fc.nat(),
  ).map(([frame, flips, cut]) => {
    const bytes = encodeFrame(frame).slice();
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return cut % 3 === 0 ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
  });
  fc.assert(
    fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 1300 })), (bytes) => {
      try {
        const frame = decodeFrame(bytes);
        // Whatever decodes must encode back to the same bytes.
        assert.deepEqual(encodeFrame(frame), bytes);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
      }
    }),
    { seed: 7, numRuns: 5000 },
  );
});

Deno.test("RELAY_ADDRESSES round-trips like CANDIDATES, with its own type", () => {
  const addresses = [{ host: "203.0.113.5", port: 50000 }, { host: "2001:db8::5", port: 49152 }];
  const bytes = encodeFrame({ type: FrameType.RelayAddresses, addresses });
  assert.equal(bytes[0], 0x09);
  assert.deepEqual(decodeFrame(bytes), { type: FrameType.RelayAddresses, addresses });
  const candidates = encodeFrame({ type: FrameType.Candidates, addresses });
  assert.deepEqual(candidates.subarray(1), bytes.subarray(1));
  assert.equal(decodeFrame(candidates).type, FrameType.Candidates);
});

Deno.test("PARAMETERS: exact bytes, and malformed ones are FrameErrors", () => {
  const bytes = encodeFrame({
    type: FrameType.Parameters,
    parameters: [{ key: ParameterKey.UdpReceiveBuffer, value: 8_388_608 }],
  });
  assert.deepEqual([...bytes], [0x0b, 1, 0x01, 0x00, 0x80, 0x00, 0x00]);
  // A length that does not match the count, a count above the limit, no count at all.
  for (const bad of [bytes.subarray(0, 6), [0x0b, 2, 1, 0, 0, 0, 1], [0x0b, 17], [0x0b]]) {
    assert.throws(() => decodeFrame(new Uint8Array(bad)), FrameError);
  }
  assert.throws(
    () =>
      encodeFrame({
        type: FrameType.Parameters,
        parameters: Array.from({ length: MAX_PARAMETERS + 1 }, () => ({ key: 1, value: 1 })),
      }),
    FrameError,
  );
  assert.throws(
    () => encodeFrame({ type: FrameType.Parameters, parameters: [{ key: 256, value: 1 }] }),
    FrameError,
  );
});
