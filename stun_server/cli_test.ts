import assert from "node:assert/strict";
import { parseServerArgs } from "./cli.ts";
import { SERVER_VERSION } from "./version.ts";

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
  });
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
