// Interop: coturn's turnutils_uclient and turnutils_stunclient (Debian package coturn) against the
// real server program, over UDP and TCP, with long-term credentials, REST API secrets, wrong
// passwords, and RFC 5780 behaviour discovery with an alternate port (and address).
import assert from "node:assert/strict";
import { ServerProcess } from "../testing/server_process.ts";
import {
  addMessageIntegrity,
  addNonce,
  addRealm,
  addRequestedTransport,
  addUsername,
  decodeStunMessage,
  getErrorCode,
  getNonce,
  getRealm,
  longTermKey,
  StunClass,
  StunMessageWriter,
  TurnMethod,
} from "../shared/stun/mod.ts";
import { requireOnPath } from "../testing/find_program.ts";

/** Runs a program with a deadline; returns its exit code and output. */
async function run(
  binary: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(binary, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const result = await child.output();
    const decoder = new TextDecoder();
    return {
      code: result.code,
      output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The final counters turnutils_uclient prints. */
function uclientTotals(output: string): { sent: number; received: number; lost: number } {
  const totals = [...output.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/gm)].at(-1);
  const lost = /Total lost packets (\d+)/.exec(output);
  assert.ok(totals && lost, `no totals in turnutils_uclient output:\n${output.slice(-3000)}`);
  return { sent: Number(totals[1]), received: Number(totals[2]), lost: Number(lost[1]) };
}

const TURN_ARGS = ["--turn-user", "alice:wonderland", "--allow-loopback-peers"];

for (
  const [transport, batched] of [["udp", false], ["tcp", false], ["udp", true]] as const
) {
  Deno.test(`turn interop: turnutils_uclient over ${transport}${batched ? " (--batched-udp)" : ""}, long-term credentials, channels and Send indications, 0 lost`, async () => {
    const uclient = requireOnPath("turnutils_uclient", "coturn");
    const server = await ServerProcess.start({
      args: batched ? [...TURN_ARGS, "--batched-udp"] : TURN_ARGS,
      denoFlags: batched ? ["--allow-ffi"] : [],
    });
    try {
      for (const extra of [[], ["-s"]]) {
        // -y: the client's own two allocations are each other's peers (relayed both ways);
        // -m 2: two such client pairs at once; 40 messages of 200 bytes each way.
        const { code, output } = await run(uclient, [
          ...(transport === "tcp" ? ["-t"] : []),
          ...extra,
          "-y",
          "-u",
          "alice",
          "-w",
          "wonderland",
          "-p",
          String(server.stunPort),
          "-n",
          "40",
          "-m",
          "2",
          "-l",
          "200",
          "127.0.0.1",
        ]);
        const totals = uclientTotals(output);
        assert.equal(code, 0, output.slice(-2000));
        assert.ok(totals.sent >= 160, `sent ${totals.sent}`);
        assert.equal(totals.received, totals.sent, output.slice(-2000));
        assert.equal(totals.lost, 0);
      }
    } finally {
      await server.stop();
    }
  });
}

Deno.test("turn interop: turnutils_uclient with TURN REST API credentials (--turn-secret)", async () => {
  const uclient = requireOnPath("turnutils_uclient", "coturn");
  const server = await ServerProcess.start({
    args: ["--turn-secret", "north-secret", "--allow-loopback-peers"],
  });
  try {
    const { code, output } = await run(uclient, [
      "-y",
      "-W",
      "north-secret",
      "-u",
      "bob",
      "-p",
      String(server.stunPort),
      "-n",
      "20",
      "127.0.0.1",
    ]);
    const totals = uclientTotals(output);
    assert.equal(code, 0, output.slice(-2000));
    assert.ok(totals.sent > 0);
    assert.equal(totals.lost, 0);
  } finally {
    await server.stop();
  }
});

Deno.test("turn interop: a wrong password gets 401 (and turnutils_uclient cannot allocate)", async () => {
  const uclient = requireOnPath("turnutils_uclient", "coturn");
  const server = await ServerProcess.start({ args: TURN_ARGS });
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.stunPort };
    const exchange = async (bytes: Uint8Array) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        await socket.send(bytes, to);
        const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 1000));
        const received = await Promise.race([socket.receive(), timeout]);
        if (received !== null) return decodeStunMessage(received[0].slice());
      }
      throw new Error("no answer");
    };
    const allocate = (nonce?: string, password?: string) => {
      const writer = new StunMessageWriter();
      writer.start(
        TurnMethod.Allocate,
        StunClass.Request,
        crypto.getRandomValues(new Uint8Array(12)),
      );
      addRequestedTransport(writer, 17);
      if (nonce !== undefined) {
        addUsername(writer, "alice");
        addRealm(writer, "p2p");
        addNonce(writer, nonce);
        addMessageIntegrity(writer, longTermKey("alice", "p2p", password!));
      }
      return writer.bytes().slice();
    };
    const challenge = await exchange(allocate());
    assert.equal(getErrorCode(challenge)?.code, 401);
    assert.equal(getRealm(challenge), "p2p");
    const refused = await exchange(allocate(getNonce(challenge), "not-the-password"));
    assert.equal(getErrorCode(refused)?.code, 401);
    const granted = await exchange(allocate(getNonce(challenge), "wonderland"));
    assert.equal(granted.messageClass, StunClass.SuccessResponse);

    const { output } = await run(uclient, [
      "-y",
      "-u",
      "alice",
      "-w",
      "wrong",
      "-p",
      String(server.stunPort),
      "-n",
      "2",
      "127.0.0.1",
    ], 30_000);
    assert.match(output, /Cannot complete Allocation/);
  } finally {
    socket.close();
    await server.stop();
  }
});

Deno.test("stun interop: turnutils_stunclient -f (RFC 5780) completes with an alternate port", async () => {
  const stunclient = requireOnPath("turnutils_stunclient", "coturn");
  const server = await ServerProcess.start({ args: ["--alt-port", "0"] });
  try {
    const altPort = server.announcement.stun[1].port;
    assert.notEqual(altPort, server.stunPort);
    const { code, output } = await run(stunclient, [
      "-f",
      "-p",
      String(server.stunPort),
      "127.0.0.1",
    ], 30_000);
    assert.equal(code, 0, output);
    assert.match(output, /RFC 5780 response 1/);
    assert.match(output, new RegExp(`Response origin: : 127\\.0\\.0\\.1:${server.stunPort}`));
    assert.match(output, new RegExp(`Other addr: : 127\\.0\\.0\\.1:${altPort}`));
    // No alternate address: the change-IP requests get 420, sent to RESPONSE-PORT.
    assert.equal([...output.matchAll(/error 420/g)].length, 2, output);
  } finally {
    await server.stop();
  }
});

Deno.test("stun interop: turnutils_stunclient -f with an alternate address and port gets three answers", async () => {
  const stunclient = requireOnPath("turnutils_stunclient", "coturn");
  const server = await ServerProcess.start({
    args: ["--alt-host", "127.0.0.2", "--alt-port", "0"],
  });
  try {
    const altPort = server.announcement.stun.find((a) => a.port !== server.stunPort)!.port;
    const { code, output } = await run(stunclient, [
      "-f",
      "-p",
      String(server.stunPort),
      "127.0.0.1",
    ], 30_000);
    assert.equal(code, 0, output);
    for (const n of [1, 2, 3]) assert.match(output, new RegExp(`RFC 5780 response ${n}`), output);
    // Answers 2 and 3 asked for another address and port: they come from 127.0.0.2:altPort.
    assert.equal(
      [...output.matchAll(new RegExp(`Response origin: : 127\\.0\\.0\\.2:${altPort}`, "g"))].length,
      2,
      output,
    );
  } finally {
    await server.stop();
  }
});
