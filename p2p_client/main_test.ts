import assert from "node:assert/strict";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function runClient(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "-A", "--config", CONFIG, MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("an invalid config exits non-zero, naming the file and the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/servers.json`;
    await Deno.writeTextFile(file, JSON.stringify({ stun: ["127.0.0.1:54321", "stun://[::1"] }));
    const result = await runClient(["--local-file", file, "--ephemeral"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`${file}: stun\\[1\\]: unclosed`));
    const json = await runClient(["--local-file", file, "--ephemeral", "--json"]);
    assert.equal(json.code, 2);
    const event = JSON.parse(json.stdout.trim());
    assert.equal(event.type, "error");
    assert.equal(event.code, "bad-config");
    const missing = await runClient(["--local-file", `${dir}/nope.json`, "--ephemeral"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json: cannot read \(file not found\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt identity file exits non-zero and is left alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/identity.json`;
    await Deno.writeTextFile(file, "{}");
    const result = await runClient(["--identity", file, "--server", "127.0.0.1:1"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /identity\.json/);
    assert.equal(await Deno.readTextFile(file), "{}");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--version and --help exit 0; bad flags exit non-zero", async () => {
  const version = await runClient(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  const help = await runClient(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--local-file/);
  const bad = await runClient(["--udp-port", "x"]);
  assert.notEqual(bad.code, 0);
});

Deno.test("--relay turn without a usable turn entry exits 2 and says why (no credential shown)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const none = `${dir}/none.json`;
    await Deno.writeTextFile(none, JSON.stringify({ stun: ["127.0.0.1:54321"], turn: [] }));
    const result = await runClient(["--local-file", none, "--ephemeral", "--relay", "turn"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--relay turn needs a usable "turn" entry/);
    const tls = `${dir}/tls.json`;
    await Deno.writeTextFile(
      tls,
      JSON.stringify({
        stun: ["127.0.0.1:54321"],
        turn: [{ url: "turns:127.0.0.1:5349", username: "u", credential: "hidden-pw" }],
      }),
    );
    const skipped = await runClient(["--local-file", tls, "--ephemeral", "--relay", "turn"]);
    assert.equal(skipped.code, 2);
    assert.match(skipped.stderr, /turns:127\.0\.0\.1:5349 skipped: only turn: over UDP/);
    assert.ok(!skipped.stderr.includes("hidden-pw"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
