/**
 * Issue 12's "done when" for the client: two of our clients (real processes) whose direct UDP is
 * blocked by nftables and whose rendezvous relay is refused (`--relay turn`) exchange messages
 * through coturn (`turnserver`, Debian's coturn package) as the TURN server, exactly once and in
 * order. Everything runs in a private network namespace (loopback only): our server, coturn on
 * its own port with a static user, `--allow-loopback-peers`, no TLS, killed in `finally` (and by
 * `timeout` should this process die first). And: `--relay server` never sends a datagram to the
 * TURN server of its config, while `--relay any` does (so that test can fail).
 */
import assert from "node:assert/strict";
import { ClientProcess } from "../../testing/client_process.ts";
import { NetnsServer, netnsUnavailable, TestNamespace } from "../../testing/netns.ts";
import { messageTexts } from "./scenarios.ts";
import { ServerProcess } from "../../testing/server_process.ts";
import { requireOnPath } from "../../testing/find_program.ts";

const unavailable = await netnsUnavailable();
const WAIT = 60_000;
const TCP_PORT = 3478;
const STUN_PORT = 54321;
const TURN_PORT = 3479;
const FIRST_UDP_PORT = 40001;
const TURN_USER = "peer";
const TURN_PASSWORD = "coturn-s3cret";
const LABEL = `turn 127.0.0.1:${TURN_PORT}`;
/** Direct UDP between the clients' sockets (ports 40001-40009) is dropped. */
const BLOCK_DIRECT = `udp sport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} ` +
  `udp dport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} drop`;

/** coturn's `turnserver` inside the namespace, on 127.0.0.1:TURN_PORT, with a static user. */
class Coturn {
  readonly #child: Deno.ChildProcess;
  readonly #pump: Promise<void>;
  #output = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    const decoder = new TextDecoder();
    this.#pump = (async () => {
      for await (const chunk of child.stdout) {
        this.#output = (this.#output + decoder.decode(chunk, { stream: true })).slice(-200_000);
      }
    })();
  }

  static async start(ns: TestNamespace, dir: string): Promise<Coturn> {
    const turnserver = requireOnPath("turnserver", "coturn");
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns.name,
        // Bounded lifetime even if this test process dies without its finally.
        "timeout",
        "300",
        turnserver,
        "-n", // no configuration file
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--listening-ip",
        "127.0.0.1",
        "--relay-ip",
        "127.0.0.1",
        "--listening-port",
        String(TURN_PORT),
        "--min-port",
        "49160",
        "--max-port",
        "49260",
        "--lt-cred-mech",
        "--realm",
        "p2p.test",
        "--user",
        `${TURN_USER}:${TURN_PASSWORD}`,
        "--allow-loopback-peers",
        "--userdb",
        `${dir}/turndb`,
        "--pidfile",
        `${dir}/turnserver.pid`,
        "--log-file",
        "stdout",
        "--simple-log",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const coturn = new Coturn(child);
    // Ready once its relay servers exist (the clients retransmit Allocate anyway).
    const deadline = Date.now() + 30_000;
    while (!/Total General servers/.test(coturn.#output)) {
      if (Date.now() > deadline) {
        await coturn.stop();
        throw new Error(`turnserver did not start in 30 s:\n${coturn.#output.slice(-3000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return coturn;
  }

  get output(): string {
    return this.#output;
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 5000)),
    ]);
    clearTimeout(timer);
    if (!ended) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
      await this.#child.status;
    }
    await this.#pump;
  }
}

function peerOf(peer: string, predicate: (e: Record<string, unknown>) => boolean) {
  return (e: Record<string, unknown>) => e.type === "peer" && e.peer === peer && predicate(e);
}

Deno.test({
  name:
    `two clients, direct UDP blocked and the rendezvous relay refused (--relay turn), exchange messages through coturn exactly once and in order${
      unavailable ? ` (skipped: ${unavailable})` : ""
    }`,
  ignore: unavailable !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "p2p-turnc-" });
    const ns = await TestNamespace.create("p2pt");
    let server: NetnsServer | undefined;
    let coturn: Coturn | undefined;
    const clients: ClientProcess[] = [];
    try {
      await ns.addRule(BLOCK_DIRECT.replace(/ drop$/, " counter drop"));
      server = await NetnsServer.start(ns, TCP_PORT, STUN_PORT);
      coturn = await Coturn.start(ns, dir);
      const config = `${dir}/config.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          stun: [`127.0.0.1:${STUN_PORT}`],
          turn: [{
            url: `turn:127.0.0.1:${TURN_PORT}`,
            username: TURN_USER,
            credential: TURN_PASSWORD,
          }],
        }),
      );
      for (let i = 0; i < 2; i++) {
        clients.push(ClientProcess.start({
          servers: [`127.0.0.1:${TCP_PORT}`],
          args: [
            "--udp-port",
            String(FIRST_UDP_PORT + i),
            "--local-file",
            config,
            "--relay",
            "turn",
            "--log-level",
            "debug",
          ],
          netns: ns.name,
        }));
      }
      const [a, b] = clients;
      await Promise.all(clients.map((c) => c.registered()));
      for (const c of clients) {
        const allocated = await c.waitFor(
          (e) => e.type === "turn" && e.state === "allocated",
          WAIT,
          "TURN allocation on coturn",
        );
        // coturn's relay port range: the allocation is coturn's.
        assert.equal(allocated.server, LABEL);
        const port = Number(/:(\d+)$/.exec(String(allocated.relayed))?.[1]);
        assert.ok(port >= 49160 && port <= 49260, `relayed ${allocated.relayed}`);
      }
      await a.command(`connect ${b.id}`);
      await a.waitFor(peerOf(b.id, (e) => e.path === LABEL), WAIT, "a relayed through coturn");
      await b.waitFor(peerOf(a.id, (e) => e.path === LABEL), WAIT, "b relayed through coturn");
      const toB: string[] = [];
      const toA: string[] = [];
      for (let i = 0; i < 30; i++) {
        toB.push(`a${i}`);
        await a.command(`send ${b.id} a${i}`);
        if (i % 3 === 0) {
          toA.push(`b${i}`);
          await b.command(`send ${a.id} b${i}`);
        }
      }
      await b.waitForCount((e) => e.type === "message", toB.length, WAIT, "messages at b");
      await a.waitForCount((e) => e.type === "message", toA.length, WAIT, "messages at a");
      await a.waitForCount((e) => e.type === "delivered", toB.length, WAIT, "delivered at a");
      await b.waitForCount((e) => e.type === "delivered", toA.length, WAIT, "delivered at b");
      assert.deepEqual(messageTexts(b, a.id), toB, "every message once, in order");
      assert.deepEqual(messageTexts(a, b.id), toA, "every message once, in order");
      for (const [c, other] of [[a, b], [b, a]] as const) {
        const states = c.events.filter((e) => e.type === "peer" && e.peer === other.id);
        assert.ok(!states.some((e) => e.state === "direct"), "never direct: UDP is blocked");
        assert.ok(!states.some((e) => e.path === "relay"), "never the server's relay");
        assert.ok(!states.some((e) => String(e.path).includes("udp")), "no UDP path at all");
      }
      assert.ok((await ns.countedPackets()) > 0, "direct attempts were made, and dropped");
      const statuses = await Promise.all(clients.map((c) => c.stop()));
      for (const [i, status] of statuses.entries()) {
        assert.equal(status.code, 0, `client ${i}; stderr:\n${clients[i].logs.slice(-2000)}`);
        assert.deepEqual(clients[i].badLines, []);
        // Credentials never appear in logs (debug level) or events.
        assert.ok(!clients[i].logs.includes(TURN_PASSWORD), "no password in the logs");
        assert.ok(!JSON.stringify(clients[i].events).includes(TURN_PASSWORD));
      }
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
      await coturn?.stop();
      await server?.stop();
      await ns.delete();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Two clients on loopback with a fake TURN server (a UDP socket that counts datagrams). */
async function datagramsToTurn(relay: "server" | "any"): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-turnc-" });
  const fakeTurn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  let datagrams = 0;
  const counting = (async () => {
    try {
      for (;;) {
        await fakeTurn.receive();
        datagrams++;
      }
    } catch {
      // closed
    }
  })();
  const server = await ServerProcess.start();
  const clients: ClientProcess[] = [];
  try {
    const config = `${dir}/config.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        stun: [`127.0.0.1:${server.stunPort}`],
        turn: [{
          url: `turn:127.0.0.1:${(fakeTurn.addr as Deno.NetAddr).port}`,
          username: "u",
          credential: "p",
        }],
      }),
    );
    for (let i = 0; i < 2; i++) {
      clients.push(ClientProcess.start({
        servers: [`127.0.0.1:${server.tcpPort}`],
        args: ["--local-file", config, "--relay", relay, "--relay-only"],
      }));
    }
    const [a, b] = clients;
    await Promise.all(clients.map((c) => c.registered()));
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerOf(b.id, (e) => e.path === "relay"), WAIT, "a relayed by the server");
    await a.command(`send ${b.id} through the server`);
    await b.waitFor((e) => e.type === "message", WAIT, "message at b");
    assert.deepEqual(messageTexts(b, a.id), ["through the server"]);
    // Give a TURN client time to show itself (it sends its Allocate at once, and again after
    // 0.5 s, 1.5 s...).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.ok(!a.events.some((e) => e.type === "peer" && String(e.path).startsWith("turn")));
    const statuses = await Promise.all(clients.map((c) => c.stop()));
    for (const status of statuses) assert.equal(status.code, 0);
    return datagrams;
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await server.stop();
    fakeTurn.close();
    await counting;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("--relay server never contacts the config's TURN server (--relay any does)", async () => {
  assert.equal(await datagramsToTurn("server"), 0, "--relay server sent nothing to TURN");
  assert.ok(await datagramsToTurn("any") > 0, "--relay any allocates (so the test can fail)");
});
