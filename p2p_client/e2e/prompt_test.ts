/**
 * The prompt, end to end: commands through piped stdin (text output), and an interactive session
 * through a pseudo-terminal (util-linux `script`): completion, history, and incoming messages
 * printed without breaking the line being typed.
 */
import assert from "node:assert/strict";
import { ServerProcess } from "../../testing/server_process.ts";
import { ClientProcess, waitUntil } from "../../testing/client_process.ts";
import { hasScript, startClient, type TextProcess } from "../../testing/text_process.ts";

const WAIT = 60_000;

function clientArgs(server: string): string[] {
  return ["--ephemeral", "--server", server];
}

/** A wide terminal, so no line of the prompt is cut. */
const WIDE = { COLUMNS: "200", LINES: "50" };

/** The output without terminal control sequences or carriage returns. */
function plain(process: TextProcess): string {
  // deno-lint-ignore no-control-regex
  return process.out().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}

Deno.test("piped stdin: commands are read line by line, bad input gets help, EOF exits", async () => {
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const client = startClient(clientArgs(address), { env: WIDE });
  try {
    const peerId = await peer.registered();
    await waitUntil(() => /registered with/.test(client.out()), WAIT, "registration line");
    await client.write(
      ["help", "id", "frobnicate", "connect nothex", "send", "list extra", `connect ${peerId}`]
        .join("\n") +
        "\n",
    );
    await waitUntil(() => /direct via udp/.test(client.out()), WAIT, "direct path line");
    await client.write(`send ${peerId.slice(0, 10)} hello by prefix\nlist\n`);
    await peer.waitFor(
      (e) => e.type === "message" && e.text === "hello by prefix",
      WAIT,
      "message",
    );
    await client.closeStdin();
    assert.equal(await client.exit(), 0);
    const out = client.out();
    assert.match(out, /connect <peer>/, "help text");
    assert.match(out, /^[0-9a-f]{40}$/m, "id");
    assert.match(out, /unknown command "frobnicate"/);
    assert.match(out, /no contact is named "nothex" \(a peer ID is 40 hex digits/);
    assert.match(out, /usage: send <peer> <message>/);
    assert.match(out, /usage: list \[--all\]/);
    assert.match(out, new RegExp(`${peerId}\\s+direct\\s+udp \\S+\\s+[0-9.]+ ms`), "list row");
    assert.match(out, /message 1 delivered/);
  } finally {
    await client.dispose();
    await peer.dispose();
  }
});

Deno.test("terminal: completion, history and messages that do not break the typed line", async (t) => {
  if (!(await hasScript())) {
    await t.step({
      name: "skipped: util-linux `script` is not installed",
      ignore: true,
      fn: () => {},
    });
    return;
  }
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const tty = startClient(clientArgs(address), { tty: true, env: WIDE });
  try {
    const peerId = await peer.registered();
    await waitUntil(
      () => /registered with/.test(plain(tty)),
      WAIT,
      "registration on the terminal",
    );
    // Tab completion of a command.
    await tty.write("he\t");
    await waitUntil(() => /> help/.test(plain(tty)), WAIT, "completed command");
    await tty.write("\r");
    await waitUntil(() => /exit \| quit/.test(plain(tty)), WAIT, "help text");
    // The peer connects to us: its ID becomes known, so it completes.
    const ourId = await waitForId(tty);
    await peer.command(`connect ${ourId}`);
    await waitUntil(() => /direct via udp/.test(plain(tty)), WAIT, "peer line");
    await tty.write(`send ${peerId.slice(0, 4)}\t`);
    await waitUntil(() => plain(tty).includes(`send ${peerId} `), WAIT, "completed peer ID");
    // An incoming message while a line is being typed.
    await tty.write("partial");
    await waitUntil(() => plain(tty).endsWith("partial"), WAIT, "typed text echoed");
    await peer.command(`send ${ourId} incoming while typing`);
    await waitUntil(() => /incoming while typing/.test(plain(tty)), WAIT, "incoming message");
    await waitUntil(
      () => /incoming while typing\n> send [0-9a-f]{40} partial/.test(plain(tty)),
      WAIT,
      "prompt and typed line redrawn after the message",
    );
    await tty.write("\r");
    await peer.waitFor((e) => e.type === "message" && e.text === "partial", WAIT, "sent message");
    // History: arrow up recalls the last line.
    const typed = `> send ${peerId} partial`;
    const count = () => plain(tty).split(typed).length - 1;
    const before = count();
    await tty.write("\x1b[A");
    await waitUntil(() => count() > before, WAIT, "history recall");
    await tty.write("\x15exit\r");
    assert.equal(await tty.exit(), 0);
  } finally {
    await tty.dispose();
    await peer.dispose();
  }
});

async function waitForId(tty: TextProcess) {
  const before = plain(tty).length;
  await tty.write("id\r");
  let id = "";
  await waitUntil(
    () => {
      const match = /\n([0-9a-f]{40})\n/.exec(plain(tty).slice(before));
      if (match) id = match[1];
      return match !== null;
    },
    WAIT,
    "id output",
  );
  return id;
}
