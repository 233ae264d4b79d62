import assert from "node:assert/strict";
import { parseServerArgs } from "./cli.ts";
import { SERVER_VERSION } from "./version.ts";
import { stunTurnConfig } from "./turn_flags.ts";

function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const parsed = parseServerArgs(args, {
    writeOut: (t) => out.push(t),
    writeErr: (t) => err.push(t),
  });
  return { parsed, out: out.join(""), err: err.join("") };
}

Deno.test("cli: defaults", () => {
  const { parsed } = run([]);
  assert.ok("config" in parsed);
  assert.deepEqual(parsed.config, {
    host: undefined,
    stunPort: 54321,
    tcpPort: 3478,
    logLevel: "info",
    maxClients: 10_000,
    maxConnsPerIp: 64,
    relayRate: 4 * 1024 * 1024,
    relayQueue: 1024 * 1024,
    heartbeatMs: 10_000,
    registrationTimeoutMs: 10_000,
    maxPending: 1024,
    puzzleBits: 16,
    metrics: undefined,
    logFormat: "auto",
    stun: stunTurnConfig({}),
    cluster: undefined,
    nodeName: undefined,
    clusterPrefix: "p2p",
    workers: 1,
    reusePort: false,
    supervised: false,
    workerLink: false,
  });
});

Deno.test("cli: cluster flags", () => {
  const { parsed } = run([
    "--cluster",
    "nats://10.0.0.1:4222,10.0.0.2:4222",
    "--node-name",
    "n1",
    "--cluster-prefix",
    "prod.p2p",
    "--workers",
    "4",
  ]);
  assert.ok("config" in parsed);
  assert.deepEqual(parsed.config.cluster, ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
  assert.equal(parsed.config.nodeName, "n1");
  assert.equal(parsed.config.clusterPrefix, "prod.p2p");
  assert.equal(parsed.config.workers, 4);
  for (
    const args of [
      ["--cluster", "http://x:1"],
      ["--node-name", "a.b"],
      ["--cluster-prefix", "a..b"],
      ["--workers", "0"],
      ["--workers", "2"], // without --cluster
    ]
  ) {
    const result = run(args);
    assert.ok("exitCode" in result.parsed && result.parsed.exitCode !== 0, args.join(" "));
    assert.ok(result.err.length > 0, args.join(" "));
  }
});

Deno.test("cli: STUN/TURN flags", () => {
  const { parsed } = run([
    "--turn-user",
    "alice:a:b",
    "--turn-user",
    "bob:pw",
    "--turn-secret",
    "s3",
    "--turn-realm",
    "example.org",
    "--turn-relay-ports",
    "50000-50100",
    "--turn-user-quota",
    "2",
    "--turn-max-bps",
    "1000",
    "--allow-loopback-peers",
    "--turn-allow-peer",
    "10.0.0.0/8",
    "--alt-port",
    "3479",
    "--alternate-server",
    "[2001:db8::1]:3478",
    "--no-stun-tcp",
    "--turn-external-ip",
    "198.51.100.7/10.0.0.7",
    "--turn-external-ip",
    "2001:db8::7",
  ]);
  assert.ok("config" in parsed);
  const stun = parsed.config.stun;
  assert.deepEqual(stun.users, [{ name: "alice", password: "a:b" }, {
    name: "bob",
    password: "pw",
  }]);
  assert.deepEqual(stun.secrets, ["s3"]);
  assert.equal(stun.realm, "example.org");
  assert.deepEqual(stun.relayPorts, { min: 50000, max: 50100 });
  assert.equal(stun.userQuota, 2);
  assert.equal(stun.maxBps, 1000);
  assert.equal(stun.allowLoopbackPeers, true);
  assert.deepEqual(stun.allowPeers, ["10.0.0.0/8"]);
  assert.equal(stun.altPort, 3479);
  assert.deepEqual(stun.alternateServer, { hostname: "2001:db8::1", port: 3478 });
  assert.equal(stun.stunTcp, false);
  assert.deepEqual(stun.externalIps, [
    { public: "198.51.100.7", private: "10.0.0.7" },
    { public: "2001:db8::7", private: undefined },
  ]);
});

Deno.test("cli: bad STUN/TURN flags are refused", () => {
  for (
    const args of [
      ["--turn-user", "nocolon"],
      ["--turn-relay-ports", "9-1"],
      ["--turn-allow-peer", "10.0.0.0/99"],
      ["--alternate-server", "example.org:1"],
      ["--alt-host", "not-an-ip"],
      ["--turn-external-ip", "1.2.3.4/x"],
    ]
  ) {
    const { parsed, err } = run(args);
    assert.ok("exitCode" in parsed && parsed.exitCode !== 0, args.join(" "));
    assert.ok(err.length > 0);
  }
});

Deno.test("cli: every flag is parsed", () => {
  const { parsed } = run([
    "--host",
    "127.0.0.1",
    "--stun-port",
    "0",
    "--tcp-port",
    "0",
    "--log-level",
    "warn",
    "--max-clients",
    "5",
    "--max-conns-per-ip",
    "2",
    "--relay-rate",
    "1000",
    "--relay-queue",
    "70000",
    "--heartbeat-ms",
    "200",
    "--registration-timeout-ms",
    "300",
    "--metrics",
    "[::1]:9464",
    "--log-format",
    "json",
  ]);
  assert.ok("config" in parsed);
  assert.equal(parsed.config.host, "127.0.0.1");
  assert.equal(parsed.config.stunPort, 0);
  assert.equal(parsed.config.logLevel, "warning");
  assert.equal(parsed.config.maxConnsPerIp, 2);
  assert.equal(parsed.config.relayQueue, 70000);
  assert.equal(parsed.config.heartbeatMs, 200);
  assert.equal(parsed.config.registrationTimeoutMs, 300);
  assert.deepEqual(parsed.config.metrics, { hostname: "::1", port: 9464 });
  assert.equal(parsed.config.logFormat, "json");
});

Deno.test("cli: --version and --help exit 0 with output", () => {
  const version = run(["--version"]);
  assert.deepEqual(version.parsed, { exitCode: 0 });
  assert.match(version.out, new RegExp(SERVER_VERSION.replaceAll(".", "\\.")));
  const help = run(["--help"]);
  assert.deepEqual(help.parsed, { exitCode: 0 });
  for (
    const flag of [
      "--host",
      "--stun-port",
      "--tcp-port",
      "--log-level",
      "--max-clients",
      "--relay-rate",
      "--relay-queue",
      "--heartbeat-ms",
    ]
  ) {
    assert.match(help.out, new RegExp(flag));
  }
});

Deno.test("cli: bad values are refused with exit code 2 and a message naming the flag", () => {
  for (
    const args of [
      ["--tcp-port", "70000"],
      ["--stun-port", "x"],
      ["--log-level", "loud"],
      ["--bogus"],
      ["--max-clients", "0"],
      ["--relay-queue", "100"],
      ["--relay-queue", "65539"],
      ["--heartbeat-ms", "10"],
      ["--registration-timeout-ms", "0"],
      ["--max-conns-per-ip", "-1"],
      ["--relay-rate", "0"],
      ["--metrics", "9464"],
      ["--metrics", "localhost:99999"],
      ["--log-format", "xml"],
    ]
  ) {
    const result = run(args);
    assert.deepEqual(result.parsed, { exitCode: 2 }, args.join(" "));
    assert.match(result.err, new RegExp(args[0]), args.join(" "));
  }
  assert.ok("config" in run(["--relay-queue", "65540"]).parsed);
});
