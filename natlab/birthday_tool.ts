/**
 * Runs one side of birthday punching in a lab namespace and prints JSON lines.
 *
 * - `--role easy --key HEX --peer-address IP`: binds one UDP socket, prints
 *   `{"type":"ready","port":N}`, waits for `go` on stdin, probes, prints `{"type":"result",…}`.
 * - `--role hard --key HEX --peer IP:PORT`: opens the sockets toward the easy side at once and
 *   prints `{"type":"result",…}`.
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/system.ts";
import { BirthdayEasy, BirthdayHard } from "../p2p_client/birthday/birthday.ts";

function flag(name: string): string {
  const at = Deno.args.indexOf(name);
  if (at < 0 || at + 1 >= Deno.args.length) throw new Error(`missing ${name}`);
  return Deno.args[at + 1];
}

function print(event: Record<string, unknown>): void {
  console.log(JSON.stringify(event));
}

async function easy(key: Uint8Array): Promise<void> {
  const socket = systemRuntime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
  const attempt = new BirthdayEasy({
    runtime: systemRuntime,
    key,
    peerAddress: flag("--peer-address"),
    send: (bytes, to) => void socket.send(bytes, to).catch(() => {}),
  });
  print({ type: "ready", port: socket.addr.port });
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  for (let text = ""; !text.includes("go\n");) {
    const { done, value } = await lines.read();
    if (done) return;
    text += value;
  }
  void (async () => {
    for (let i = 0; i < 100_000; i++) {
      try {
        const [bytes, from] = await socket.receive(new Uint8Array(64));
        attempt.handle(bytes, from);
      } catch {
        return;
      }
    }
  })();
  const result = await attempt.run();
  print({
    type: "result",
    ok: result !== undefined,
    remote: result && `${result.remote.hostname}:${result.remote.port}`,
    elapsedMs: result?.elapsedMs,
    packetsSent: attempt.stats.packetsSent,
    probes: attempt.stats.probes,
  });
  // Stay a moment for the hard side's answers, then leave.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  print({ type: "final", packetsSent: attempt.stats.packetsSent });
  socket.close();
}

async function hard(key: Uint8Array): Promise<void> {
  const peer = flag("--peer");
  const at = peer.lastIndexOf(":");
  const attempt = new BirthdayHard({
    runtime: systemRuntime,
    key,
    peer: { transport: "udp", hostname: peer.slice(0, at), port: Number(peer.slice(at + 1)) },
    timeoutMs: 40_000,
  });
  print({ type: "ready" });
  const result = await attempt.run();
  print({
    type: "result",
    ok: result !== undefined,
    remote: result && `${result.remote.hostname}:${result.remote.port}`,
    local: result?.socket?.addr.port,
    elapsedMs: result?.elapsedMs,
    packetsSent: attempt.stats.packetsSent,
    openSockets: attempt.openSockets,
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  attempt.cancel();
}

if (import.meta.main) {
  const lifetime = setTimeout(() => Deno.exit(3), 90_000);
  const key = Uint8Array.fromHex(flag("--key"));
  await (flag("--role") === "easy" ? easy(key) : hard(key)).catch((error) =>
    print({ type: "error", message: String(error) })
  );
  clearTimeout(lifetime);
  Deno.exit(0);
}
