import assert from "node:assert/strict";
import { ConfigError } from "./errors.ts";
import { loadClientConfig, parseClientConfigText, parseTurnUrl } from "./client_config.ts";

function configError(text: string): ConfigError {
  try {
    parseClientConfigText(text, "cfg.json");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error;
  }
  assert.fail(`expected ${text} to be rejected`);
}

Deno.test("a valid config parses every stun form and turn entries", () => {
  const config = parseClientConfigText(
    JSON.stringify({
      stun: ["127.0.0.1:54321", "stun:example.org:3478", "stun://[::1]:3478"],
      turn: [{ url: "turn:turn.example.org:3478?transport=udp", username: "u", credential: "p" }],
    }),
    "cfg.json",
  );
  assert.deepEqual(config.stun, [
    { host: "127.0.0.1", port: 54321 },
    { host: "example.org", port: 3478 },
    { host: "::1", port: 3478 },
  ]);
  assert.equal(config.turn[0].username, "u");
});

Deno.test("turn may be omitted", () => {
  assert.deepEqual(parseClientConfigText('{"stun":["a:1"]}', "f").turn, []);
});

Deno.test("errors name the file and the field", () => {
  let error = configError("{");
  assert.equal(error.file, "cfg.json");
  assert.match(error.message, /^cfg\.json: not valid JSON/);
  error = configError("[]");
  assert.match(error.message, /expected a JSON object/);
  error = configError('{"stun": "a:1"}');
  assert.equal(error.field, "stun");
  error = configError('{"stun": []}');
  assert.equal(error.field, "stun");
  error = configError('{"stun": ["ok:1", "bad"]}');
  assert.equal(error.field, "stun[1]");
  assert.match(error.message, /^cfg\.json: stun\[1\]: missing port/);
  error = configError('{"stun": ["ok:1", 5]}');
  assert.equal(error.field, "stun[1]");
  error = configError(
    '{"stun": ["ok:1"], "turn": [{"url": "http://x", "username": "u", "credential": "c"}]}',
  );
  assert.equal(error.field, "turn[0].url");
  error = configError('{"stun": ["ok:1"], "turn": [{"url": "turn:x", "credential": "c"}]}');
  assert.equal(error.field, "turn[0].username");
  error = configError(
    '{"stun": ["ok:1"], "turn": [{"url": "turn:x:70000", "username": "u", "credential": "c"}]}',
  );
  assert.equal(error.field, "turn[0].url");
  error = configError('{"stun": ["ok:1"], "extra": 1}');
  assert.equal(error.field, "extra");
});

Deno.test("loadClientConfig reports a missing file by name", async () => {
  await assert.rejects(loadClientConfig("/nonexistent/p2p.json"), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^\/nonexistent\/p2p\.json: cannot read \(file not found\)/);
    return true;
  });
});

Deno.test("the shipped resources/stun_servers.json is valid", async () => {
  const path = new URL("../../resources/stun_servers.json", import.meta.url).pathname;
  const config = await loadClientConfig(path);
  assert.ok(config.stun.length >= 1);
});

Deno.test("a missing field is named as missing, not as 'a undefined'", () => {
  const error = configError("{}");
  assert.match(error.message, /stun: .*got nothing \(the field is missing\)/);
  assert.doesNotMatch(error.message, /a undefined/);
  assert.match(configError('{"stun":[{}]}').message, /got an object/);
});

Deno.test("parseTurnUrl takes RFC 7065 URLs apart with their default ports and transports", () => {
  assert.deepEqual(parseTurnUrl("turn:127.0.0.1:3479"), {
    secure: false,
    host: "127.0.0.1",
    port: 3479,
    transport: "udp",
  });
  assert.deepEqual(parseTurnUrl("turn:[::1]"), {
    secure: false,
    host: "::1",
    port: 3478,
    transport: "udp",
  });
  assert.deepEqual(parseTurnUrl("turns:turn.example.org?transport=udp"), {
    secure: true,
    host: "turn.example.org",
    port: 5349,
    transport: "udp",
  });
  assert.equal(parseTurnUrl("turn:example.org:3478?transport=tcp")?.transport, "tcp");
  assert.equal(parseTurnUrl("turn:example.org:0"), undefined);
  assert.equal(parseTurnUrl("stun:example.org"), undefined);
  assert.equal(parseTurnUrl("turn://example.org"), undefined);
});
