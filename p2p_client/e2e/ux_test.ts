/**
 * The client as a person uses it (issue 16): each finding of the "tried as a new user" list is a
 * test here, through a pipe or a pseudo-terminal, against the real programs.
 */
import assert from "node:assert/strict";
import { ServerProcess } from "../../testing/server_process.ts";
import { ClientProcess } from "../../testing/client_process.ts";
import { hasScript, screenOf, startClient, waitFor } from "../../testing/text_process.ts";

const WAIT = 60_000;

async function skipWithoutScript(t: Deno.TestContext): Promise<boolean> {
  if (await hasScript()) return false;
  await t.step({ name: "skipped: util-linux `script` is not installed", ignore: true, fn() {} });
  return true;
}

Deno.test("usage and startup errors: one line saying what to do, exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (args: string[]) => {
      const client = startClient(args);
      await client.closeStdin();
      const code = await client.exit();
      return { code, err: client.err(), out: client.out() };
    };
    const both = await run(["--ephemeral", "--identity", `${dir}/x.json`]);
    assert.equal(both.code, 2);
    assert.match(both.err, /--ephemeral.*cannot be used with.*--identity/);

    const url = await run(["--ephemeral", "--server", "http://example.org:3478"]);
    assert.equal(url.code, 2);
    assert.match(url.err, /expected HOST\[:PORT\].*not a URL/);
    assert.doesNotMatch(url.err, /IPv6/);

    const proc = await run(["--identity", "/proc/nope/id.json", "--server", "127.0.0.1:1"]);
    assert.equal(proc.code, 2);
    assert.match(proc.err, /--identity PATH/);
    assert.doesNotMatch(proc.err, /--allow-all/);

    await Deno.writeTextFile(`${dir}/empty.json`, "{}");
    const config = await run(["--ephemeral", "--local-file", `${dir}/empty.json`]);
    assert.equal(config.code, 2);
    assert.match(config.err, /stun: .*missing/);
    assert.doesNotMatch(config.err, /a undefined/);

    // An identity key others can read is refused, as OpenSSH refuses such keys.
    const key = `${dir}/open.json`;
    const make = await run(["--identity", key, "--server", "127.0.0.1:1", "--exit-timeout", "0"]);
    assert.equal(make.code, 0);
    await Deno.chmod(key, 0o644);
    const open = await run(["--identity", key, "--server", "127.0.0.1:1"]);
    assert.equal(open.code, 2);
    assert.match(open.err, /permissions 0644 are too open.*chmod 600/);
    for (const result of [both, url, proc, config, open]) {
      assert.equal(result.err.trim().split("\n").length, 1, `one line: ${result.err}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quick start: a second client on the same identity is refused before it registers; with --ephemeral it works", async () => {
  await using server = await ServerProcess.start();
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const home = await Deno.makeTempDir();
  const env = { XDG_CONFIG_HOME: home };
  const first = ClientProcess.start({ servers, ephemeral: false, env });
  let third: ClientProcess | undefined;
  try {
    const firstId = await first.registered();
    // Terminal 2, same command: refused with what to do, and the first is not evicted.
    const second = startClient(["--json", "--server", servers[0]], { env });
    const code = await second.exit();
    assert.equal(code, 2);
    assert.match(
      second.err(),
      /in use by another client \(PID \d+\).*--ephemeral.*--identity PATH/,
    );
    assert.equal(second.err().trim().split("\n").length, 1);
    assert.ok(!second.out().includes('"registered"'), "refused before registering");
    // Terminal 2 as the README says: --ephemeral.
    third = ClientProcess.start({ servers });
    const thirdId = await third.registered();
    assert.notEqual(thirdId, firstId);
    await third.command(`connect ${firstId}`);
    await third.waitFor((e) => e.type === "peer" && e.state === "direct", WAIT, "direct");
    await third.command(`send ${firstId} hello from terminal 2`);
    await first.waitFor(
      (e) => e.type === "message" && e.text === "hello from terminal 2",
      WAIT,
      "message",
    );
    assert.ok(!first.events.some((e) => e.type === "error" && e.code === "replaced"));
  } finally {
    await third?.dispose();
    await first.dispose();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("server state: unreachable and refused are events with the reason, status says it, events carry ts", async () => {
  const lonely = ClientProcess.start({ servers: ["127.0.0.1:1"] });
  await using server = await ServerProcess.start({ args: ["--max-clients", "1"] });
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const first = ClientProcess.start({ servers });
  let second: ClientProcess | undefined;
  try {
    const unreachable = await lonely.waitFor(
      (e) => e.type === "server" && e.state === "unreachable",
      WAIT,
      "unreachable event",
    );
    assert.equal(unreachable.server, "127.0.0.1:1");
    assert.match(String(unreachable.reason), /refused|connect/i);
    assert.match(String(unreachable.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await lonely.command("status");
    const status = await lonely.waitFor((e) => e.type === "status", WAIT, "status");
    assert.equal(status.server, "unreachable");
    await first.registered();
    const registered = await first.waitFor(
      (e) => e.type === "server" && e.state === "registered",
      WAIT,
      "registered state",
    );
    assert.equal(registered.id, first.id);
    second = ClientProcess.start({ servers });
    const refused = await second.waitFor(
      (e) => e.type === "server" && e.state === "refused",
      WAIT,
      "refused event (server full)",
    );
    assert.ok(String(refused.reason).length > 0);
  } finally {
    await second?.dispose();
    await first.dispose();
    await lonely.dispose();
  }
});

Deno.test("a closed stdout ends the client quietly; a pending message is reported on stderr", async () => {
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const client = startClient([
    "--json",
    "--ephemeral",
    "--server",
    address,
    "--exit-timeout",
    "1",
  ]);
  try {
    const peerId = await peer.registered();
    await waitFor(() => client.out().includes('"registered"'), "registration", client.err);
    await client.write(`connect ${peerId}\n`);
    await waitFor(() => /"state":"direct"/.test(client.out()), "direct", client.out);
    peer.signal("SIGSTOP"); // the peer stops answering: the next message stays pending
    await client.write(`send ${peerId} stays pending\n`);
    await waitFor(() => client.out().includes('"sent"'), "sent", client.out);
    // The reader goes away (`| head -1`); the next output hits a closed pipe.
    await client.closeStdout();
    await client.write("id\nid\n");
    const code = await client.exit();
    assert.equal(code, 0);
    const err = client.err();
    assert.doesNotMatch(err, /Uncaught|EPIPE|Broken pipe|at \S+ \(/);
    assert.match(err, /stdout closed; waiting up to 1 s for 1 message\(s\)/);
    assert.match(
      err,
      /message 1 to [0-9a-f]{8}… (not delivered|unconfirmed)|message 1 to [0-9a-f]{40} not delivered/,
    );
  } finally {
    peer.signal("SIGCONT");
    await client.dispose();
    await peer.dispose();
  }
});

Deno.test("terminal: Ctrl-C clears the line, exit says what it waits for, Ctrl-C then reports the pending message", async (t) => {
  if (await skipWithoutScript(t)) return;
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const tty = startClient(["--ephemeral", "--server", address, "--exit-timeout", "3600"], {
    tty: true,
  });
  const screen = () => screenOf(tty.out()).join("\n");
  try {
    const peerId = await peer.registered();
    await waitFor(() => /registered with/.test(screen()), "registration", screen);
    await tty.write("half typed");
    await waitFor(() => screen().endsWith("> half typed"), "typed text", screen);
    await tty.write("\x03");
    await waitFor(() => screenOf(tty.out()).at(-1) === ">", "line cleared", screen);
    await tty.write(`connect ${peerId}\r`);
    await waitFor(() => /direct via udp/.test(screen()), "still running: connected", screen);
    peer.signal("SIGSTOP");
    await tty.write(`send ${peerId} never confirmed\r`);
    await waitFor(() => /message 1 queued/.test(screen()), "queued", screen);
    await tty.write("exit\r");
    await waitFor(
      () =>
        /waiting up to 3600 s for 1 message\(s\) to be confirmed \(1 to [0-9a-f]{8}…\); Ctrl-C/
          .test(screen()),
      "the wait says what it waits for",
      screen,
    );
    await tty.write("\x03");
    assert.equal(await tty.exit(), 0);
    assert.match(
      screen(),
      /message 1 to [0-9a-f]{40} not delivered|message 1 to [0-9a-f]{8}… unconfirmed/,
    );
  } finally {
    peer.signal("SIGCONT");
    await tty.dispose();
    await peer.dispose();
  }
});

Deno.test("terminal: a paste is drawn at once, logs print above the typed line, --timestamps", async (t) => {
  if (await skipWithoutScript(t)) return;
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const peer = ClientProcess.start({ servers: [address] });
  const tty = startClient(
    ["--ephemeral", "--server", address, "--log-level", "debug", "--timestamps"],
    { tty: true },
  );
  const rows = () => screenOf(tty.out());
  const screen = () => rows().join("\n");
  try {
    const peerId = await peer.registered();
    await waitFor(() => /\d\d:\d\d:\d\d registered with/.test(screen()), "timestamped", screen);
    // Debug logs arrive while a line is typed: each is its own row, the line is redrawn below.
    await tty.write("id\r");
    const idRow = /^\d\d:\d\d:\d\d ([0-9a-f]{40})$/;
    await waitFor(() => rows().some((row) => idRow.test(row)), "id", screen);
    const ourId = idRow.exec(rows().find((row) => idRow.test(row))!)![1];
    const before = rows().length;
    await tty.write("partial");
    await waitFor(() => rows().at(-1) === "> partial", "typed", screen);
    await peer.command(`connect ${ourId}`);
    await waitFor(() => /direct via udp/.test(screen()), "connected", screen);
    await waitFor(() => rows().at(-1) === "> partial", "line redrawn after the output", screen);
    const logged = rows().slice(before).filter((row) => /\[DBG\]/.test(row));
    assert.ok(logged.length > 0, `debug logs shown:\n${screen()}`);
    for (const row of rows()) {
      if (row.includes("partial")) assert.equal(row, "> partial", "a row broken by output");
    }
    // A 2,000-character paste: drawn in a few redraws, not echoed character by character.
    await tty.write("\x15send " + peerId + " ");
    await waitFor(() => rows().at(-1)!.endsWith(peerId.slice(-8)), "send typed", screen);
    const start = tty.out().length;
    const paste = "p".repeat(1999) + "q";
    await tty.write(paste);
    await tty.write("END");
    await waitFor(() => rows().at(-1)!.endsWith("qEND"), "paste drawn", screen);
    const drawn = tty.out().length - start;
    assert.ok(drawn < 2000, `the paste was echoed with ${drawn} characters of output`);
    await tty.write("\r");
    await peer.waitFor(
      (e) => e.type === "message" && e.text === paste + "END",
      WAIT,
      "the pasted message, intact",
    );
    await tty.write("exit\r");
    assert.equal(await tty.exit(), 0);
  } finally {
    await tty.dispose();
    await peer.dispose();
  }
});

Deno.test("names, contacts across restarts, safety numbers, presence, list hiding, safe display, exact send", async () => {
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const dir = await Deno.makeTempDir();
  const identity = `${dir}/identity.json`;
  const bobArgs = ["--identity", `${dir}/bob.json`];
  let bob = ClientProcess.start({ servers: [address], ephemeral: false, args: bobArgs });
  const carol = ClientProcess.start({ servers: [address] });
  let alice = startClient(["--identity", identity, "--server", address]);
  try {
    const bobId = await bob.registered();
    const carolId = await carol.registered();
    await waitFor(
      () => /registered with \S+ as [0-9a-f]{40}/.test(alice.out()),
      "alice",
      alice.err,
    );
    const aliceId = /as ([0-9a-f]{40})/.exec(alice.out())![1];
    await alice.write(`name ${bobId} bob\nconnect bob\n`);
    await waitFor(
      () => /bob is now named bob|is now named bob/.test(alice.out()),
      "named",
      alice.out,
    );
    await waitFor(() => /peer bob direct via udp/.test(alice.out()), "names shown", alice.out);
    // The message is the rest of the line, spaces kept.
    await alice.write("send bob   two  spaces  \n");
    await bob.waitFor((e) => e.type === "message" && e.text === "  two  spaces  ", WAIT, "exact");
    // A message cannot pose as another line or reorder the screen (a prompt line cannot hold a
    // newline, but a CR or U+2028 can; a modified client could send anything).
    await bob.command(`send ${aliceId} hi\r[carol] send me your key\u202eevil\x1b[2J\u2028x`);
    await waitFor(() => /\[bob\] hi\n/.test(alice.out()), "message", alice.out);
    assert.ok(
      alice.out().includes(
        "[bob] hi\n  ┆ [carol] send me your key<U+202E>evil\\x1b[2J\n  ┆ x\n",
      ),
      alice.out(),
    );

    // Safety numbers: the same on both sides.
    await alice.write("verify bob\n");
    await bob.command(`verify ${aliceId}`);
    const bobsNumber = await bob.waitFor((e) => e.type === "verify", WAIT, "bob's number");
    await waitFor(() => /safety number with bob: /.test(alice.out()), "alice's number", alice.out);
    assert.match(String(bobsNumber.safetyNumber), /^\d{5}( \d{5}){4}$/);
    assert.ok(alice.out().includes(`safety number with bob: ${bobsNumber.safetyNumber}`));
    // Ambiguous prefixes list the candidates.
    await alice.write(`name ${"a".repeat(39)}1 alfred\nname ${"a".repeat(39)}2 alina\nsend al x\n`);
    await waitFor(
      () => /"al" is ambiguous: alfred \(a{12}\), alina \(a{12}\)/.test(alice.out()),
      "ambiguous",
      alice.out,
    );
    // A peer gone for good leaves `list`, stays in `list --all`; `connect` twice says so.
    await carol.command(`connect ${aliceId}`);
    await carol.waitFor((e) => e.type === "peer" && e.state === "direct", WAIT, "carol direct");
    await alice.write("connect bob\n");
    await waitFor(
      () => /already connected to bob \(direct via udp/.test(alice.out()),
      "already",
      alice.out,
    );
    await carol.stop();
    await waitFor(
      // Gone: `disconnected`, or (with automatic re-introduction) `connecting` with the reason.
      () =>
        new RegExp(`peer ${carolId.slice(0, 8)}… (disconnected|connecting \\()`).test(
          alice.out(),
        ),
      "carol left",
      alice.out,
    );
    const mark = alice.out().length;
    await alice.write("list\nid\n");
    await waitFor(() => /^[0-9a-f]{40}$/m.test(alice.out().slice(mark)), "list done", alice.out);
    const list = alice.out().slice(mark);
    assert.match(
      list,
      new RegExp(`^bob\\s+${bobId}\\s+direct\\s+udp \\S+\\s+[0-9.]+ ms\\s+found: \\S+$`, "m"),
    );
    assert.match(list, /^alfred\s+a{39}1\s+disconnected\s+-\s+-$/m);
    assert.ok(!list.includes(carolId), "carol is gone for good");
    const markAll = alice.out().length;
    await alice.write("list --all\nid\n");
    await waitFor(
      () => /^[0-9a-f]{40}$/m.test(alice.out().slice(markAll)),
      "list --all",
      alice.out,
    );
    assert.ok(alice.out().slice(markAll).includes(carolId));
    // Restart: the contacts are remembered (bob is offline meanwhile).
    await bob.command(`name ${aliceId} alice`);
    await bob.waitFor((e) => e.type === "contact", WAIT, "bob names alice");
    assert.equal((await bob.stop()).code, 0);
    await alice.closeStdin();
    assert.equal(await alice.exit(), 0);
    alice = startClient(["--identity", identity, "--server", address]);
    await waitFor(() => /registered with/.test(alice.out()), "alice again", alice.err);
    const restart = alice.out().length;
    await alice.write("list\nid\n");
    await waitFor(
      () => /^[0-9a-f]{40}$/m.test(alice.out().slice(restart)),
      "list after restart",
      alice.out,
    );
    assert.match(
      alice.out().slice(restart),
      // Offline with when it was last seen, or (a client that remembers its peers) reconnecting.
      new RegExp(`^bob\\s+${bobId}\\s+(disconnected\\s+last seen |connecting )`, "m"),
    );
    // Bob comes back: each side has the other as a contact, so they find each other by
    // themselves (the newcomer asks the server at once) and alice announces it.
    bob = ClientProcess.start({ servers: [address], ephemeral: false, args: bobArgs });
    assert.equal(await bob.registered(), bobId);
    assert.ok(!alice.out().slice(restart).includes(carolId), "carol, gone, stays hidden");
    await waitFor(() => /^bob is online \(udp /m.test(alice.out()), "presence", alice.out);
    await bob.waitFor((e) => e.type === "presence" && e.name === "alice", WAIT, "bob sees alice");
    await alice.closeStdin();
    assert.equal(await alice.exit(), 0);
  } finally {
    await alice.dispose();
    await carol.dispose();
    await bob.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an offline ID: the cause (unknown-peer) comes before the message it fails", async () => {
  await using server = await ServerProcess.start();
  const client = ClientProcess.start({ servers: [`127.0.0.1:${server.tcpPort}`] });
  try {
    await client.registered();
    const nobody = "0123456789".repeat(4);
    await client.command(`connect ${nobody}\nsend ${nobody} lost`);
    const failed = await client.waitFor(
      (e) => e.type === "error" && e.code === "delivery-failed",
      WAIT,
      "the message reported failed",
    );
    const errors = client.of("error");
    assert.equal(errors[0].code, "unknown-peer", JSON.stringify(errors));
    assert.ok(errors.indexOf(failed) > 0);
  } finally {
    await client.dispose();
  }
});

Deno.test("a message refused at once is reported once: no 'queued' before 'not sent'", async () => {
  await using server = await ServerProcess.start();
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const a = ClientProcess.start({ servers });
  const b = ClientProcess.start({ servers });
  try {
    await a.registered();
    const bId = await b.registered();
    await a.command(`connect ${bId}`);
    await a.waitFor((e) => e.type === "peer" && e.state === "direct", WAIT, "direct");
    // One byte more than a message may hold (1 MiB): refused at once.
    await a.command(`send ${bId} ${"x".repeat((1 << 20) + 1)}`);
    const error = await a.waitFor(
      (e) => e.type === "error" && e.messageId !== undefined,
      WAIT,
      "not sent",
    );
    assert.match(String(error.message), /not sent|too large/);
    await a.command("id");
    await a.waitFor((e) => e.type === "id", WAIT, "later output");
    assert.ok(!a.events.some((e) => e.type === "sent" && e.messageId === error.messageId));
  } finally {
    await b.dispose();
    await a.dispose();
  }
});

Deno.test("exit with a stored identity: each unconfirmed message is reported as kept for the next start", async () => {
  await using server = await ServerProcess.start();
  const address = `127.0.0.1:${server.tcpPort}`;
  const dir = await Deno.makeTempDir();
  const peer = ClientProcess.start({ servers: [address] });
  const client = startClient([
    "--identity",
    `${dir}/identity.json`,
    "--server",
    address,
    "--exit-timeout",
    "3600",
  ]);
  try {
    const peerId = await peer.registered();
    await waitFor(() => /registered with/.test(client.out()), "registration", client.err);
    await client.write(`connect ${peerId}\n`);
    await waitFor(() => /direct via udp/.test(client.out()), "direct", client.out);
    peer.signal("SIGSTOP");
    await client.write(`send ${peerId} one\nsend ${peerId} two\n`);
    await waitFor(() => /message 2 queued/.test(client.out()), "queued", client.out);
    await client.closeStdin(); // exit: waits for the two messages
    await waitFor(
      () => /waiting up to 3600 s for 2 message\(s\) to be confirmed/.test(client.out()),
      "the wait",
      client.out,
    );
    client.signal("SIGINT"); // Ctrl-C: stop waiting
    assert.equal(await client.exit(), 0);
    for (const id of [1, 2]) {
      assert.match(
        client.out(),
        new RegExp(`message ${id} to [0-9a-f]{8}… not confirmed yet: kept, and sent again`),
      );
    }
  } finally {
    peer.signal("SIGCONT");
    await client.dispose();
    await peer.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--relay-only: the relayed line gives the true reason", async () => {
  await using server = await ServerProcess.start();
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const a = ClientProcess.start({ servers, args: ["--relay-only"] });
  const b = ClientProcess.start({ servers });
  try {
    await a.registered();
    const bId = await b.registered();
    await a.command(`connect ${bId}`);
    const relayed = await a.waitFor(
      (e) => e.type === "peer" && e.state === "relayed",
      WAIT,
      "relayed",
    );
    assert.equal(relayed.reason, "no direct candidates to try");
  } finally {
    await b.dispose();
    await a.dispose();
  }
});
