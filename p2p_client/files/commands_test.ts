import assert from "node:assert/strict";
import { parseFileCommand } from "./commands.ts";

Deno.test("file commands: parsing", () => {
  assert.deepEqual(parseFileCommand("sendfile ab12 /tmp/my file.txt"), {
    kind: "sendfile",
    peer: "ab12",
    path: "/tmp/my file.txt",
  });
  assert.deepEqual(parseFileCommand('  SENDFILE ab "quoted name.pdf" '), {
    kind: "sendfile",
    peer: "ab",
    path: "quoted name.pdf",
  });
  assert.deepEqual(parseFileCommand("sendfile ab"), { error: "usage: sendfile <peer_id> <path>" });
  assert.deepEqual(parseFileCommand("files"), { kind: "files" });
  assert.deepEqual(parseFileCommand("files x"), { error: "usage: files" });
  assert.deepEqual(parseFileCommand("cancel 3FA2"), { kind: "cancel", transfer: "3fa2" });
  assert.deepEqual(parseFileCommand("accept 0123"), { kind: "accept", transfer: "0123" });
  assert.match((parseFileCommand("reject") as { error: string }).error, /usage: reject/);
  assert.match((parseFileCommand("cancel ../x") as { error: string }).error, /usage: cancel/);
  assert.equal(parseFileCommand("send ab hello"), undefined);
  assert.equal(parseFileCommand(""), undefined);
});
