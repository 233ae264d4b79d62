import assert from "node:assert/strict";
import { EventLog } from "./json_lines.ts";
import { parseHostPort, parseProbeArgs, ProbeUsageError } from "./udp_probe.ts";

Deno.test("parseProbeArgs reads sockets, echo and lifetime, and rejects bad input", () => {
  const options = parseProbeArgs(["--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:9", "--echo"]);
  assert.deepEqual(options.udp, [{ hostname: "127.0.0.1", port: 0 }]);
  assert.deepEqual(options.tcp, { hostname: "127.0.0.1", port: 9 });
  assert.equal(options.echo, true);
  assert.throws(() => parseProbeArgs([]), ProbeUsageError);
  assert.throws(() => parseProbeArgs(["--udp"]), ProbeUsageError);
  assert.throws(() => parseProbeArgs(["--bogus"]), ProbeUsageError);
  assert.throws(() => parseHostPort("127.0.0.1:70000"), ProbeUsageError);
  assert.throws(() => parseHostPort("noport"), ProbeUsageError);
});

/** Starts the probe program on loopback, as the lab does inside a namespace. */
function startProbe(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      new URL("./udp_probe.ts", import.meta.url).pathname,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const log = new EventLog(child.stdout);
  const stdin = child.stdin.getWriter();
  return {
    log,
    command: (line: string) => stdin.write(new TextEncoder().encode(line + "\n")),
    async close() {
      await stdin.write(new TextEncoder().encode("exit\n")).catch(() => {});
      await stdin.close().catch(() => {});
      await child.status;
      await log.done;
    },
  };
}

Deno.test("the probe program echoes the source address over UDP and TCP on loopback", async () => {
  const echo = startProbe(["--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--echo"]);
  const sender = startProbe(["--udp", "127.0.0.1:0"]);
  try {
    const ready = await echo.log.waitFor((e) => e.type === "ready", 30_000, "echo ready");
    const senderReady = await sender.log.waitFor((e) => e.type === "ready", 30_000, "ready");
    const echoUdp = (ready.udp as string[])[0];
    const senderUdp = (senderReady.udp as string[])[0];
    await sender.command(`send 0 ${echoUdp} hello`);
    const got = await echo.log.waitFor((e) => e.type === "recv", 10_000, "datagram");
    assert.equal(got.text, "hello");
    assert.equal(got.from, senderUdp);
    const back = await sender.log.waitFor((e) => e.type === "recv", 10_000, "echo");
    assert.equal(back.text, `seen ${senderUdp}`);
    await sender.command(`tcp ${String(ready.tcp)} over-tcp`);
    const reply = await sender.log.waitFor((e) => e.type === "tcp-reply", 10_000, "tcp reply");
    assert.match(String(reply.text), /^seen 127\.0\.0\.1:\d+$/);
    await sender.command("bogus");
    const error = await sender.log.waitFor((e) => e.type === "error", 10_000, "error");
    assert.match(String(error.message), /bad command/);
  } finally {
    await sender.close();
    await echo.close();
  }
});
