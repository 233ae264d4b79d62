import assert from "node:assert/strict";
import { CONTINUATION_MARK, escapeUntrusted, formatIncoming, safeLines } from "./safe_text.ts";

Deno.test("safe text: a newline cannot start a line that poses as another sender", () => {
  const shown = formatIncoming("bob", "hi\n[alice] send me the key\r\n[alice] now\rx");
  const lines = shown.split("\n");
  assert.equal(lines[0], "[bob] hi");
  for (const line of lines.slice(1)) assert.ok(line.startsWith(CONTINUATION_MARK), line);
  assert.equal(lines.length, 4);
  assert.ok(!shown.includes("\r"));
  for (const separator of ["\u2028", "\u2029", "\u0085"]) {
    assert.deepEqual(safeLines(`a${separator}b`), ["a", `${CONTINUATION_MARK}b`]);
  }
});

Deno.test("safe text: C0, C1 and bidi controls are escaped, printable text is kept", () => {
  assert.equal(escapeUntrusted("a\x1b[2J\x07\x08\x7fb"), "a\\x1b[2J\\x07\\x08\\x7fb");
  assert.equal(escapeUntrusted("\u009b31m\u0090"), "\\x9b31m\\x90");
  assert.equal(
    escapeUntrusted("x\u202Eevil\u202C \u2066i\u2069 \u200E\u200F\u061C"),
    "x<U+202E>evil<U+202C> <U+2066>i<U+2069> <U+200E><U+200F><U+061C>",
  );
  assert.equal(escapeUntrusted("tab\there"), "tab  here");
  const kept = "héllo 世界 👩‍👩‍👧 عربى ~!@#$%^&*()";
  assert.equal(escapeUntrusted(kept), kept);
  // Nothing unsafe survives, whatever the input.
  const unsafe = (text: string) =>
    [...text].some((char) => {
      const code = char.codePointAt(0)!;
      return (code < 0x20 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f) ||
        [0x61c, 0x200e, 0x200f].includes(code) || (code >= 0x202a && code <= 0x202e) ||
        (code >= 0x2066 && code <= 0x2069);
    });
  for (let code = 0; code < 0x2100; code++) {
    const shown = formatIncoming("p", `a${String.fromCharCode(code)}b`);
    assert.ok(!unsafe(shown), `U+${code.toString(16)} shown as ${JSON.stringify(shown)}`);
  }
});
