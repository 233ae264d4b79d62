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
    await Deno.writeTextFile(path, '{"version": 1, "privateKey": "AAAA"}', { mode: 0o600 });
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
    await assert.rejects(loadOrCreateIdentity(path), IdentityStoreError);
    await Deno.writeTextFile(path, "nope");
    await assert.rejects(loadOrCreateIdentity(path), /not valid JSON/);
    assert.equal(await Deno.readTextFile(path), "nope");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an identity file others can read is refused, as OpenSSH refuses such keys", async (t) => {
  if (Deno.build.os === "windows") {
    await t.step({ name: "skipped: no POSIX modes on Windows", ignore: true, fn: () => {} });
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/identity.json`;
    const me = await loadOrCreateIdentity(path);
    for (const mode of [0o644, 0o666, 0o640, 0o604]) {
      await Deno.chmod(path, mode);
      await assert.rejects(
        loadOrCreateIdentity(path),
        (error: Error) =>
          error instanceof IdentityStoreError &&
          error.message.includes(`permissions 0${mode.toString(8)} are too open`) &&
          error.message.includes(`chmod 600 ${path}`),
      );
    }
    await Deno.chmod(path, 0o400);
    assert.equal((await loadOrCreateIdentity(path)).id, me.id);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a path Deno guards or the OS forbids gets a message saying what to do", async () => {
  await assert.rejects(
    loadOrCreateIdentity("/proc/nope/id.json"),
    (error: Error) =>
      error instanceof IdentityStoreError && /--identity PATH/.test(error.message) &&
      !/--allow-all/.test(error.message),
  );
});
