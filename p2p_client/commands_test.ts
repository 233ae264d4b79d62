import assert from "node:assert/strict";
import { completeLine, parseCommand, resolvePeerId } from "./commands.ts";

const A = "ab".repeat(20);
const B = "ac".repeat(20);

Deno.test("parseCommand reads every command", () => {
  assert.deepEqual(parseCommand("help"), { ok: true, command: { kind: "help" } });
  assert.deepEqual(parseCommand("  LIST "), { ok: true, command: { kind: "list" } });
  assert.deepEqual(parseCommand("id"), { ok: true, command: { kind: "id" } });
  assert.deepEqual(parseCommand("nat"), { ok: true, command: { kind: "nat" } });
  assert.equal(parseCommand("nat now").ok, false);
  assert.deepEqual(parseCommand("exit"), { ok: true, command: { kind: "exit" } });
  assert.deepEqual(parseCommand("quit"), { ok: true, command: { kind: "exit" } });
  assert.deepEqual(parseCommand(""), { ok: true, command: undefined });
  assert.deepEqual(parseCommand(`connect ${A}`), {
    ok: true,
    command: { kind: "connect", peer: A },
  });
  assert.deepEqual(parseCommand(`send ${A} hello  there `), {
    ok: true,
    command: { kind: "send", peer: A, text: "hello  there" },
  });
});

Deno.test("parseCommand resolves unique prefixes of known peers", () => {
  assert.deepEqual(parseCommand("send ab x", [A, B]), {
    ok: true,
    command: { kind: "send", peer: A, text: "x" },
  });
  const ambiguous = parseCommand("connect a", [A, B]);
  assert.equal(ambiguous.ok, false);
  assert.match((ambiguous as { error: string }).error, /ambiguous/);
});

Deno.test("parseCommand gives helpful errors for bad input", () => {
  const cases: [string, RegExp][] = [
    ["frobnicate", /unknown command "frobnicate"/],
    ["connect", /usage: connect/],
    ["connect a b", /usage: connect/],
    ["connect zz", /not a peer ID/],
    ["send", /usage: send/],
    [`send ${A}`, /usage: send/],
    ["send ff hi", /no known peer ID starts with "ff"/],
    ["list extra", /takes no arguments/],
  ];
  for (const [line, pattern] of cases) {
    const result = parseCommand(line, [A]);
    assert.equal(result.ok, false, line);
    assert.match((result as { error: string }).error, pattern, line);
  }
});

Deno.test("resolvePeerId accepts full IDs of unknown peers, lowercased", () => {
  assert.equal(resolvePeerId(A.toUpperCase(), []), A);
});

Deno.test("completeLine completes commands and peer IDs", () => {
  assert.deepEqual(completeLine("co", []), [["connect "], "co"]);
  assert.deepEqual(completeLine("", []).length, 2);
  assert.deepEqual(completeLine("send ab", [A, B]), [[A + " "], "ab"]);
  assert.deepEqual(completeLine("connect a", [A, B]), [[A + " ", B + " "], "a"]);
  assert.deepEqual(completeLine("send x hello", [A]), [[], "send x hello"]);
});
