import assert from "node:assert/strict";
import { charWidth, LineEditor, textWidth } from "./line_editor.ts";

Deno.test("line editor: typing, cursor moves, deletion and kills", () => {
  const editor = new LineEditor();
  assert.deepEqual(editor.feed("helo"), []);
  editor.feed("\x1b[Dl"); // left, insert
  assert.equal(editor.line, "hello");
  editor.feed("\x01X\x05Y"); // home, end
  assert.equal(editor.line, "XhelloY");
  editor.feed("\x7f\x08"); // two backspaces
  assert.equal(editor.line, "Xhell");
  editor.feed("\x01\x1b[3~"); // delete under cursor
  assert.equal(editor.line, "hell");
  editor.feed("\x05 there you\x17"); // Ctrl-W kills a word
  assert.equal(editor.line, "hell there ");
  editor.feed("\x1bb\x1bb\x0b"); // two words back, kill to end
  assert.equal(editor.line, "");
  editor.feed("abc def\x1b[1;5D\x15");
  assert.equal(editor.line, "def");
  assert.equal(editor.cursor, 0);
});

Deno.test("line editor: Ctrl-C clears the line, Ctrl-D quits only on an empty line", () => {
  const editor = new LineEditor();
  assert.deepEqual(editor.feed("half typed\x03"), [{ type: "interrupt", hadText: true }]);
  assert.equal(editor.line, "");
  assert.deepEqual(editor.feed("\x03"), [{ type: "interrupt", hadText: false }]);
  assert.deepEqual(editor.feed("ab\x01\x04"), []); // deletes the "a"
  assert.equal(editor.line, "b");
  assert.deepEqual(editor.feed("\x05\x7f\x04"), [{ type: "eof" }]);
});

Deno.test("line editor: Enter submits (CR LF once), history recalls with the draft kept", () => {
  const editor = new LineEditor();
  assert.deepEqual(editor.feed("one\r\ntwo\rthree\n"), [
    { type: "submit", line: "one" },
    { type: "submit", line: "two" },
    { type: "submit", line: "three" },
  ]);
  editor.feed("draft");
  editor.feed("\x1b[A");
  assert.equal(editor.line, "three");
  editor.feed("\x1b[A\x1b[A\x1b[A\x1b[A"); // stops at the oldest
  assert.equal(editor.line, "one");
  editor.feed("\x1b[B\x1b[B\x1b[B");
  assert.equal(editor.line, "draft");
});

Deno.test("line editor: escape sequences cut between chunks still work", () => {
  const editor = new LineEditor();
  editor.feed("ab\x1b");
  editor.feed("[");
  editor.feed("DX");
  assert.equal(editor.line, "aXb");
  editor.feed("\x1b[200~pasted\x1b[201~"); // bracketed-paste markers are not text
  assert.equal(editor.line, "aXpastedb");
});

Deno.test("line editor: a 2,000-character paste is one insertion and one redraw", () => {
  const editor = new LineEditor();
  const paste = "x".repeat(2000);
  assert.deepEqual(editor.feed(paste), []);
  assert.equal(editor.line, paste);
  const drawn = editor.render("> ", 80);
  // One row: the visible tail that fits, never the whole line.
  assert.ok(drawn.length < 100, `redraw is ${drawn.length} characters`);
  assert.ok(drawn.startsWith("\r> x") && drawn.endsWith("\x1b[K"));
});

Deno.test("line editor: horizontal scroll keeps the cursor in view", () => {
  const editor = new LineEditor();
  editor.feed("0123456789".repeat(3));
  const end = editor.render("> ", 20); // room 17
  assert.equal(end, "\r> " + "0123456789".repeat(3).slice(-17) + "\x1b[K");
  editor.feed("\x01");
  const start = editor.render("> ", 20);
  assert.equal(start, "\r> " + "0123456789".repeat(2).slice(0, 17) + "\x1b[K\r\x1b[2C");
});

Deno.test("line editor: completion extends to the common prefix or lists the candidates", () => {
  const editor = new LineEditor({
    completer: (line) => {
      const word = line.split(" ").at(-1)!;
      const all = ["alice ", "alfred ", "bob "];
      return [all.filter((c) => c.startsWith(word)), word];
    },
  });
  editor.feed("send b\t");
  assert.equal(editor.line, "send bob ");
  editor.feed("\x15send a\t");
  assert.equal(editor.line, "send al");
  assert.deepEqual(editor.feed("\t"), [{ type: "candidates", candidates: ["alice ", "alfred "] }]);
});

Deno.test("charWidth: wide, combining and plain characters", () => {
  assert.equal(charWidth("a"), 1);
  assert.equal(charWidth("世"), 2);
  assert.equal(charWidth("\u0301"), 0);
  assert.equal(textWidth("e\u0301世"), 3);
});
