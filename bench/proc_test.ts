import assert from "node:assert/strict";
import { parseCpuTicks, parseVmRssKiB, readCpuSeconds, readRssKiB } from "./proc.ts";

Deno.test("parseCpuTicks: sums utime and stime, even with ') ' in the command name", () => {
  const line =
    "4242 (we (ird) name) R 1 4242 4242 0 -1 4194560 10 0 0 0 1234 56 7 8 20 0 3 0 9 0 0";
  assert.equal(parseCpuTicks(line), 1290);
});

Deno.test("parseCpuTicks: refuses text that is not a stat line", () => {
  assert.throws(() => parseCpuTicks("no parenthesis here"), SyntaxError);
  assert.throws(() => parseCpuTicks("1 (x) S 1 2"), SyntaxError);
});

Deno.test("parseVmRssKiB: reads the VmRSS line only", () => {
  const status = "Name:\tdeno\nVmHWM:\t  90000 kB\nVmRSS:\t   51200 kB\nThreads:\t5\n";
  assert.equal(parseVmRssKiB(status), 51200);
  assert.throws(() => parseVmRssKiB("Name:\tkthread\n"), SyntaxError);
});

Deno.test("readCpuSeconds and readRssKiB read this process", async () => {
  if (Deno.build.os !== "linux") return;
  assert.ok((await readCpuSeconds(Deno.pid)) >= 0);
  assert.ok((await readRssKiB(Deno.pid)) > 0);
});
