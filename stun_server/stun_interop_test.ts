// Interop: coturn's `turnutils_stunclient` (Debian package coturn) against our STUN service.
import assert from "node:assert/strict";
import { unmapIpv4 } from "../shared/stun/mod.ts";
import { StunService } from "./stun_service.ts";
import { type DatagramSocket, type NetAddress, systemRuntime } from "../shared/runtime/mod.ts";
import { findOnPath } from "../testing/find_program.ts";

const CLIENT = "turnutils_stunclient";

/** Wraps a socket so that the source of every received datagram is recorded. */
function recordingSocket(inner: DatagramSocket, sources: NetAddress[]): DatagramSocket {
  return {
    get addr() {
      return inner.addr;
    },
    async receive(buffer?: Uint8Array) {
      const received = await inner.receive(buffer);
      sources.push(received[1]);
      return received;
    },
    send: (bytes, to) => inner.send(bytes, to),
    close: () => inner.close(),
  };
}

/** Runs the client with a deadline; returns its exit code and output. */
async function runStunClient(
  binary: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The `UDP reflexive addr: HOST:PORT` lines turnutils_stunclient prints. */
function reflexiveAddresses(output: string): { family: string; hostname: string; port: number }[] {
  const found = [];
  for (const match of output.matchAll(/(IPv[46])\. UDP reflexive addr: (\S+):(\d+)/g)) {
    found.push({ family: match[1], hostname: match[2], port: Number(match[3]) });
  }
  return found;
}

const ipv6Loopback = (() => {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test({
    name: `stun interop: turnutils_stunclient over ${host} reports its true address`,
    ignore: host === "::1" && !ipv6Loopback,
    fn: async () => {
      const binary = findOnPath(CLIENT);
      assert.ok(
        binary,
        `${CLIENT} not found on PATH: install the Debian package coturn (.ci/run does)`,
      );
      // Default bind (all interfaces, dual-stack), as the server runs it. The socket is wrapped to
      // record every source the server really saw, to compare with what the client prints.
      const sources: NetAddress[] = [];
      const service = StunService.listen({
        port: 0,
        runtime: {
          ...systemRuntime,
          net: {
            ...systemRuntime.net,
            listenDatagram: (options) =>
              recordingSocket(systemRuntime.net.listenDatagram(options), sources),
          },
        },
      });
      try {
        const port = service.addresses[0].port;
        const result = await runStunClient(binary, [
          "-p",
          String(port),
          "-L",
          host,
          host,
        ]);
        const reported = reflexiveAddresses(result.stdout + result.stderr);
        assert.equal(result.code, 0, `${CLIENT} failed:\n${result.stdout}\n${result.stderr}`);
        assert.ok(reported.length > 0, `no reflexive address printed:\n${result.stdout}`);
        assert.ok(sources.length > 0);
        const trueSources = new Set(sources.map((s) => `${unmapIpv4(s.hostname)}:${s.port}`));
        for (const address of reported) {
          assert.equal(address.family, host.includes(":") ? "IPv6" : "IPv4");
          assert.equal(address.hostname, host);
          assert.ok(
            trueSources.has(`${address.hostname}:${address.port}`),
            `printed ${address.hostname}:${address.port}, server saw ${[...trueSources]}`,
          );
        }
        assert.ok(service.stats.answered >= 1);
      } finally {
        await service.close();
      }
    },
  });
}

Deno.test("stun interop: turnutils_stunclient against the real server program (deno task server)", async () => {
  const binary = findOnPath(CLIENT);
  assert.ok(
    binary,
    `${CLIENT} not found on PATH: install the Debian package coturn (.ci/run does)`,
  );
  // The exact command of `deno task server` (deno.json), with free ports.
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string[] = config.tasks.server.split(/\s+/);
  assert.equal(task[0], "deno", `unexpected server task: ${config.tasks.server}`);
  const server = new Deno.Command(Deno.execPath(), {
    args: [...task.slice(1), "--stun-port", "0", "--tcp-port", "0", "--log-level", "error"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    // The first stdout line is the listening announcement with the real ports.
    let text = "";
    const deadline = Date.now() + 30_000;
    while (!text.includes("\n")) {
      assert.ok(Date.now() < deadline, "server did not announce itself within 30 s");
      const { value, done } = await lines.read();
      assert.ok(!done, `server exited before listening: ${text}`);
      text += value;
    }
    const announcement = JSON.parse(text.slice(0, text.indexOf("\n")));
    assert.equal(announcement.event, "listening");
    const port: number = announcement.stun[0].port;
    const result = await runStunClient(binary, ["-p", String(port), "127.0.0.1"]);
    assert.equal(result.code, 0, `${CLIENT} failed:\n${result.stdout}\n${result.stderr}`);
    const reported = reflexiveAddresses(result.stdout + result.stderr);
    assert.ok(reported.length > 0, `no reflexive address printed:\n${result.stdout}`);
    for (const address of reported) {
      assert.deepEqual([address.family, address.hostname], ["IPv4", "127.0.0.1"]);
      assert.ok(address.port > 0 && address.port < 65536 && address.port !== port);
    }
  } finally {
    server.kill("SIGTERM");
    await lines.cancel().catch(() => {});
    await server.status;
  }
});
