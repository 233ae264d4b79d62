import assert from "node:assert/strict";
import { ContactBook } from "./contacts.ts";
import { Prompt, type PromptIO, type PromptTarget } from "./prompt.ts";

const A = "ab".repeat(20);

function fakeTarget(sent: [string, string][] = []): PromptTarget {
  return {
    id: "ef".repeat(20),
    knownPeers: [A],
    connect() {},
    send(peer, text) {
      sent.push([peer, text]);
      return sent.length;
    },
    list: () => [{ peer: A, state: "direct", path: "udp 127.0.0.1:1", rttMs: 1 }],
    pendingMessages: 0,
    rejectedPackets: 0,
    natReport: () => Promise.reject(new Error("no NAT report in this test")),
  };
}

/** Input fed by the test, output recorded write by write; deferred callbacks run on demand. */
function fakeIO() {
  const writes: string[] = [];
  const inputs: ((chunk: Uint8Array | null) => void)[] = [];
  const queued: (Uint8Array | null)[] = [];
  const deferred: (() => void)[] = [];
  let closed = false;
  const io: PromptIO = {
    read: () =>
      queued.length > 0
        ? Promise.resolve(queued.shift()!)
        : new Promise((resolve) => inputs.push(resolve)),
    write(text) {
      if (closed) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      writes.push(text);
    },
    setRaw() {},
    columns: () => 80,
  };
  return {
    io,
    writes,
    defer: (callback: () => void) => deferred.push(callback),
    runDeferred: () => deferred.splice(0).forEach((callback) => callback()),
    type(text: string | null) {
      const chunk = text === null ? null : new TextEncoder().encode(text);
      const waiting = inputs.shift();
      if (waiting) waiting(chunk);
      else queued.push(chunk);
    },
    closeOutput: () => (closed = true),
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("prompt: a 2,000-character paste is one redraw; Enter sends it exactly", async () => {
  const sent: [string, string][] = [];
  const fake = fakeIO();
  const prompt = new Prompt(fakeTarget(sent), {
    io: fake.io,
    terminal: true,
    json: false,
    defer: fake.defer,
  });
  prompt.start();
  await tick();
  const before = fake.writes.length;
  const text = "  " + "x".repeat(2000) + "  ";
  fake.type(`send ${A} ${text}`);
  await tick();
  assert.equal(fake.writes.length - before, 1, "one redraw for the whole chunk");
  assert.ok(fake.writes.at(-1)!.length < 100);
  fake.type("\r");
  await tick();
  assert.deepEqual(sent, [[A, text]]);
  prompt.close();
  assert.equal(await prompt.finished, "exit");
});

Deno.test("prompt: output is printed above the typed line, which is redrawn", async () => {
  const fake = fakeIO();
  const contacts = ContactBook.inMemory();
  contacts.setName(A, "alice");
  const prompt = new Prompt(fakeTarget(), {
    io: fake.io,
    terminal: true,
    json: false,
    contacts,
    defer: fake.defer,
  });
  prompt.start();
  assert.equal(fake.writes.at(-1), "\r(connecting) > \x1b[K", "the prompt shows the server state");
  prompt.print({ type: "server", state: "registered", server: "127.0.0.1:3478", id: A });
  assert.equal(fake.writes.at(-1), "\r> \x1b[K");
  fake.type("half");
  await tick();
  prompt.print({ type: "message", from: A, text: "hi" });
  prompt.log("2026-11-30 12:00:00.000 +00:00 [DBG] p2p-client: something\n");
  fake.runDeferred();
  const last = fake.writes.at(-1)!;
  assert.equal(
    last,
    "\r\x1b[K[alice] hi\r\n2026-11-30 12:00:00.000 +00:00 [DBG] p2p-client: something\r\n" +
      "\r> half\x1b[K",
  );
  // Ctrl-C clears the line and does not quit.
  fake.type("\x03");
  await tick();
  assert.equal(fake.writes.at(-1), "\r> \x1b[K");
  fake.type("\x04"); // Ctrl-D on the empty line quits
  assert.equal(await prompt.finished, "exit");
});

Deno.test("prompt: a closed stdout ends the prompt quietly", async () => {
  const fake = fakeIO();
  const prompt = new Prompt(fakeTarget(), {
    io: fake.io,
    terminal: false,
    json: true,
    defer: fake.defer,
    wallClock: () => Date.UTC(2026, 10, 30, 12),
  });
  prompt.start();
  fake.type("id\n");
  await tick();
  fake.runDeferred();
  assert.equal(
    fake.writes.at(-1),
    `{"type":"id","id":"${"ef".repeat(20)}","ts":"2026-11-30T12:00:00.000Z"}\n`,
  );
  fake.closeOutput();
  fake.type("id\n");
  await tick();
  fake.runDeferred();
  assert.equal(await prompt.finished, "output-closed");
  assert.equal(prompt.outputClosed, true);
});

/** A tiny terminal: what the writes leave on screen (\r, \n, ESC[K, ESC[J, ESC[nA, ESC[nC). */
function screenOf(writes: string[]): string[] {
  const rows: string[][] = [[]];
  let r = 0;
  let c = 0;
  const text = writes.join("");
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\r") c = 0;
    else if (ch === "\n") {
      r++;
      rows[r] ??= [];
    } else if (ch === "\x1b") {
      // deno-lint-ignore no-control-regex
      const m = /^\x1b\[(\d*)([A-Za-z])/.exec(text.slice(i))!;
      const n = Number(m[1] || "1");
      if (m[2] === "K") rows[r].length = Math.min(rows[r].length, c);
      else if (m[2] === "J") {
        rows[r].length = Math.min(rows[r].length, c);
        rows.length = r + 1;
      } else if (m[2] === "A") r = Math.max(0, r - n);
      else if (m[2] === "C") c += n;
      i += m[0].length - 1;
    } else {
      rows[r][c++] = ch;
    }
  }
  return rows.map((row) => Array.from(row, (ch) => ch ?? " ").join(""));
}

Deno.test("prompt: concurrent transfers keep one progress row each above the typed line", async () => {
  const fake = fakeIO();
  const prompt = new Prompt(fakeTarget(), {
    io: fake.io,
    terminal: true,
    json: false,
    defer: fake.defer,
  });
  prompt.start();
  prompt.print({ type: "server", state: "registered", server: "127.0.0.1:3478", id: A });
  const file = (id: string, name: string, bytes: number, state = "progress") => ({
    type: "file" as const,
    id: id.repeat(32),
    peer: A,
    direction: "receive" as const,
    name,
    bytes,
    size: 100_000_000,
    state: state as "progress",
    rate: 10_000_000,
    etaSeconds: 3,
  });
  prompt.print(file("a", "one.bin", 10_000_000));
  prompt.print(file("b", "two.bin", 20_000_000));
  prompt.print({ type: "message", from: A, text: "hi" });
  fake.runDeferred();
  for (let i = 1; i <= 5; i++) {
    prompt.print(file("a", "one.bin", 10_000_000 + i * 1_000_000));
    prompt.print(file("b", "two.bin", 20_000_000 + i * 2_000_000));
  }
  let screen = screenOf(fake.writes);
  assert.equal(screen.length, 4, screen.join("\n"));
  assert.equal(screen[0], "[abababab…] hi");
  assert.match(screen[1], /^← one\.bin \[[█░]+\] 15% 15\.0 MB\/100 MB .* from ab/);
  assert.match(screen[2], /^← two\.bin \[[█░]+\] 30% 30\.0 MB\/100 MB /);
  assert.equal(screen[3], "> ");
  // One ends: its line goes to the log, its row away; the other row stays.
  prompt.print({
    ...file("a", "one.bin", 100_000_000),
    state: "received",
    path: "/d/one.bin",
    sha256: "ab".repeat(32),
  });
  fake.runDeferred();
  screen = screenOf(fake.writes);
  assert.equal(screen.length, 4, screen.join("\n"));
  assert.match(screen[1], /one\.bin .* saved to \/d\/one\.bin/);
  assert.match(screen[2], /^← two\.bin .* 30% /);
  assert.equal(screen[3], "> ");
  // Typing and submitting a command: the rows move below the submitted line.
  fake.type("id\r");
  await tick();
  fake.runDeferred();
  screen = screenOf(fake.writes);
  assert.ok(screen.includes("> id"), screen.join("\n"));
  assert.equal(screen.at(-1), "> ");
  assert.equal(screen.filter((row) => row.includes("two.bin")).length, 1, screen.join("\n"));
  prompt.close();
});

Deno.test("prompt: a refused registration is one line, not repeated by the state line", async () => {
  const fake = fakeIO();
  const prompt = new Prompt(fakeTarget(), {
    io: fake.io,
    terminal: false,
    json: false,
    defer: fake.defer,
  });
  prompt.start();
  prompt.print({
    type: "refused",
    server: "s:1",
    code: "server-full",
    message: "full",
    during: "registration",
  });
  prompt.print({ type: "server", state: "refused", server: "s:1", reason: "server-full: full" });
  prompt.print({ type: "declined", peer: A });
  fake.runDeferred();
  const text = fake.writes.join("");
  assert.equal(text.match(/refused/g)?.length, 1, text);
  assert.match(text, /server s:1 refused the registration \(server-full\): full/);
  assert.match(text, /declined a connection from abab/);
  prompt.close();
  await prompt.finished;
});
