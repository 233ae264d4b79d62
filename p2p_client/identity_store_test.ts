import assert from "node:assert/strict";
import { defaultIdentityPath, IdentityStoreError, loadOrCreateIdentity } from "./identity_store.ts";

Deno.test("defaultIdentityPath prefers XDG_CONFIG_HOME, then ~/.config", () => {
  assert.equal(
    defaultIdentityPath({ xdgConfigHome: "/x", home: "/h" }),
    "/x/p2p/identity.json",
  );
  assert.equal(defaultIdentityPath({ home: "/h" }), "/h/.config/p2p/identity.json");
  assert.equal(defaultIdentityPath({}), undefined);
});

Deno.test("an identity is created once with mode 0600 and loaded again with the same ID", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/identity.json`;
    const first = await loadOrCreateIdentity(path);
    const stat = await Deno.stat(path);
    // Windows has no POSIX modes; the file is private to the user through its profile directory.
    if (Deno.build.os !== "windows") assert.equal((stat.mode ?? 0) & 0o777, 0o600);
    const second = await loadOrCreateIdentity(path);
    assert.equal(second.id, first.id);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt identity file is reported, never overwritten", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/identity.json`;
    await Deno.writeTextFile(path, '{"version": 1, "privateKey": "AAAA"}');
    await assert.rejects(loadOrCreateIdentity(path), IdentityStoreError);
    await Deno.writeTextFile(path, "nope");
    await assert.rejects(loadOrCreateIdentity(path), /not valid JSON/);
    assert.equal(await Deno.readTextFile(path), "nope");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
