import assert from "node:assert/strict";
import { freeName, numberedName, safeBaseName } from "./safe_name.ts";

Deno.test("safe names: path components, traversal and absolute paths are dropped", () => {
  assert.equal(safeBaseName("../../etc/passwd"), "passwd");
  assert.equal(safeBaseName("/etc/shadow"), "shadow");
  assert.equal(safeBaseName("..\\..\\Windows\\system.ini"), "system.ini");
  assert.equal(safeBaseName("C:\\evil.exe"), "evil.exe");
  assert.equal(safeBaseName("dir/"), "file");
  assert.equal(safeBaseName(".."), "file");
  assert.equal(safeBaseName("."), "file");
  assert.equal(safeBaseName("..."), "file");
  assert.equal(safeBaseName(""), "file");
  assert.equal(safeBaseName(".bashrc"), "bashrc");
  assert.equal(safeBaseName("  .. spaced .txt. "), "spaced .txt");
});

Deno.test("safe names: NUL, control, bidi and Windows-forbidden characters are replaced", () => {
  assert.equal(safeBaseName("a\u0000b.txt"), "a_b.txt");
  assert.equal(safeBaseName("line\nbreak\r.txt"), "line_break_.txt");
  assert.equal(safeBaseName('what?<>:"|*.txt'), "what_______.txt");
  assert.equal(safeBaseName("invoice\u202Efdp.exe"), "invoice_fdp.exe");
  assert.equal(safeBaseName("\u001b[31mred"), "_[31mred");
});

Deno.test("safe names: Windows reserved names get a prefix; long names keep the extension", () => {
  assert.equal(safeBaseName("CON"), "_CON");
  assert.equal(safeBaseName("nul.txt"), "_nul.txt");
  assert.equal(safeBaseName("com1.tar.gz"), "com1.tar.gz"); // stem "com1.tar" is not reserved
  assert.equal(safeBaseName("Lpt9.log"), "_Lpt9.log");
  assert.equal(safeBaseName("console.log"), "console.log");
  const long = safeBaseName("é".repeat(300) + ".jpeg");
  assert.ok(new TextEncoder().encode(long).length <= 200);
  assert.ok(long.endsWith(".jpeg") && long.startsWith("éé"));
  assert.equal(safeBaseName("e\u0301.txt"), "é.txt"); // NFC
});

Deno.test("safe names: never overwrite: name (1).ext, (2), ...", () => {
  assert.equal(numberedName("report.pdf", 0), "report.pdf");
  assert.equal(numberedName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedName("archive.tar.gz", 3), "archive.tar (3).gz");
  assert.equal(numberedName("README", 2), "README (2)");
  const taken = new Set(["a.txt", "a (1).txt", "a (2).txt"]);
  assert.equal(freeName("a.txt", (n) => taken.has(n)), "a (3).txt");
  assert.equal(freeName("b.txt", (n) => taken.has(n)), "b.txt");
  assert.throws(() => freeName("x", () => true, 5), RangeError);
});
