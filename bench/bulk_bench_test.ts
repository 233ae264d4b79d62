import assert from "node:assert/strict";
import { bulkRows, type BulkRun, cpuPerMb, rateOf } from "./bulk_bench.ts";

const run = (mb: number, seconds: number, cpu = 0, rssMiB = 0): BulkRun => ({
  bytes: mb * 1e6,
  seconds,
  receiverCpu: cpu,
  senderCpu: cpu,
  rssMiB,
});

Deno.test("bulk bench: rates, CPU per MB and the target verdict", () => {
  assert.equal(rateOf(run(200, 2)), 100);
  assert.equal(cpuPerMb(run(100, 1, 0.5)), 10_000);
  const rows = bulkRows({
    oursLarge: [run(400, 1, 0.5, 40)],
    plainLarge: [run(1000, 1, 0.2)],
    oursSmall: [run(12, 1)],
    plainSmall: [run(70, 1)],
    tcp: [run(2000, 1)],
  }, { "chacha20-poly1305 1171": 12, "aes-256-gcm raw key 1171": 30 });
  assert.equal(rows[0].ours?.median, 400);
  assert.equal(rows[0].ratio, 0.4);
  assert.equal(rows[0].verdict, "short");
  const rss = rows.find((r) => r.figure.startsWith("peak RSS"));
  assert.equal(rss?.verdict, "met");
  const chacha = rows.find((r) => r.figure.includes("ChaCha20-Poly1305, 1171"));
  assert.equal(chacha?.ratio, 0.4);
  const met = bulkRows({
    oursLarge: [run(600, 1)],
    plainLarge: [run(1000, 1)],
    oursSmall: [],
    plainSmall: [],
    tcp: [],
  }, {});
  assert.equal(met[0].verdict, "met");
  assert.equal(met[1].ours, null);
});

Deno.test("bulk bench: file transfer rows", () => {
  const rows = bulkRows({
    oursLarge: [],
    plainLarge: [run(1000, 1)],
    oursSmall: [],
    plainSmall: [],
    tcp: [],
    file: [{ ...run(2 ** 30 / 1e6, 4, 1, 70) }],
  }, {});
  const file = rows.find((r) => r.figure.startsWith("file transfer over our direct stack, 1 GiB"));
  assert.ok(file);
  assert.equal(Math.round(file.ours!.median), 268);
  assert.equal(file.verdict, "short"); // 0.27× the plain pair
  const rss = rows.find((r) => r.figure.includes("separate processes"));
  assert.equal(rss?.verdict, "short");
});
