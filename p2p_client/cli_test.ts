import assert from "node:assert/strict";
import { buildCli, type ClientSettings, resolveServers } from "./cli.ts";

function parse(args: string[]): ClientSettings {
  let settings: ClientSettings | undefined;
  const program = buildCli((s) => {
    settings = s;
  });
  program.exitOverride();
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  program.parse(args, { from: "user" });
  assert.ok(settings);
  return settings;
}

Deno.test("defaults work against a local server", () => {
  const settings = parse([]);
  assert.deepEqual(settings.servers, []);
  assert.equal(settings.tcpPort, 3478);
  assert.equal(settings.udpPort, 0);
  assert.equal(settings.bind, "0.0.0.0");
  assert.equal(settings.json, false);
  assert.equal(settings.ephemeral, false);
});

Deno.test("flags are parsed and validated", () => {
  const settings = parse([
    "--server",
    "10.0.0.1",
    "--server",
    "[::1]:4000",
    "--json",
    "--ephemeral",
    "--udp-port",
    "40000",
    "--log-level",
    "debug",
  ]);
  assert.deepEqual(settings.servers, ["10.0.0.1", "[::1]:4000"]);
  assert.equal(settings.udpPort, 40000);
  assert.equal(settings.logLevel, "debug");
  assert.throws(() => parse(["--udp-port", "70000"]));
  assert.throws(() => parse(["--server", "a:b:c"]));
  assert.throws(() => parse(["--log-level", "loud"]));
});

Deno.test("resolveServers: --server wins, else config hosts with the TCP port", () => {
  assert.deepEqual(resolveServers(["10.0.0.1", "[::1]:4000"], [{ host: "x", port: 1 }], 3478), [
    { host: "10.0.0.1", port: 3478 },
    { host: "::1", port: 4000 },
  ]);
  assert.deepEqual(
    resolveServers([], [{ host: "127.0.0.1", port: 54321 }, { host: "127.0.0.1", port: 9 }], 3000),
    [{ host: "127.0.0.1", port: 3000 }],
  );
});

Deno.test("--relay takes server, turn or any (default any)", () => {
  assert.equal(parse([]).relay, "any");
  assert.equal(parse(["--relay", "turn"]).relay, "turn");
  assert.equal(parse(["--relay", "server"]).relay, "server");
  assert.throws(() => parse(["--relay", "coturn"]));
});
