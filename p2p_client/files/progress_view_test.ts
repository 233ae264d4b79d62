import assert from "node:assert/strict";
import {
  finalLine,
  formatBytes,
  formatEta,
  printable,
  progressLine,
  TransferStatusArea,
} from "./progress_view.ts";
import type { FileEvent } from "./types.ts";

const base: FileEvent = {
  type: "file",
  id: "0123456789abcdef0123456789abcdef",
  peer: "c0ffee".padEnd(40, "0"),
  direction: "receive",
  name: "holiday.mp4",
  bytes: 0,
  size: 50_000_000,
  state: "offered",
};

Deno.test("progress view: formats", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.50 MB");
  assert.equal(formatBytes(12_340_000), "12.3 MB");
  assert.equal(formatBytes(2_000_000_000_000), "2.00 TB");
  assert.equal(formatEta(undefined), "–");
  assert.equal(formatEta(45.2), "45 s");
  assert.equal(formatEta(200), "3 min 20 s");
  assert.equal(formatEta(7500), "2 h 05 min");
  assert.equal(finalLine({ ...base, state: "progress" }), undefined);
  assert.match(
    finalLine({ ...base, state: "received", path: "/d/holiday.mp4", sha256: "ab".repeat(32) })!,
    /^← holiday\.mp4 \(50\.0 MB\) from c0ffee00: saved to \/d\/holiday\.mp4 \(SHA-256 abab/,
  );
  assert.match(
    finalLine({ ...base, direction: "send", state: "failed", reason: "x" })!,
    /to c0ffee00: failed: x$/,
  );
});

Deno.test("progress view: one status row per running transfer, cut to the width, gone at the end", () => {
  const area = new TransferStatusArea(3);
  assert.equal(area.update(base, "alice"), false, "an offer is printed, not a row");
  assert.equal(
    area.update(
      { ...base, state: "progress", bytes: 25_000_000, rate: 5e6, etaSeconds: 5 },
      "alice",
    ),
    true,
  );
  const other = { ...base, id: "f".repeat(32), direction: "send" as const, name: "b.bin" };
  area.update({ ...other, state: "progress", bytes: 1_000_000 }, "bob");
  assert.equal(area.size, 2);
  const rows = area.rows(200);
  assert.equal(rows.length, 2);
  assert.match(
    rows[0],
    /^← holiday\.mp4 \[[█░]+\] 50% 25\.0 MB\/50\.0 MB 5\.00 MB\/s ETA 5 s from alice$/,
  );
  assert.match(rows[1], /^→ b\.bin .* 2% .* to bob$/);
  // Updated in place: still two rows.
  area.update({ ...other, state: "progress", bytes: 2_000_000 }, "bob");
  assert.equal(area.rows(200).length, 2);
  assert.match(area.rows(200)[1], / 4% /);
  // Never wider than the terminal (a wrapped row would break the redraw).
  for (const row of area.rows(30)) assert.ok([...row].length <= 29, row);
  // More transfers than rows: the last row sums up the rest.
  for (const id of ["1", "2", "3"]) {
    area.update({ ...base, id: id.repeat(32), state: "progress" }, "carol");
  }
  assert.equal(area.rows(200).length, 3);
  assert.match(area.rows(200)[2], /and 3 more transfers/);
  // An ending removes the row.
  assert.equal(area.update({ ...other, state: "sent", sha256: "ab".repeat(32) }, "bob"), true);
  assert.equal(area.size, 4);
  assert.equal(area.update({ ...other, state: "failed", reason: "x" }, "bob"), false);
});

Deno.test("progress view: one line per progress event, bar by cli-progress", () => {
  assert.equal(
    progressLine({ ...base, state: "progress", bytes: 21_000_000, rate: 7_000_000, etaSeconds: 4 }),
    "← holiday.mp4 [████████░░░░░░░░░░░░] 42% 21.0 MB/50.0 MB 7.00 MB/s ETA 4 s",
  );
  assert.match(progressLine({ ...base, state: "progress", bytes: 0, size: 0 }), /100%/);
});

Deno.test("progress view: names from peers cannot drive the terminal", () => {
  assert.equal(printable("a\u001b[2Jb\u202ec\u0007"), "a\ufffd[2Jb\ufffdc\ufffd");
  const line = progressLine({ ...base, name: "x\u001b]0;pwned\u0007", state: "progress" });
  assert.ok(!line.includes("\u001b") && !line.includes("\u0007"));
  assert.ok(
    !finalLine({ ...base, name: "\u001b[31m", state: "failed", reason: "r" })!.includes("\u001b"),
  );
});
