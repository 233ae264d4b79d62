import assert from "node:assert/strict";
import { parseStunLoadResult, stunRows } from "./stun_bench.ts";
import type { StunRun } from "./stun_bench.ts";

Deno.test("parseStunLoadResult: reads the generator's line and refuses incomplete ones", () => {
  const line =
    '{"sent":10,"answered":9,"lost":1,"invalid":0,"seconds":1,"rate":9,"p50Us":5,"p99Us":9,"maxUs":12}';
  assert.equal(parseStunLoadResult(line).lost, 1);
  assert.throws(() => parseStunLoadResult('{"sent":1}'), SyntaxError);
});

Deno.test("stunRows: CPU ratio against coturn decides the verdict; loss must be zero", () => {
  const run = (rate: number, cpu: number, lost = 0): StunRun => ({
    sent: rate,
    answered: rate,
    lost,
    invalid: 0,
    seconds: 1,
    rate,
    p50Us: 100,
    p99Us: 1500,
    maxUs: 3000,
    cpuUsPerRequest: cpu,
  });
  const rows = stunRows({
    ours: [run(100, 9), run(100, 9), run(100, 9, 1)],
    coturn: [run(100, 6), run(100, 6), run(100, 6)],
    native: [run(300, 3), run(300, 3), run(300, 3)],
  }, {});
  const cpu = rows.find((r) =>
    r.figure.startsWith("server CPU") && r.referenceName.startsWith("coturn")
  );
  assert.equal(cpu?.ratio, 1.5);
  assert.equal(cpu?.verdict, "short");
  assert.equal(rows.find((r) => r.figure === "latency p99")?.verdict, "met");
  assert.equal(rows.find((r) => r.figure.startsWith("lost"))?.verdict, "short");
});
