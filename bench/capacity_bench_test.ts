import assert from "node:assert/strict";
import { capacityRows, parseCapacityResult } from "./capacity_bench.ts";
import type { CapacityRun } from "./capacity_bench.ts";

Deno.test("parseCapacityResult: reads the generator's line and refuses incomplete ones", () => {
  const r = parseCapacityResult(
    '{"event":"result","count":3,"registered":2,"failed":1,"pending":0,"dropped":0,"seconds":0.5,"firstError":"socket: Connection refused"}',
  );
  assert.equal(r.failed, 1);
  assert.equal(r.firstError, "socket: Connection refused");
  assert.throws(() => parseCapacityResult('{"event":"result","count":3}'), SyntaxError);
  assert.throws(() => parseCapacityResult('{"event":"ready"}'), SyntaxError);
});

Deno.test("capacityRows: KiB per client against 8 KiB, any refusal is short", () => {
  const run = (kib: number, failed = 0): CapacityRun => ({
    count: 10_000,
    registered: 10_000 - failed,
    failed,
    pending: 0,
    dropped: 0,
    seconds: 3,
    firstError: failed > 0 ? "socket: Connection refused" : "",
    rssBeforeKiB: 50_000,
    rssAfterKiB: 50_000 + kib * 10_000,
    kibPerClient: kib,
    rssAfterGcKiB: 50_000 + kib * 5_000,
    kibPerClientAfterGc: kib / 2,
    heapKibPerClient: kib / 4,
  });
  const ok = capacityRows([run(6), run(7), run(9)], "");
  assert.equal(ok[0].verdict, "met");
  assert.equal(ok[1].ours?.median, 3.5);
  assert.match(ok[1].note, /JS heap 1\.75 KiB/);
  assert.equal(ok[3].verdict, "met");
  const bad = capacityRows([run(9), run(10), run(7, 3)], "");
  assert.equal(bad[0].verdict, "short");
  assert.equal(bad[3].verdict, "short");
  assert.match(bad[3].note, /Connection refused/);
  assert.equal(capacityRows([], "not available: x")[0].ours, null);
});
