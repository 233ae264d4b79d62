import assert from "node:assert/strict";
import { completeLine, parseCommand, resolvePeerId } from "./commands.ts";

const A = "ab".repeat(20);
const B = "ac".repeat(20);

Deno.test("parseCommand reads every command", () => {
  assert.deepEqual(parseCommand("help"), { ok: true, command: { kind: "help" } });
  assert.deepEqual(parseCommand("  LIST "), { ok: true, command: { kind: "list", all: false } });
  assert.deepEqual(parseCommand("list --all"), { ok: true, command: { kind: "list", all: true } });
  assert.deepEqual(parseCommand("status"), { ok: true, command: { kind: "status" } });
  assert.deepEqual(parseCommand(`verify ${A}`), { ok: true, command: { kind: "verify", peer: A } });
  assert.deepEqual(parseCommand(`forget ${A}`), { ok: true, command: { kind: "forget", peer: A } });
  assert.deepEqual(parseCommand(`name ${A} alice`), {
    ok: true,
    command: { kind: "name", peer: A, name: "alice" },
  });
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
});

Deno.test("send keeps the message exactly: the rest of the line after one separator", () => {
  for (const text of ["hello  there ", "  leading", "trailing   ", " ", "tab\there"]) {
    assert.deepEqual(parseCommand(`send ${A} ${text}`), {
      ok: true,
      command: { kind: "send", peer: A, text },
    });
  }
  assert.deepEqual(parseCommand(`  send ${A} x`), {
    ok: true,
    command: { kind: "send", peer: A, text: "x" },
  });
});

Deno.test("parseCommand resolves unique prefixes of known peers", () => {
  assert.deepEqual(parseCommand("send ab x", [A, B]), {
    ok: true,
    command: { kind: "send", peer: A, text: "x" },
  });
  const ambiguous = parseCommand("connect a", [A, B]);
  assert.equal(ambiguous.ok, false);
  assert.match((ambiguous as { error: string }).error, /ambiguous: abababababab, acacacacacac/);
});

Deno.test("parseCommand gives helpful errors for bad input", () => {
  const cases: [string, RegExp][] = [
    ["frobnicate", /unknown command "frobnicate"/],
    ["connect", /usage: connect/],
    ["connect a b", /usage: connect/],
    ["connect zz", /not a peer ID/],
    ["send", /usage: send/],
    [`send ${A}`, /usage: send/],
    ["send ff hi", /no known peer ID or name starts with "ff"/],
    [`send ${A} `, /usage: send/],
    ["list extra", /usage: list/],
    ["name", /usage: name/],
    ["id extra", /takes no arguments/],
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
  const names = new Map([[A, "alice"]]);
  assert.deepEqual(completeLine("verify al", [A, B], names), [["alice "], "al"]);
  assert.deepEqual(completeLine("send a", [A, B], names), [["alice ", B + " "], "a"]);
});
