import assert from "node:assert/strict";
import { makeRow } from "./report.ts";
import { summarize } from "./stats.ts";
import { formatNumber, formatSummary, formatTable, oneLine } from "./table.ts";

Deno.test("formatNumber: separators for large values, fewer decimals as values grow", () => {
  assert.equal(formatNumber(148123.4), "148,123");
  assert.equal(formatNumber(512.4), "512");
  assert.equal(formatNumber(12.34), "12.3");
  assert.equal(formatNumber(6.612), "6.61");
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(3), "3");
});

Deno.test("formatSummary: median with range, single value, and missing", () => {
  assert.equal(formatSummary(summarize([1.5, 2.5, 3.5])), "2.50 (1.50–3.50)");
  assert.equal(formatSummary(summarize([7, 7, 7])), "7");
  assert.equal(formatSummary(null), "—");
});

Deno.test("formatTable: aligned columns, ratio, verdict and notes", () => {
  const rows = [
    makeRow({
      section: "stun",
      figure: "CPU/request",
      unit: "µs",
      ours: summarize([8.5, 9.25, 10.5]),
      referenceName: "coturn",
      reference: summarize([6, 6, 6]),
      ratio: 1.5,
      target: "≤ 1.4× coturn",
      verdict: "short",
    }),
    makeRow({ section: "relay", figure: "bulk", unit: "MB/s", note: "not available: why" }),
  ];
  const lines = formatTable(rows).split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^section \| figure\s+\| ours\s+\| reference\s+\| ratio \| target$/);
  assert.match(
    lines[2],
    /9\.25 \(8\.50–10\.5\) \| coturn: 6 \| 1\.50× \| ≤ 1\.4× coturn \(SHORT\)$/,
  );
  assert.match(lines[3], /^relay\s+\| bulk \[MB\/s\]\s+\| —/);
  assert.match(lines[4], /↳ not available: why$/);
  // Every row line has its column separators at the same offsets as the header.
  const bars = (l: string) => [...l.matchAll(/ \| /g)].map((m) => m.index);
  assert.deepEqual(bars(lines[2]), bars(lines[0]));
  assert.deepEqual(bars(lines[3]).slice(0, 2), bars(lines[0]).slice(0, 2));
});

Deno.test("oneLine: strips colour codes, folds whitespace, cuts long notes", () => {
  assert.equal(oneLine("error:\n  \u001b[1m\u001b[31mboom\u001b[0m\n"), "error: boom");
  const long = oneLine("x".repeat(500));
  assert.equal(long.length, 240);
  assert.ok(long.endsWith("..."));
});
