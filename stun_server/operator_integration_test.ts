/**
 * The server as an operator runs it, as a real process: metrics and the status page (checked in
 * headless Chromium against the server's real state), SIGHUP totals, clean exits under
 * `deno task server` on SIGINT (also when the signal arrives twice), a log destination that goes
 * away, and one-line startup errors with their exit codes.
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import { type ServerMessage, SignalingConnection } from "../shared/signaling/mod.ts";
import { findChromium, HeadlessPage } from "../testing/headless_chromium.ts";
import { ServerProcess } from "../testing/server_process.ts";
import { ClientProcess } from "../testing/client_process.ts";

const WAIT_MS = 15_000;
const REPO = new URL("../", import.meta.url);

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = WAIT_MS) {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface Client {
  me: Identity;
  conn: SignalingConnection;
  messages: ServerMessage[];
  relayed: number;
  done: Promise<void>;
}

async function client(host: string, port: number): Promise<Client> {
  const me = await Identity.generate();
  const conn = await SignalingConnection.connect({ hostname: host, port });
  await conn.register(me, [{ host: "192.168.5.5", port: 40_000 }], WAIT_MS);
  const c: Client = { me, conn, messages: [], relayed: 0, done: Promise.resolve() };
  c.done = (async () => {
    for await (const event of conn) {
      if (event.kind === "relay") c.relayed++;
      else {
        c.messages.push(event.message);
        if (event.message.type === "ping") conn.send({ type: "pong", t: event.message.t });
      }
    }
  })();
  return c;
}

/** Introduces a to b and sends `count` relay frames of `size` bytes from a to b. */
async function relayBetween(a: Client, b: Client, count: number, size = 1000): Promise<void> {
  if (!a.messages.some((m) => m.type === "introduce")) {
    a.conn.send({ type: "connect", peer: b.me.id });
    await until(() => a.messages.some((m) => m.type === "introduce"), "the introduction");
  }
  const target = b.relayed + count;
  for (let i = 0; i < count; i++) a.conn.sendRelay(b.me.id, new Uint8Array(size));
  await until(() => b.relayed >= target, "relayed frames");
}

function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(match, `no ${name} in\n${text}`);
  return Number(match[1]);
}

Deno.test("operator: /metrics and the status page in Chromium show the real state", async () => {
  const server = await ServerProcess.start({ args: ["--metrics", "127.0.0.1:0"] });
  const base = `http://127.0.0.1:${server.announcement.metrics!.port}`;
  const a = await client(server.host, server.tcpPort);
  const b = await client(server.host, server.tcpPort);
  try {
    await relayBetween(a, b, 20);
    const first = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(first, "p2p_registered_clients"), 2);
    assert.equal(metricValue(first, "p2p_connected_clients"), 2);
    const bytesBefore = metricValue(first, "p2p_relay_bytes_total");
    assert.equal(bytesBefore, 20_000);
    assert.equal(metricValue(first, 'p2p_registrations_total\\{outcome="accepted"\\}'), 2);
    await relayBetween(a, b, 30);
    const second = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(second, "p2p_relay_bytes_total"), 50_000, "relayed bytes grow");
    assert.equal(metricValue(second, "p2p_relay_frames_total"), 50);
    assert.equal(metricValue(second, "p2p_introductions_total"), 1);

    // A refusal shows on the page too.
    a.conn.sendRelay("ab".repeat(20), new Uint8Array(10));
    await until(() => a.messages.some((m) => m.type === "error"), "the refusal");

    if (await findChromium() === undefined) {
      throw new Error("chromium is not installed (bash .ci/run installs it)");
    }
    const page = await HeadlessPage.open(`${base}/`);
    try {
      // Two refreshes, so the page has a throughput figure too.
      await page.waitFor(`document.body.dataset.updated !== undefined`);
      const firstUpdate = await page.evaluate(`document.body.dataset.updated`);
      await page.waitFor(`document.body.dataset.updated !== ${JSON.stringify(firstUpdate)}`);
      const shown = await page.evaluate(`({
        registered: document.getElementById("registered").textContent,
        connected: document.getElementById("connected").textContent,
        relayBytes: document.getElementById("relay-bytes").textContent,
        version: document.getElementById("version").textContent,
        uptime: document.getElementById("uptime").textContent,
        refusals: [...document.querySelectorAll("#refusals tr")].map((r) => r.dataset.reason),
      })`) as Record<string, unknown>;
      const status = await (await fetch(`${base}/status.json`)).json();
      assert.equal(shown.registered, String(status.registered));
      assert.equal(shown.registered, "2");
      assert.equal(shown.connected, "2");
      assert.equal(shown.relayBytes, "50000");
      assert.equal(shown.version, status.version);
      assert.match(String(shown.uptime), /\d+m \d+s/);
      assert.ok(
        (shown.refusals as string[]).includes("relay-not-brokered"),
        String(shown.refusals),
      );
    } finally {
      await page.close();
    }

    // SIGHUP logs the totals.
    Deno.kill(server.pid, "SIGHUP");
    await until(() => /"message":"totals: /.test(server.logs), "the SIGHUP totals line");
  } finally {
    a.conn.close();
    b.conn.close();
    await server.stop();
  }
  assert.match(server.logs, /"stopped after /);
});

/** Runs `deno task server` in its own process group, as a terminal runs a foreground job. */
async function startTask(extra: string[] = []) {
  const child = new Deno.Command("setsid", {
    args: [
      Deno.execPath(),
      "task",
      "server",
      "--host",
      "127.0.0.1",
      "--tcp-port",
      "0",
      "--stun-port",
      "0",
      ...extra,
    ],
    cwd: REPO.pathname,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const decoder = new TextDecoder();
  const pumps = Promise.all([
    (async () => {
      for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
    })(),
    (async () => {
      for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
    })(),
  ]);
  await until(() => out.includes('"listening"'), "the listening announcement", 60_000);
  const announcement = JSON.parse(out.split("\n").find((l) => l.includes('"listening"'))!);
  return { child, announcement, pumps, logs: () => err };
}

Deno.test("operator: SIGINT (twice, to the group) under deno task server: byes, final lines, exit 0", async () => {
  const task = await startTask();
  const a = await client("127.0.0.1", task.announcement.tcp.port);
  const b = await client("127.0.0.1", task.announcement.tcp.port);
  // A connection that never reads nor closes keeps the shutdown lingering (up to 2 s), so the
  // second signal surely arrives while the server is shutting down.
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: task.announcement.tcp.port });
  try {
    await relayBetween(a, b, 5);
    // Ctrl-C signals the whole foreground process group (deno task and the server); an
    // impatient operator presses it twice.
    Deno.kill(-task.child.pid, "SIGINT");
    await until(() => /SIGINT.{0,10} received: shutting down/.test(task.logs()), "shutdown");
    try {
      Deno.kill(-task.child.pid, "SIGINT");
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error; // already exited
    }
    const status = await task.child.status;
    await task.pumps;
    assert.equal(status.code, 0, `exit code; stderr:\n${task.logs()}`);
    await Promise.all([a.done, b.done]);
    for (const c of [a, b]) {
      assert.deepEqual(c.messages.at(-1), { type: "bye", reason: "server-shutdown" });
    }
    assert.match(task.logs(), /"stopped after /);
    assert.match(task.logs(), /shutting down \(3 connected, 2 registered\)/);
  } finally {
    silent.close();
    a.conn.close();
    b.conn.close();
    try {
      Deno.kill(-task.child.pid, "SIGKILL");
    } catch {
      // exited
    }
  }
});

Deno.test("operator: deno task server --metrics with two real clients relaying; SIGINT: exit 0, clients told server-shutdown", async () => {
  const task = await startTask(["--metrics", "127.0.0.1:0"]);
  const base = `http://127.0.0.1:${task.announcement.metrics.port}`;
  const servers = [`127.0.0.1:${task.announcement.tcp.port}`];
  const clients = [
    ClientProcess.start({ servers, args: ["--relay-only"] }),
    ClientProcess.start({ servers, args: ["--relay-only"] }),
  ];
  const [a, b] = clients;
  try {
    await Promise.all(clients.map((c) => c.registered()));
    await a.command(`connect ${b.id}`);
    const relayed = (peer: string) => (e: Record<string, unknown>) =>
      e.type === "peer" && e.peer === peer && e.state === "relayed";
    await a.waitFor(relayed(b.id), 60_000, "a relayed to b");
    await b.waitFor(relayed(a.id), 60_000, "b relayed to a");
    const bytes = async () =>
      metricValue(await (await fetch(`${base}/metrics`)).text(), "p2p_relay_bytes_total");
    const exchange = async (round: number) => {
      await a.command(`send ${b.id} round ${round} from a`);
      await b.command(`send ${a.id} round ${round} from b`);
      await b.waitFor(
        (e) => e.type === "message" && e.text === `round ${round} from a`,
        60_000,
        "at b",
      );
      await a.waitFor(
        (e) => e.type === "message" && e.text === `round ${round} from b`,
        60_000,
        "at a",
      );
    };
    await exchange(1);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(metrics, "p2p_registered_clients"), 2);
    const before = await bytes();
    assert.ok(before > 0);
    await exchange(2);
    const after = await bytes();
    assert.ok(after > before, `relayed bytes grow: ${before} then ${after}`);
    const page = await HeadlessPage.open(`${base}/`);
    try {
      await page.waitFor(`document.getElementById("registered").textContent === "2"`);
      const shown = Number(
        await page.evaluate(`document.getElementById("relay-bytes").textContent`),
      );
      assert.ok(shown >= after, `the page shows ${shown} relayed bytes, /metrics ${after}`);
    } finally {
      await page.close();
    }
    Deno.kill(-task.child.pid, "SIGINT");
    const status = await task.child.status;
    await task.pumps;
    assert.equal(status.code, 0, `exit code; stderr:\n${task.logs()}`);
    for (const c of clients) {
      const gone = await c.waitFor((e) => e.type === "disconnected", 30_000, "disconnected");
      assert.equal(gone.reason, "server-shutdown");
    }
  } finally {
    await Promise.all(clients.map((c) => c.stop().catch(() => {})));
    try {
      Deno.kill(-task.child.pid, "SIGKILL");
    } catch {
      // exited
    }
  }
});

Deno.test("operator: a closed log pipe neither stops nor grows the server; SIGTERM still exits 0", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-net",
      "--allow-env",
      "stun_server/main.ts",
      "--host",
      "127.0.0.1",
      "--tcp-port",
      "0",
      "--stun-port",
      "0",
      "--metrics",
      "127.0.0.1:0",
      "--log-level",
      "debug",
    ],
    cwd: REPO.pathname,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const stdoutPump = (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  try {
    // Read the first log line, then close the log pipe, as `| head -2` does.
    const reader = child.stderr.getReader();
    await reader.read();
    await reader.cancel();
    await until(() => out.includes('"listening"'), "the listening announcement", 60_000);
    const announcement = JSON.parse(out.split("\n").find((l) => l.includes('"listening"'))!);
    const a = await client("127.0.0.1", announcement.tcp.port);
    const b = await client("127.0.0.1", announcement.tcp.port);
    const rssBefore = await rssKiB(child.pid);
    // Plenty of log lines (debug, registrations, refusals) while two clients relay.
    for (let round = 0; round < 20; round++) {
      await relayBetween(a, b, 50, 4000);
      a.conn.sendRelay("ab".repeat(20), new Uint8Array(10)); // a refusal (WARNING)
      const extra = await client("127.0.0.1", announcement.tcp.port); // INFO lines
      extra.conn.close();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${announcement.metrics.port}/metrics`))
      .text();
    assert.ok(metricValue(metrics, "p2p_log_lines_dropped_total") > 0, "dropped lines counted");
    assert.equal(metricValue(metrics, "p2p_relay_frames_total"), 1000);
    const rssAfter = await rssKiB(child.pid);
    assert.ok(rssAfter - rssBefore < 50 * 1024, `RSS grew from ${rssBefore} to ${rssAfter} KiB`);
    child.kill("SIGTERM");
    const status = await Promise.race([
      child.status,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000)),
    ]);
    assert.ok(status !== null, "the server exits after SIGTERM");
    assert.equal(status.code, 0);
    await Promise.all([a.done, b.done]);
    assert.deepEqual(a.messages.at(-1), { type: "bye", reason: "server-shutdown" });
    a.conn.close();
    b.conn.close();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await stdoutPump;
  }
});

Deno.test("operator: a full disk as the log destination (/dev/full) is counted, not fatal", async () => {
  const denoCommand = [
    Deno.execPath(),
    "run",
    "--no-prompt",
    "--allow-net",
    "--allow-env",
    "stun_server/main.ts",
    "--host",
    "127.0.0.1",
    "--tcp-port",
    "0",
    "--stun-port",
    "0",
    "--metrics",
    "127.0.0.1:0",
  ].map((a) => `'${a}'`).join(" ");
  const child = new Deno.Command("sh", {
    args: ["-c", `exec ${denoCommand} 2>/dev/full`],
    cwd: REPO.pathname,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const stdoutPump = (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  try {
    await until(() => out.includes('"listening"'), "the listening announcement", 60_000);
    const announcement = JSON.parse(out.split("\n").find((l) => l.includes('"listening"'))!);
    const a = await client("127.0.0.1", announcement.tcp.port);
    const b = await client("127.0.0.1", announcement.tcp.port);
    await relayBetween(a, b, 10);
    const metrics = await (await fetch(`http://127.0.0.1:${announcement.metrics.port}/metrics`))
      .text();
    assert.ok(metricValue(metrics, "p2p_log_lines_dropped_total") > 0);
    assert.equal(metricValue(metrics, "p2p_registered_clients"), 2);
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
    await Promise.all([a.done, b.done]);
    assert.deepEqual(b.messages.at(-1), { type: "bye", reason: "server-shutdown" });
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await stdoutPump;
  }
});

async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)![1]);
}

Deno.test("operator: startup errors are one line naming what failed; usage errors exit 2", async () => {
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (blocker.addr as Deno.NetAddr).port;
    const run = async (args: string[]) => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--allow-net", "--allow-env", "stun_server/main.ts", ...args],
        cwd: REPO.pathname,
        env: { DENO_NO_UPDATE_CHECK: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
    };
    const inUse = await run([
      "--host",
      "127.0.0.1",
      "--stun-port",
      "0",
      "--tcp-port",
      String(port),
    ]);
    assert.equal(inUse.code, 1);
    assert.equal(inUse.stderr, `stun_server: cannot start: tcp port ${port} is in use\n`);
    const udpBlocker = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const udpPort = (udpBlocker.addr as Deno.NetAddr).port;
      const udpInUse = await run([
        "--host",
        "127.0.0.1",
        "--stun-port",
        String(udpPort),
        "--tcp-port",
        "0",
      ]);
      assert.equal(udpInUse.code, 1);
      assert.equal(udpInUse.stderr, `stun_server: cannot start: udp port ${udpPort} is in use\n`);
    } finally {
      udpBlocker.close();
    }
    const usage = await run(["--relay-queue", "100"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--relay-queue/);
  } finally {
    blocker.close();
  }
});
