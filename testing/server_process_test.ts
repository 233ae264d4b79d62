import assert from "node:assert/strict";
import { ServerProcess } from "./server_process.ts";

Deno.test("server process: starts on free ports, announces them, stops with exit code 0", async () => {
  const server = await ServerProcess.start();
  try {
    assert.equal(server.announcement.event, "listening");
    assert.equal(server.announcement.pid, server.pid);
    assert.equal(server.host, "127.0.0.1");
    assert.ok(server.tcpPort > 0);
    assert.ok(server.stunPort > 0);
    assert.ok(await server.rssKiB() > 0);
    const tcp = await Deno.connect({ hostname: server.host, port: server.tcpPort });
    tcp.close();
    const tcpPort = server.tcpPort;
    const stunPort = server.stunPort;
    await server.restart();
    assert.equal(server.tcpPort, tcpPort, "restart keeps the TCP port");
    assert.equal(server.stunPort, stunPort, "restart keeps the STUN port");
  } finally {
    const status = await server.stop();
    assert.equal(status.code, 0);
  }
  assert.match(server.logs, /"stopped after /);
});

Deno.test("server process: a server that cannot start is reported with its stderr", async () => {
  await assert.rejects(
    ServerProcess.start({ args: ["--tcp-port", "99999"] }),
    (e) => e instanceof Error && /exited early/.test(e.message) && /tcp-port/.test(e.message),
  );
});
