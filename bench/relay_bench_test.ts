import assert from "node:assert/strict";
import { relayRows } from "./relay_bench.ts";
import { parseRelayResult } from "./sig_load.ts";
import type { RelayLoadResult } from "./sig_load.ts";

Deno.test("parseRelayResult: accepts bulk and ping-pong results, refuses others", () => {
  const bulk = parseRelayResult(
    '{"event":"result","bytes":5,"seconds":1,"mbPerSecond":2.5,"relayErrors":0,"otherErrors":0,"badFrames":0}',
  );
  assert.equal(bulk.mbPerSecond, 2.5);
  assert.throws(() => parseRelayResult('{"event":"start"}'), SyntaxError);
  assert.throws(
    () =>
      parseRelayResult(
        '{"event":"result","seconds":1,"relayErrors":0,"otherErrors":0,"badFrames":0}',
      ),
    SyntaxError,
  );
});

Deno.test("relayRows: bulk ratio against the C relay and the 120k msg/s floor decide verdicts", () => {
  const b = (mb: number, errors = 0): RelayLoadResult => ({
    mbPerSecond: mb,
    bytes: mb * 1e6,
    serverCpuSeconds: mb * 1e-4,
    seconds: 1,
    relayErrors: errors,
    otherErrors: 0,
    badFrames: 0,
  });
  const p = (rate: number): RelayLoadResult => ({
    messagesPerSecond: rate,
    messages: rate,
    seconds: 1,
    relayErrors: 0,
    otherErrors: 0,
    badFrames: 0,
    serverCpuSeconds: rate * 5e-6,
  });
  const rows = relayRows(
    { ours: [b(900), b(1000), b(1100, 2)], crelay: [b(1000), b(1000), b(1000)], direct: [b(3000)] },
    { ours: [p(100_000), p(110_000), p(90_000)], crelay: [p(150_000)], direct: [p(200_000)] },
    {},
  );
  const find = (figure: string, reference = "") =>
    rows.find((r) => r.figure.startsWith(figure) && r.referenceName.startsWith(reference))!;
  assert.equal(find("bulk", "C epoll").ratio, 1);
  assert.equal(find("bulk", "C epoll").verdict, "met");
  assert.equal(find("bulk", "plain Deno").reference, null);
  // 1e-4 s of CPU per MB = 100 µs
  assert.ok(Math.abs((find("server CPU per relayed MB").ours?.median ?? 0) - 100) < 1e-9);
  assert.equal(find("ping-pong", "C epoll").verdict, "short");
  assert.ok(Math.abs((find("server CPU per relayed ping").ours?.median ?? 0) - 5) < 1e-9);
  assert.equal(find("relay refusals").verdict, "short");
});
