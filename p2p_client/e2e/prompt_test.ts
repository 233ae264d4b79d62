/**
 * The prompt, end to end: commands through piped stdin (text output), and an interactive session
 * through a pseudo-terminal (util-linux `script`): completion, history, and incoming messages
 * printed without breaking the line being typed.
 */
import assert from "node:assert/strict";
import { ServerProcess } from "../../testing/server_process.ts";
import { ClientProcess, waitUntil } from "../../testing/client_process.ts";

const REPO = new URL("../../", import.meta.url);
const MAIN = new URL("p2p_client/main.ts", REPO).pathname;
const CONFIG = new URL("deno.json", REPO).pathname;
const WAIT = 60_000;

function clientArgs(server: string): string[] {
  return ["run", "--no-prompt", "-A", "--config", CONFIG, MAIN, "--ephemeral", "--server", server];
}

/** A child whose stdout is collected as text. */
function spawnText(command: string, args: string[]) {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { TERM: "xterm", COLUMNS: "200", LINES: "50" },
  }).spawn();
  const state = {
    out: "",
    err: "",
    /** The output without terminal control sequences. */
    get plain(): string {
      // deno-lint-ignore no-control-regex
      return this.out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    },
  };
  const decoder = new TextDecoder();
  const pumps = Promise.all([
    (async () => {
      for await (const chunk of child.stdout) state.out += decoder.decode(chunk, { stream: true });
    })(),
    (async () => {
      const d = new TextDecoder();
      for await (const chunk of child.stderr) state.err += d.decode(chunk, { stream: true });
    })(),
  ]);
  const writer = child.stdin.getWriter();
  return {
    child,
    state,
    write: (text: string) => writer.write(new TextEncoder().encode(text)),
    closeStdin: () => writer.close().catch(() => {}),
    async dispose() {
      await writer.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await child.status;
      await pumps;
    },
    async exit(): Promise<number> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 30_000)),
      ]);
      clearTimeout(timer);
      if (status === null) throw new Error(`no exit; output:\n${state.out}\n${state.err}`);
      await pumps;
      return status.code;
    },
  };
}

Deno.test("piped stdin: commands are read line by line, bad input gets help, EOF exits", async () => {
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const client = spawnText(Deno.execPath(), clientArgs(address));
  try {
    const peerId = await peer.registered();
    await waitUntil(() => /registered with/.test(client.state.out), WAIT, "registration line");
    await client.write(
      ["help", "id", "frobnicate", "connect nothex", "send", "list extra", `connect ${peerId}`]
        .join("\n") +
        "\n",
    );
    await waitUntil(() => /direct via udp/.test(client.state.out), WAIT, "direct path line");
    await client.write(`send ${peerId.slice(0, 10)} hello by prefix\nlist\n`);
    await peer.waitFor(
      (e) => e.type === "message" && e.text === "hello by prefix",
      WAIT,
      "message",
    );
    await client.closeStdin();
    assert.equal(await client.exit(), 0);
    const out = client.state.out;
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
  let hasScript = true;
  try {
    await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
  } catch {
    hasScript = false;
  }
  if (!hasScript) {
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
  const command = "exec " +
    [Deno.execPath(), ...clientArgs(address)].map((part) => `'${part}'`).join(" ");
  const tty = spawnText("script", ["-qfec", command, "/dev/null"]);
  try {
    const peerId = await peer.registered();
    await waitUntil(
      () => /registered with/.test(tty.state.plain),
      WAIT,
      "registration on the terminal",
    );
    // Tab completion of a command.
    await tty.write("he\t");
    await waitUntil(() => /> help/.test(tty.state.plain), WAIT, "completed command");
    await tty.write("\r");
    await waitUntil(() => /exit \| quit/.test(tty.state.plain), WAIT, "help text");
    // The peer connects to us: its ID becomes known, so it completes.
    const ourId = await waitForId(tty);
    await peer.command(`connect ${ourId}`);
    await waitUntil(() => /direct via udp/.test(tty.state.plain), WAIT, "peer line");
    await tty.write(`send ${peerId.slice(0, 4)}\t`);
    await waitUntil(() => tty.state.plain.includes(`send ${peerId} `), WAIT, "completed peer ID");
    // An incoming message while a line is being typed.
    await tty.write("partial");
    await waitUntil(() => tty.state.plain.endsWith("partial"), WAIT, "typed text echoed");
    await peer.command(`send ${ourId} incoming while typing`);
    await waitUntil(() => /incoming while typing/.test(tty.state.plain), WAIT, "incoming message");
    await waitUntil(
      () => /incoming while typing\n> send [0-9a-f]{40} partial/.test(tty.state.plain),
      WAIT,
      "prompt and typed line redrawn after the message",
    );
    await tty.write("\r");
    await peer.waitFor((e) => e.type === "message" && e.text === "partial", WAIT, "sent message");
    // History: arrow up recalls the last line.
    const typed = `> send ${peerId} partial`;
    const count = () => tty.state.plain.split(typed).length - 1;
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

async function waitForId(
  tty: { state: { plain: string }; write: (text: string) => Promise<void> },
) {
  const before = tty.state.plain.length;
  await tty.write("id\r");
  let id = "";
  await waitUntil(
    () => {
      const match = /\n([0-9a-f]{40})\n/.exec(tty.state.plain.slice(before));
      if (match) id = match[1];
      return match !== null;
    },
    WAIT,
    "id output",
  );
  return id;
}
