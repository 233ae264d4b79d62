import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type DataFrame,
  decodeFrame,
  encodeFrame,
  FrameType,
  MAX_DATA_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
} from "../../shared/peer/frames.ts";
import {
  ChannelClosedError,
  ChannelProtocolError,
  MessageTooLargeError,
  PeerUnreachableError,
  SendQueueFullError,
} from "./errors.ts";
import { ReliableChannel, type ReliableChannelOptions } from "./reliable_channel.ts";
import {
  type End,
  type LinkConditions,
  seededRandom,
  SimulatedNetwork,
} from "./simulated_network.ts";

interface Endpoint {
  channel: ReliableChannel;
  received: Uint8Array[];
  acknowledged: number[];
  failures: { error: Error; ids: number[] }[];
  maxFrameBytes: number;
}

function endpoint(
  net: SimulatedNetwork,
  end: End,
  options: Partial<ReliableChannelOptions> = {},
): Endpoint {
  const result: Endpoint = {
    channel: undefined as unknown as ReliableChannel,
    received: [],
    acknowledged: [],
    failures: [],
    maxFrameBytes: 0,
  };
  const send = net.sender(end);
  result.channel = new ReliableChannel({
    now: net.now,
    send: (frame) => {
      result.maxFrameBytes = Math.max(result.maxFrameBytes, frame.length);
      send(frame);
    },
    deliver: (message) => result.received.push(message),
    onAcknowledged: (id) => result.acknowledged.push(id),
    onFailure: (error, ids) => result.failures.push({ error, ids }),
    streamId: end === "a" ? 0xaaaa : 0xbbbb,
    ...options,
  });
  net.attach(end, (frame) => result.channel.receive(frame));
  return result;
}

/** Message `i` of a run: recognisable content and a length that varies with the seed. */
function message(random: () => number, i: number, maxBytes: number): Uint8Array {
  const length = Math.floor(random() * maxBytes);
  const bytes = new Uint8Array(length);
  for (let j = 0; j < length; j++) bytes[j] = (i * 31 + j) & 0xff;
  return bytes;
}

const clean: LinkConditions = { delayMs: 20, jitterMs: 0, loss: 0, duplicate: 0 };

Deno.test("reliable channel: lossless path delivers in order without retransmissions", () => {
  const net = new SimulatedNetwork(1, clean);
  const a = endpoint(net, "a");
  const b = endpoint(net, "b");
  const random = seededRandom(2);
  const sent = Array.from({ length: 200 }, (_, i) => message(random, i, 3000));
  const ids = sent.map((m) => a.channel.sendMessage(m));
  assert.deepEqual(ids, sent.map((_, i) => i + 1));
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === sent.length, {
      maxTimeMs: 60_000,
    }),
  );
  assert.deepEqual(b.received, sent);
  assert.deepEqual(a.acknowledged, ids);
  const stats = a.channel.stats;
  assert.equal(stats.retransmissions, 0);
  assert.equal(stats.inFlight, 0);
  assert.equal(stats.queued, 0);
  assert.equal(b.channel.stats.delivered, 200);
  assert.ok(stats.srtt !== undefined && stats.srtt >= 40 && stats.srtt <= 60, `${stats.srtt}`);
  assert.ok(a.maxFrameBytes <= MAX_FRAME_BYTES && b.maxFrameBytes <= MAX_FRAME_BYTES);
  assert.deepEqual(a.failures, []);
  // Idle: no timers left but none needed.
  assert.equal(a.channel.nextDeadline(), undefined);
});

Deno.test("reliable channel: frames and timers of a single small message", () => {
  let now = 1000;
  const fromA: Uint8Array[] = [];
  const fromB: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  const acked: number[] = [];
  const a = new ReliableChannel({
    now: () => now,
    send: (f) => fromA.push(f),
    deliver: () => {},
    onAcknowledged: (id) => acked.push(id),
    streamId: 5,
  });
  const b = new ReliableChannel({
    now: () => now,
    send: (f) => fromB.push(f),
    deliver: (m) => received.push(m),
    streamId: 6,
  });
  a.sendMessage(new TextEncoder().encode("hello"));
  assert.equal(fromA.length, 1);
  const data = decodeFrame(fromA[0]) as DataFrame;
  assert.equal(data.type, FrameType.Data);
  assert.deepEqual([data.streamId, data.seq, data.first, data.last, data.messageLength], [
    5,
    0,
    true,
    true,
    5,
  ]);
  assert.equal(a.nextDeadline(), 2000); // initial RTO 1 s
  now += 30;
  b.receive(fromA[0]);
  assert.deepEqual(received, [new TextEncoder().encode("hello")]);
  // The message is complete: its ACK is due at the next tick (now), not after the ACK delay;
  // the caller runs that tick once the packets already received are processed.
  assert.equal(fromB.length, 0);
  assert.equal(b.nextDeadline(), 1030);
  b.tick();
  assert.equal(fromB.length, 1);
  assert.deepEqual(decodeFrame(fromB[0]), {
    type: FrameType.Ack,
    streamId: 5,
    cumulative: 1,
    window: 512,
    ranges: [],
  });
  now = 1060;
  a.receive(decodeFrame(fromB[0]) as never);
  assert.deepEqual(acked, [1]);
  assert.equal(a.stats.srtt, 60);
  assert.equal(a.nextDeadline(), undefined);
  // A replayed DATA frame is not delivered again, but acknowledged at once.
  b.receive(fromA[0]);
  assert.equal(received.length, 1);
  assert.equal(fromB.length, 2);
  assert.equal(b.stats.duplicatesReceived, 1);
  // Frames of other types are ignored by the channel.
  b.receive(encodeFrame({ type: FrameType.Close, reason: "x" }));
  assert.equal(received.length, 1);
});

Deno.test("reliable channel: ACK policy: every second fragment at once, a completed message at the next tick, others within the ACK delay", () => {
  let now = 0;
  const acks: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  const b = new ReliableChannel({
    now: () => now,
    send: (f) => acks.push(f),
    deliver: (m) => received.push(m),
    streamId: 2,
  });
  const data = (seq: number, first: boolean, last: boolean, payload: number, length?: number) =>
    encodeFrame(
      first
        ? {
          type: FrameType.Data,
          streamId: 1,
          seq,
          first,
          last,
          messageLength: length ?? payload,
          payload: new Uint8Array(payload),
        }
        : { type: FrameType.Data, streamId: 1, seq, first, last, payload: new Uint8Array(payload) },
    );
  const cumulativeOfLastAck = () =>
    (decodeFrame(acks[acks.length - 1]) as { cumulative: number })
      .cumulative;
  const total = 3 * MAX_DATA_PAYLOAD_BYTES;
  // The first fragment of a three-fragment message: nothing complete, ACK within the delay.
  b.receive(data(0, true, false, MAX_DATA_PAYLOAD_BYTES, total));
  assert.equal(acks.length, 0);
  assert.equal(b.nextDeadline(), 10);
  // The second in-order fragment: ACK at once (ack-eliciting threshold of two).
  now = 1;
  b.receive(data(1, false, false, MAX_DATA_PAYLOAD_BYTES));
  assert.equal(acks.length, 1);
  assert.equal(cumulativeOfLastAck(), 2);
  assert.equal(b.nextDeadline(), undefined);
  // The last fragment completes the message: due now, sent by the next tick, not at 12.
  now = 2;
  b.receive(data(2, false, true, MAX_DATA_PAYLOAD_BYTES));
  assert.equal(received.length, 1);
  assert.equal(acks.length, 1);
  assert.equal(b.nextDeadline(), 2);
  // A burst of small messages processed before that tick: one ACK per two fragments, and the
  // odd one out is acknowledged by the tick.
  for (let seq = 3; seq < 9; seq++) b.receive(data(seq, true, true, 10));
  assert.equal(received.length, 7);
  assert.equal(acks.length, 4); // at 4, 6 and 8 fragments received
  assert.equal(cumulativeOfLastAck(), 8);
  assert.equal(b.nextDeadline(), 2);
  b.tick();
  assert.equal(acks.length, 5);
  assert.equal(cumulativeOfLastAck(), 9);
  assert.equal(b.nextDeadline(), undefined);
  b.tick();
  assert.equal(acks.length, 5); // nothing more to acknowledge
  // Out of order: at once.
  b.receive(data(10, true, true, 10));
  assert.equal(acks.length, 6);
  assert.deepEqual((decodeFrame(acks[5]) as { ranges: unknown[] }).ranges, [
    { start: 10, end: 11 },
  ]);
});

Deno.test("reliable channel: exactly once, in order, under loss, duplication, reordering and path switches (seeded)", () => {
  let worstRatio = 0;
  fc.assert(
    fc.property(
      fc.record({
        seed: fc.nat(),
        lossPercent: fc.integer({ min: 0, max: 30 }),
        duplicatePercent: fc.integer({ min: 0, max: 10 }),
        delayMs: fc.integer({ min: 1, max: 100 }),
        jitterMs: fc.integer({ min: 0, max: 60 }),
        countA: fc.integer({ min: 1, max: 40 }),
        countB: fc.integer({ min: 0, max: 20 }),
        maxBytes: fc.constantFrom(1, 200, 3000, 20_000),
        // A path switch: when, the new one-way delay, whether the caller says so.
        pathSwitch: fc.option(
          fc.record({
            at: fc.integer({ min: 0, max: 3000 }),
            delayMs: fc.integer({ min: 1, max: 300 }),
            dropInFlight: fc.boolean(),
            notify: fc.boolean(),
          }),
        ),
      }),
      (p) => {
        const net = new SimulatedNetwork(p.seed, {
          delayMs: p.delayMs,
          jitterMs: p.jitterMs,
          loss: p.lossPercent / 100,
          duplicate: p.duplicatePercent / 100,
        });
        // Up to 30% loss each way can, rarely, lose every copy of an ACK for tens of seconds;
        // the 30 s failure policy is tested on its own below, here only correctness counts.
        const a = endpoint(net, "a", { failureTimeoutMs: 300_000 });
        const b = endpoint(net, "b", { failureTimeoutMs: 300_000 });
        const random = seededRandom(p.seed ^ 0x1234);
        const fromA = Array.from({ length: p.countA }, (_, i) => message(random, i, p.maxBytes));
        const fromB = Array.from(
          { length: p.countB },
          (_, i) => message(random, i + 7, p.maxBytes),
        );
        // Half of A's messages go at once, the rest (and B's) at random times over 2 s.
        const times = (count: number) =>
          Array.from({ length: count }, () => random() * 2000).sort((x, y) => x - y);
        const timesA = times(p.countA);
        fromA.forEach((m, i) =>
          net.schedule(i < p.countA / 2 ? 0 : timesA[i], () => a.channel.sendMessage(m))
        );
        const timesB = times(p.countB);
        fromB.forEach((m, i) => net.schedule(timesB[i], () => b.channel.sendMessage(m)));
        const pathSwitch = p.pathSwitch;
        if (pathSwitch !== null) {
          net.schedule(pathSwitch.at, () => {
            net.setConditions({
              delayMs: pathSwitch.delayMs,
              jitterMs: p.jitterMs,
              loss: p.lossPercent / 100,
              duplicate: p.duplicatePercent / 100,
            }, { dropInFlight: pathSwitch.dropInFlight });
            if (pathSwitch.notify) {
              a.channel.pathChanged();
              b.channel.pathChanged();
            }
          });
        }
        const finished = net.run(
          [a.channel, b.channel],
          () =>
            a.acknowledged.length === fromA.length && b.acknowledged.length === fromB.length &&
            b.received.length === fromA.length && a.received.length === fromB.length,
          { maxTimeMs: 600_000 },
        );
        assert.ok(finished, `not finished by ${net.now()} ms`);
        assert.deepEqual(b.received, fromA);
        assert.deepEqual(a.received, fromB);
        assert.deepEqual(a.acknowledged, fromA.map((_, i) => i + 1));
        assert.deepEqual(b.acknowledged, fromB.map((_, i) => i + 1));
        assert.deepEqual(a.failures, []);
        assert.deepEqual(b.failures, []);
        for (const side of [a, b]) {
          const { retransmissions, framesSent } = side.channel.stats;
          const first = framesSent - retransmissions;
          // Bounded: about loss/(1-loss) resends per frame, plus timeouts on lossy tails.
          assert.ok(retransmissions <= 2 * first + 30, `${retransmissions} for ${first}`);
          worstRatio = Math.max(worstRatio, retransmissions / Math.max(1, first));
        }
      },
    ),
    { seed: 0xc0ffee, numRuns: 300 },
  );
  assert.ok(worstRatio > 0, "the runs included loss");
});

Deno.test("reliable channel: a 1 MiB message arrives intact through 10% loss, within bounded buffers", () => {
  const net = new SimulatedNetwork(11, { delayMs: 30, jitterMs: 10, loss: 0.1, duplicate: 0.02 });
  const a = endpoint(net, "a", { windowFragments: 128 });
  const b = endpoint(net, "b", { windowFragments: 128 });
  const big = message(seededRandom(3), 5, 1 << 21).subarray(0, 1 << 20);
  assert.equal(big.length, 1 << 20);
  a.channel.sendMessage(big);
  a.channel.sendMessage(new Uint8Array([1, 2, 3]));
  let maxInFlight = 0;
  let maxBuffered = 0;
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === 2, {
      maxTimeMs: 600_000,
      check: () => {
        maxInFlight = Math.max(maxInFlight, a.channel.stats.inFlight);
        maxBuffered = Math.max(maxBuffered, b.channel.stats.receiveBuffered);
      },
    }),
  );
  assert.equal(b.received.length, 2);
  assert.ok(b.received[0].length === big.length && b.received[0].every((x, i) => x === big[i]));
  assert.deepEqual(b.received[1], new Uint8Array([1, 2, 3]));
  assert.ok(maxInFlight <= 128, `in flight ${maxInFlight}`);
  assert.ok(maxBuffered <= 128, `buffered ${maxBuffered}`);
  const fragments = Math.ceil(big.length / MAX_DATA_PAYLOAD_BYTES) + 1;
  const { retransmissions, framesSent } = a.channel.stats;
  assert.equal(framesSent - retransmissions, fragments);
  assert.ok(retransmissions < fragments, `${retransmissions} retransmissions`);
});

Deno.test("reliable channel: flow control holds a fast sender to a small receive window", () => {
  const net = new SimulatedNetwork(5, { delayMs: 5, jitterMs: 3, loss: 0.05, duplicate: 0 });
  const a = endpoint(net, "a", { windowFragments: 64 });
  const b = endpoint(net, "b", { windowFragments: 8 });
  const payload = message(seededRandom(9), 1, 200_000);
  a.channel.sendMessage(payload);
  let maxInFlight = 0;
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === 1, {
      maxTimeMs: 600_000,
      check: () => {
        maxInFlight = Math.max(maxInFlight, a.channel.stats.inFlight);
        assert.ok(b.channel.stats.receiveBuffered <= 8);
      },
    }),
  );
  assert.deepEqual(b.received, [payload]);
  // Before the first ACK the sender may use its own window; after it, the peer's 8.
  assert.ok(maxInFlight <= 10, `in flight ${maxInFlight}`);
});

for (const notify of [false, true]) {
  Deno.test(`reliable channel: survives a path switch with an RTT change (pathChanged: ${notify})`, () => {
    const net = new SimulatedNetwork(21, { delayMs: 5, jitterMs: 2, loss: 0.01, duplicate: 0 });
    const a = endpoint(net, "a");
    const b = endpoint(net, "b");
    const random = seededRandom(4);
    const sent = Array.from({ length: 300 }, (_, i) => message(random, i, 6000));
    sent.forEach((m, i) => net.schedule(i * 5, () => a.channel.sendMessage(m)));
    const replies = Array.from({ length: 50 }, (_, i) => message(random, i, 500));
    replies.forEach((m, i) => net.schedule(i * 20, () => b.channel.sendMessage(m)));
    // At 400 ms the direct path dies with frames on it; traffic moves to a 150 ms relay.
    net.schedule(400, () => {
      net.setConditions({ delayMs: 150, jitterMs: 20, loss: 0, duplicate: 0 }, {
        dropInFlight: true,
      });
      if (notify) {
        a.channel.pathChanged();
        b.channel.pathChanged();
      }
    });
    // At 5 s a direct path is back (upgrade), again dropping what was on the relay.
    net.schedule(5000, () => {
      net.setConditions({ delayMs: 3, jitterMs: 1, loss: 0, duplicate: 0 }, { dropInFlight: true });
      if (notify) {
        a.channel.pathChanged();
        b.channel.pathChanged();
      }
    });
    assert.ok(
      net.run(
        [a.channel, b.channel],
        () => a.acknowledged.length === sent.length && b.acknowledged.length === replies.length,
        { maxTimeMs: 120_000 },
      ),
    );
    assert.deepEqual(b.received, sent);
    assert.deepEqual(a.received, replies);
    assert.deepEqual([a.failures, b.failures], [[], []]);
    const srtt = a.channel.stats.srtt;
    assert.ok(srtt !== undefined && srtt < 100, `srtt ${srtt} follows the new direct path`);
  });
}

Deno.test("reliable channel: a vanished peer is reported after the failure timeout, nothing lost silently", () => {
  const net = new SimulatedNetwork(8, { delayMs: 10, jitterMs: 0, loss: 0, duplicate: 0 });
  const a = endpoint(net, "a");
  const b = endpoint(net, "b");
  const sent = Array.from({ length: 30 }, (_, i) => message(seededRandom(i), i, 4000));
  sent.forEach((m, i) => net.schedule(i * 10, () => a.channel.sendMessage(m)));
  net.schedule(150, () => net.setConditions({ ...clean, loss: 1 }, { dropInFlight: true }));
  assert.ok(net.run([a.channel, b.channel], () => a.failures.length > 0, { maxTimeMs: 120_000 }));
  const [failure] = a.failures;
  assert.ok(failure.error instanceof PeerUnreachableError);
  // Every message is either acknowledged or reported, never both, in order.
  assert.deepEqual([...a.acknowledged, ...failure.ids], sent.map((_, i) => i + 1));
  assert.ok(failure.ids.length > 0 && a.acknowledged.length > 0);
  assert.deepEqual(
    b.received.slice(0, a.acknowledged.length),
    sent.slice(0, a.acknowledged.length),
  );
  // Reported 30 s after the last progress (which was before the path died at 150 ms).
  assert.ok(net.now() >= 30_000 && net.now() <= 30_200, `failed at ${net.now()}`);
  // Backed off: at most about a dozen timeouts, each sending the oldest fragment twice.
  assert.ok(a.channel.stats.retransmissions <= 24, `${a.channel.stats.retransmissions}`);
  assert.equal(a.channel.closed, true);
  assert.equal(a.channel.nextDeadline(), undefined);
  assert.throws(() => a.channel.sendMessage(new Uint8Array(1)), ChannelClosedError);
  assert.equal(a.failures.length, 1);
});

Deno.test("reliable channel: bounded queue and message size", () => {
  const sent: Uint8Array[] = [];
  const channel = new ReliableChannel({
    now: () => 0,
    send: (f) => sent.push(f),
    deliver: () => {},
    maxQueuedMessages: 3,
    maxQueuedBytes: 10_000,
    maxMessageBytes: 6000,
  });
  // hasRoomFor is false exactly when sendMessage throws SendQueueFullError.
  assert.equal(channel.hasRoomFor(6001), true);
  assert.throws(() => channel.sendMessage(new Uint8Array(6001)), MessageTooLargeError);
  channel.sendMessage(new Uint8Array(6000));
  assert.equal(channel.hasRoomFor(5000), false);
  assert.throws(() => channel.sendMessage(new Uint8Array(5000)), SendQueueFullError);
  assert.equal(channel.hasRoomFor(10), true);
  channel.sendMessage(new Uint8Array(10));
  channel.sendMessage(new Uint8Array(10));
  assert.equal(channel.hasRoomFor(1), false);
  assert.throws(() => channel.sendMessage(new Uint8Array(1)), SendQueueFullError);
  assert.equal(channel.stats.queued, 3);
  assert.equal(channel.stats.queuedBytes, 6020);
  const failures: number[][] = [];
  const closing = new ReliableChannel({
    now: () => 0,
    send: () => {},
    deliver: () => {},
    onFailure: (_e, ids) => failures.push(ids),
  });
  closing.sendMessage(new Uint8Array(3000));
  closing.sendMessage(new Uint8Array(1));
  assert.deepEqual(closing.close(), [1, 2]);
  assert.deepEqual(failures, [[1, 2]]);
  assert.deepEqual(closing.close(), []);
  assert.equal(closing.hasRoomFor(1), true); // closed: sendMessage throws another error
  assert.throws(() => closing.sendMessage(new Uint8Array(1)), ChannelClosedError);
});

Deno.test("reliable channel: a restarted peer (new stream ID) is followed, its old stream ignored", () => {
  const net = new SimulatedNetwork(3, clean);
  const b = endpoint(net, "b");
  const a1 = endpoint(net, "a", { streamId: 111 });
  a1.channel.sendMessage(new Uint8Array([1]));
  assert.ok(
    net.run([a1.channel, b.channel], () => a1.acknowledged.length === 1, { maxTimeMs: 10_000 }),
  );
  const stale = encodeFrame({
    type: FrameType.Data,
    streamId: 111,
    seq: 1,
    first: true,
    last: true,
    messageLength: 1,
    payload: new Uint8Array([9]),
  });
  const a2 = endpoint(net, "a", { streamId: 222 });
  a2.channel.sendMessage(new Uint8Array([2]));
  assert.ok(
    net.run([a2.channel, b.channel], () => a2.acknowledged.length === 1, { maxTimeMs: 20_000 }),
  );
  b.channel.receive(stale);
  assert.deepEqual(b.received, [new Uint8Array([1]), new Uint8Array([2])]);
});

Deno.test("reliable channel: protocol violations fail the channel and report what is outstanding", () => {
  const failures: { error: Error; ids: number[] }[] = [];
  const channel = new ReliableChannel({
    now: () => 0,
    send: () => {},
    deliver: () => {},
    onFailure: (error, ids) => failures.push({ error, ids }),
    streamId: 1,
  });
  channel.sendMessage(new Uint8Array(10));
  channel.receive({ type: FrameType.Ack, streamId: 2, cumulative: 50, window: 1, ranges: [] });
  assert.equal(failures.length, 0); // another stream's ACK is ignored
  channel.receive({ type: FrameType.Ack, streamId: 1, cumulative: 50, window: 1, ranges: [] });
  assert.equal(failures.length, 1);
  assert.ok(failures[0].error instanceof ChannelProtocolError);
  assert.deepEqual(failures[0].ids, [1]);

  const receiverFailures: Error[] = [];
  const receiver = new ReliableChannel({
    now: () => 0,
    send: () => {},
    deliver: () => {},
    onFailure: (error) => receiverFailures.push(error),
    maxMessageBytes: 100,
  });
  receiver.receive({
    type: FrameType.Data,
    streamId: 9,
    seq: 0,
    first: true,
    last: false,
    messageLength: 101,
    payload: new Uint8Array(1),
  });
  assert.ok(receiverFailures[0] instanceof ChannelProtocolError);
});

Deno.test("reliable channel: a throwing deliver hook loses no message", () => {
  let now = 0;
  const out: Uint8Array[] = [];
  const a = new ReliableChannel({ now: () => now, send: (f) => out.push(f), deliver: () => {} });
  for (let i = 0; i < 3; i++) a.sendMessage(new Uint8Array([i]));
  const got: number[] = [];
  const b = new ReliableChannel({
    now: () => now,
    send: () => {},
    deliver: (m) => {
      got.push(m[0]);
      if (m[0] === 1) throw new Error("hook failed");
    },
  });
  // Fragments 1 and 2 arrive first, then 0 releases all three at once.
  b.receive(out[1]);
  b.receive(out[2]);
  assert.throws(() => b.receive(out[0]), /hook failed/);
  assert.deepEqual(got, [0, 1, 2]);
  now += 1;
});

Deno.test("reliable channel: hostile frames never crash it nor grow its buffers (seeded)", () => {
  const hostileFrame = fc.oneof(
    fc.record({
      streamId: fc.constantFrom(1, 2, 3),
      seq: fc.oneof(fc.nat({ max: 40 }), fc.nat({ max: 2 ** 48 - 1 })),
      first: fc.boolean(),
      last: fc.boolean(),
      size: fc.nat({ max: 300 }),
      extra: fc.nat({ max: 5000 }),
    }).map(({ streamId, seq, first, last, size, extra }) => {
      const payload = new Uint8Array(first && last ? size : Math.max(1, size));
      return encodeFrame(
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
          : { type: FrameType.Data, streamId, seq, first, last, payload },
      );
    }),
    fc.record({
      streamId: fc.constantFrom(7, 8),
      cumulative: fc.nat({ max: 60 }),
      window: fc.nat({ max: 100 }),
      gaps: fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })), {
        maxLength: 5,
      }),
    }).map(({ streamId, cumulative, window, gaps }) => {
      const ranges = [];
      let floor = cumulative;
      for (const [gap, length] of gaps) {
        ranges.push({ start: floor + gap, end: floor + gap + length });
        floor += gap + length;
      }
      return encodeFrame({ type: FrameType.Ack, streamId, cumulative, window, ranges });
    }),
    fc.uint8Array({ maxLength: 64 }),
  );
  fc.assert(
    fc.property(
      fc.array(hostileFrame, { maxLength: 200 }),
      fc.nat({ max: 20 }),
      (frames, count) => {
        let now = 0;
        const failures: { error: Error; ids: number[] }[] = [];
        const acked: number[] = [];
        const channel = new ReliableChannel({
          now: () => now,
          send: () => {},
          deliver: () => {},
          onAcknowledged: (id) => acked.push(id),
          onFailure: (error, ids) => failures.push({ error, ids }),
          streamId: 7,
          windowFragments: 16,
          maxMessageBytes: 4096,
        });
        for (let i = 0; i < count; i++) channel.sendMessage(new Uint8Array(i * 100));
        for (const frame of frames) {
          now += 3;
          try {
            channel.receive(frame);
          } catch (error) {
            assert.equal((error as Error).name, "FrameError");
          }
          channel.tick();
          const stats = channel.stats;
          assert.ok(stats.receiveBuffered <= 16);
          assert.ok(stats.inFlight <= 16);
        }
        assert.ok(failures.length <= 1);
        for (const { error, ids } of failures) {
          assert.ok(error instanceof ChannelProtocolError || error instanceof PeerUnreachableError);
          // Acknowledged and failed message IDs never overlap and together cover what was sent.
          assert.deepEqual([...acked, ...ids], Array.from({ length: count }, (_, i) => i + 1));
        }
      },
    ),
    { seed: 31337, numRuns: 400 },
  );
});

Deno.test("reliable channel: a lost last message is probed after 2·SRTT, before the RTO", () => {
  let now = 0;
  const fromA: Uint8Array[] = [];
  const fromB: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  const a = new ReliableChannel({ now: () => now, send: (f) => fromA.push(f), deliver: () => {} });
  const b = new ReliableChannel({
    now: () => now,
    send: (f) => fromB.push(f),
    deliver: (m) => received.push(m),
    ackDelayMs: 0,
  });
  a.sendMessage(new Uint8Array([1]));
  now = 10;
  b.receive(fromA.shift() as Uint8Array);
  b.tick(); // the (zero) ACK delay
  now = 20;
  a.receive(fromB.shift() as Uint8Array);
  assert.equal(a.stats.srtt, 20);
  a.sendMessage(new Uint8Array([2]));
  fromA.length = 0; // lost
  // Probe at 20 + 2·20 + 10 (ACK delay) + 1 = 71; the RTO (200 ms minimum) only at 220.
  assert.equal(a.nextDeadline(), 71);
  now = 71;
  a.tick();
  assert.equal(fromA.length, 1);
  assert.deepEqual([a.stats.probes, a.stats.timeouts, a.stats.retransmissions], [1, 0, 1]);
  b.receive(fromA.shift() as Uint8Array);
  assert.deepEqual(received, [new Uint8Array([1]), new Uint8Array([2])]);
});

Deno.test("reliable channel: a throwing send hook counts as loss, never as a lost message", () => {
  const net = new SimulatedNetwork(4, clean);
  let failing = true;
  const wire = net.sender("a");
  const acked: number[] = [];
  const a = new ReliableChannel({
    now: net.now,
    send: (frame) => {
      if (failing) throw new Error("socket closed");
      wire(frame);
    },
    deliver: () => {},
    onAcknowledged: (id) => acked.push(id),
  });
  const b = endpoint(net, "b");
  net.attach("a", (frame) => a.receive(frame));
  assert.equal(a.sendMessage(new Uint8Array([7])), 1);
  assert.equal(a.stats.sendErrors, 1);
  net.schedule(500, () => (failing = false));
  assert.ok(net.run([a, b.channel], () => acked.length === 1, { maxTimeMs: 10_000 }));
  assert.deepEqual(b.received, [new Uint8Array([7])]);
});

/** A sender on a fake clock whose DATA frames the test acknowledges by hand. */
function handDrivenSender(now: () => number) {
  const outstanding: number[] = [];
  const channel = new ReliableChannel({
    now,
    send: (f) => {
      const frame = decodeFrame(f);
      if (frame.type === FrameType.Data) outstanding.push(frame.seq);
    },
    deliver: () => {},
    streamId: 9,
  });
  /** Acknowledges every outstanding fragment, one cumulative ACK each, in order. */
  const ackAll = () => {
    for (const seq of outstanding.splice(0)) {
      channel.receive({
        type: FrameType.Ack,
        streamId: 9,
        cumulative: seq + 1,
        window: 512,
        ranges: [],
      });
    }
  };
  return { channel, outstanding, ackAll };
}

Deno.test("reliable channel: a trickle of messages does not grow the congestion window (app-limited)", () => {
  let now = 0;
  const sender = handDrivenSender(() => now);
  for (let i = 0; i < 100; i++) {
    sender.channel.sendMessage(new Uint8Array(10));
    now += 1;
    sender.ackAll();
  }
  assert.equal(sender.channel.stats.acknowledged, 100);
  // One fragment in flight at a time never used the window of 10: it did not grow (it would
  // have reached 110 and let a later burst of 110 fragments out at once).
  assert.equal(sender.channel.stats.congestionWindow, 10);
  // A burst uses it, and slow start grows it.
  for (let i = 0; i < 200; i++) sender.channel.sendMessage(new Uint8Array(10));
  assert.equal(sender.outstanding.length, 10);
  now += 1;
  sender.ackAll();
  assert.equal(sender.channel.stats.congestionWindow, 20);
});

Deno.test("reliable channel: slow start ends when the round trip time grows (HyStart++ delay test)", () => {
  let now = 0;
  const sender = handDrivenSender(() => now);
  for (let i = 0; i < 1000; i++) sender.channel.sendMessage(new Uint8Array(10));
  const windows: number[] = [];
  // Three rounds at 1 ms, then the path's queue grows and every round takes 10 ms.
  for (let round = 0; round < 6; round++) {
    now += round < 3 ? 1 : 10;
    sender.ackAll();
    windows.push(sender.channel.stats.congestionWindow);
  }
  // Doubling while the RTT holds (10 -> 20 -> 40 -> 80); in the first slow round, once 8 of its
  // samples are 4+ ms above the previous round's minimum, slow start ends: from then on about
  // one fragment more per round (congestion avoidance), no more doubling.
  assert.deepEqual(windows.slice(0, 3), [20, 40, 80]);
  assert.ok(windows[3] < 160, `${windows}`);
  assert.ok(windows[5] - windows[4] <= 1.5, `${windows}`);
  assert.equal(sender.channel.stats.retransmissions, 0);
  // Without the RTT growth, slow start would have gone on doubling.
  let steadyNow = 0;
  const steady = handDrivenSender(() => steadyNow);
  for (let i = 0; i < 1000; i++) steady.channel.sendMessage(new Uint8Array(10));
  for (let round = 0; round < 5; round++) {
    steadyNow += 1;
    steady.ackAll();
  }
  assert.equal(steady.channel.stats.congestionWindow, 320);
});

Deno.test("reliable channel: a normal message overtakes queued bulk data; bulk has its own budget", () => {
  const net = new SimulatedNetwork(3, clean);
  const a = endpoint(net, "a", { maxBulkBytes: 256 << 10 });
  const b = endpoint(net, "b");
  const chunk = (i: number) => new Uint8Array(64 << 10).fill(i);
  const bulkIds = [1, 2, 3, 4].map((i) => a.channel.sendMessage(chunk(i), "bulk"));
  // The bulk budget is full: more bulk is refused, ordinary messages are not.
  assert.equal(a.channel.hasRoomFor(1, "bulk"), false);
  assert.throws(() => a.channel.sendMessage(chunk(5), "bulk"), SendQueueFullError);
  assert.equal(a.channel.hasRoomFor(100), true);
  const line = new TextEncoder().encode("a chat line");
  const lineId = a.channel.sendMessage(line);
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === 5, { maxTimeMs: 60_000 }),
  );
  // The line went right after the bulk message being cut when it was queued (the first), ahead
  // of the three still waiting.
  assert.deepEqual(b.received.map((m) => m.length === line.length ? "line" : m[0]), [
    1,
    "line",
    2,
    3,
    4,
  ]);
  assert.deepEqual(a.acknowledged, [bulkIds[0], lineId, ...bulkIds.slice(1)]);
  assert.equal(a.channel.stats.queuedBytes, 0);
  assert.equal(a.channel.hasRoomFor(256 << 10, "bulk"), true);
  // A failure reports every unacknowledged message, bulk and normal alike.
  a.channel.sendMessage(chunk(6), "bulk");
  a.channel.sendMessage(line);
  const undelivered = a.channel.close();
  assert.equal(undelivered.length, 2);
});

Deno.test("reliable channel: larger frames once the path carries them, intact under loss", () => {
  const net = new SimulatedNetwork(4, { delayMs: 5, jitterMs: 2, loss: 0.02, duplicate: 0.01 });
  const a = endpoint(net, "a", { maxFrameBytes: 16_384, maxBulkBytes: 32 << 20 });
  const b = endpoint(net, "b");
  assert.equal(a.channel.maxFrameBytes, 16_384);
  const random = seededRandom(9);
  const sent = Array.from({ length: 24 }, (_, i) => message(random, i, 1 << 20));
  for (const m of sent) a.channel.sendMessage(m, "bulk");
  a.channel.setMaxFrameBytes(70_000); // clamped to the largest TRANSPORT_LARGE plaintext
  assert.equal(a.channel.maxFrameBytes, 65_478);
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === sent.length, {
      maxTimeMs: 600_000,
    }),
  );
  assert.deepEqual(b.received, sent);
  assert.ok(a.maxFrameBytes > 16_384 && a.maxFrameBytes <= 65_478, `${a.maxFrameBytes}`);
  a.channel.setMaxFrameBytes(100); // never below what a 1200-byte packet carries
  assert.equal(a.channel.maxFrameBytes, MAX_FRAME_BYTES);
});

Deno.test("reliable channel: DATA through sendParts (header and payload view) arrives intact", () => {
  const net = new SimulatedNetwork(5, { delayMs: 3, jitterMs: 1, loss: 0.03, duplicate: 0 });
  const send = net.sender("a");
  let parts = 0;
  const a = endpoint(net, "a", {
    maxFrameBytes: 8192,
    sendParts: (head, payload) => {
      parts++;
      const frame = new Uint8Array(head.length + payload.length);
      frame.set(head);
      frame.set(payload, head.length);
      send(frame);
    },
  });
  const b = endpoint(net, "b");
  const random = seededRandom(11);
  const sent = Array.from({ length: 20 }, (_, i) => message(random, i, 200_000));
  for (const m of sent) a.channel.sendMessage(m, "bulk");
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === sent.length, {
      maxTimeMs: 300_000,
    }),
  );
  assert.deepEqual(b.received, sent);
  assert.ok(parts >= a.channel.stats.framesSent / 2, `${parts} of ${a.channel.stats.framesSent}`);
});

/**
 * The most fragments in flight while 16 MiB of bulk data crosses a path of `delayMs` each way in
 * 65,478-byte frames, when the peer said its UDP buffer is `peerBuffer` (PARAMETERS) or not.
 */
function peakInFlight(delayMs: number, peerBuffer?: number): number {
  const net = new SimulatedNetwork(6, { delayMs, jitterMs: 0, loss: 0, duplicate: 0 });
  let maxInFlight = 0;
  const send = net.sender("a");
  const a: Endpoint = endpoint(net, "a", {
    maxFrameBytes: 65_478,
    maxBulkBytes: 64 << 20,
    send: (frame) => {
      send(frame);
      maxInFlight = Math.max(maxInFlight, a.channel.stats.inFlight); // this one included
    },
  });
  if (peerBuffer !== undefined) a.channel.setReceiveBufferBytes(peerBuffer);
  const b = endpoint(net, "b");
  const chunk = new Uint8Array(1 << 20).fill(1);
  for (let i = 0; i < 16; i++) a.channel.sendMessage(chunk, "bulk");
  assert.ok(
    net.run([a.channel, b.channel], () => a.acknowledged.length === 16, { maxTimeMs: 60_000 }),
  );
  assert.equal(b.received.length, 16);
  return maxInFlight;
}

Deno.test("reliable channel: on a sub-2 ms path what is in flight fits the peer's UDP buffer", () => {
  // 65,507-byte datagrams: three fit 192 KiB; a 40 ms round trip is cwnd-limited only.
  const short = peakInFlight(0.05);
  assert.ok(short <= 3, `${short} in flight`);
  const long = peakInFlight(20);
  assert.ok(long > 3, `${long} in flight`);
});

Deno.test("reliable channel: a peer's larger UDP buffer (PARAMETERS) lets more be in flight on a short path", () => {
  assert.ok(peakInFlight(0.05) <= 3);
  // A smaller figure than Linux's default (or nonsense) never lowers the budget.
  assert.ok(peakInFlight(0.05, 1000) <= 3 && peakInFlight(0.05, Number.NaN) <= 3);
  // 8 MiB as the kernel reports it (4 MiB asked for): far more than three datagrams.
  const enlarged = peakInFlight(0.05, 8 << 20);
  assert.ok(enlarged > 16, `${enlarged} in flight`);
  // ...but never past what the buffer holds, less the margin: a full fragment costs its 65,478
  // bytes + 1 KiB; each 1 MiB message also ends in one short fragment (16 in all).
  assert.ok(enlarged <= Math.floor(((8 << 20) - 16_384) / (65_478 + 1024)) + 16, `${enlarged}`);
});
