import assert from "node:assert/strict";
import {
  FileProgressView,
  finalLine,
  formatBytes,
  formatEta,
  printable,
  progressLine,
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

Deno.test("progress view: bars drawn with cli-progress, one per transfer, removed at the end", () => {
  let out = "";
  const stream = { isTTY: true, columns: 120, write: (s: string) => (out += s, true) };
  const view = new FileProgressView(stream, 1000);
  view.update(base);
  assert.match(out, /offers holiday\.mp4 \(50\.0 MB\): accept 01234567/);
  view.update({ ...base, state: "progress", bytes: 25_000_000, rate: 5_000_000, etaSeconds: 5 });
  view.update({ ...base, id: "f".repeat(32), direction: "send", name: "b.bin", state: "offered" });
  assert.equal(view.bars, 2);
  view.update({
    ...base,
    state: "received",
    bytes: 50_000_000,
    path: "/dl/holiday.mp4",
    sha256: "cd".repeat(32),
  });
  assert.equal(view.bars, 1);
  view.stop();
  assert.match(out, /holiday\.mp4 \[[█░]+\] +50% \| 25\.0 MB\/50\.0 MB \| 5\.00 MB\/s \| ETA 5 s/);
  assert.match(out, /saved to \/dl\/holiday\.mp4/);
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
