import assert from "node:assert/strict";
import { acquireIdentityLock, IdentityLockedError } from "./identity_lock.ts";

Deno.test("identity lock: a second holder is refused with what to do; released, it is free", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/identity.json`;
  try {
    const first = acquireIdentityLock(path);
    assert.equal(Deno.readTextFileSync(first.lockPath).trim(), String(Deno.pid));
    assert.throws(
      () => acquireIdentityLock(path),
      (error: unknown) =>
        error instanceof IdentityLockedError && error.pid === Deno.pid &&
        /--ephemeral/.test(error.message) && /--identity PATH/.test(error.message) &&
        !error.message.includes("\n"),
    );
    first.release();
    acquireIdentityLock(path).release();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("identity lock: a lock left by a killed process is stale and taken over", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/identity.json`;
  const module = new URL("./identity_lock.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { acquireIdentityLock } from ${JSON.stringify(module)};
       acquireIdentityLock(${JSON.stringify(path)});
       console.log("locked");
       setTimeout(() => {}, 60_000);`,
    ],
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /locked/);
    assert.throws(() => acquireIdentityLock(path), IdentityLockedError);
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    // The lock file is still there, naming the dead PID; the lock itself went with the process.
    assert.equal(Deno.readTextFileSync(`${path}.lock`).trim(), String(child.pid));
    const lock = acquireIdentityLock(path);
    assert.equal(Deno.readTextFileSync(lock.lockPath).trim(), String(Deno.pid));
    lock.release();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("identity lock without advisory locks: live PID refuses, dead PID is stale", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/identity.json`;
  const alive = new Set([100, 200]);
  const system = (pid: number) => ({
    pid,
    isAlive: (other: number) => alive.has(other),
    advisoryLocks: false,
  });
  try {
    const first = acquireIdentityLock(path, system(100));
    assert.throws(
      () => acquireIdentityLock(path, system(200)),
      (error: unknown) => error instanceof IdentityLockedError && error.pid === 100,
    );
    alive.delete(100); // the holder died without releasing
    const second = acquireIdentityLock(path, system(200));
    assert.equal(Deno.readTextFileSync(second.lockPath).trim(), "200");
    first.release(); // not the holder any more: leaves the lock alone
    assert.equal(Deno.readTextFileSync(second.lockPath).trim(), "200");
    second.release();
    acquireIdentityLock(path, system(300)).release();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
