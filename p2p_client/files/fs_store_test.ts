import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { systemRuntime } from "../../shared/runtime/system.ts";
import { defaultDownloadsDir, FsDownloadStore, openFileSource } from "./fs_store.ts";
import { FileTransfers } from "./transfers.ts";
import type { FileEvent } from "./types.ts";

const PEER = "a".repeat(40);
const record = (id: string, name: string, size = 10) => ({
  peer: PEER,
  id,
  name,
  size,
  mtimeMs: 5,
  offset: 0,
});

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-files-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fs store: ../../etc/passwd and absolute names land inside the folder, never overwriting", async () => {
  await withDir(async (root) => {
    const dir = `${root}/downloads`;
    const store = new FsDownloadStore(dir);
    const before = await Deno.readTextFile("/etc/passwd").catch(() => undefined);
    const names = ["../../etc/passwd", "/etc/passwd", "..\\..\\passwd", "pass\u0000wd", "CON"];
    const paths: string[] = [];
    for (const [i, name] of names.entries()) {
      const partial = await store.create(record(i.toString(16).padStart(32, "0"), name, 3));
      await partial.write(0, new Uint8Array([1, 2, i]));
      await partial.checkpoint(3);
      paths.push(await partial.finish());
    }
    assert.deepEqual(paths, [
      `${dir}/passwd`,
      `${dir}/passwd (1)`,
      `${dir}/passwd (2)`,
      `${dir}/pass_wd`,
      `${dir}/_CON`,
    ]);
    assert.deepEqual(await Deno.readFile(`${dir}/passwd (1)`), new Uint8Array([1, 2, 1]));
    if (before !== undefined) assert.equal(await Deno.readTextFile("/etc/passwd"), before);
    // Only the finished files remain: no partial data, no records.
    const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(left, ["_CON", "pass_wd", "passwd", "passwd (1)", "passwd (2)"]);
  });
});

Deno.test("fs store: a partial download and its record survive a restart", async () => {
  await withDir(async (dir) => {
    const id = "ab".repeat(16);
    const first = new FsDownloadStore(dir);
    const partial = await first.create(record(id, "doc.pdf", 6));
    await partial.write(0, new Uint8Array([1, 2, 3, 4]));
    await partial.checkpoint(3); // only three bytes recorded as safe
    // A new process: found by ID, and by name, size and mtime under a new ID.
    const again = new FsDownloadStore(dir);
    assert.equal(await again.findPartial("b".repeat(40), id, "doc.pdf", 6, 5), undefined);
    const byId = await again.findPartial(PEER, id, "other", 1, 1);
    assert.equal(byId?.record.offset, 3);
    const byName = await again.findPartial(PEER, "cd".repeat(16), "doc.pdf", 6, 5);
    assert.equal(byName?.record.id, id);
    await byName!.truncate(3);
    const into = new Uint8Array(8);
    assert.equal(await byName!.read(0, into), 3);
    assert.deepEqual(into.subarray(0, 3), new Uint8Array([1, 2, 3]));
    await byName!.discard();
    assert.equal(await again.findPartial(PEER, id, "doc.pdf", 6, 5), undefined);
    // Garbage records are ignored.
    await Deno.writeTextFile(`${dir}/.p2p-partial-${"ef".repeat(16)}.json`, "{not json");
    await Deno.writeTextFile(`${dir}/.p2p-partial-${"ef".repeat(16)}`, "");
    assert.equal(await again.findPartial(PEER, "ef".repeat(16), "x", 1, 1), undefined);
  });
});

Deno.test("fs store: sources refuse what is not a regular file; the default folder", async () => {
  await withDir(async (dir) => {
    await assert.rejects(() => openFileSource(`${dir}/missing`), /no such file/);
    await assert.rejects(() => openFileSource(dir), /not a regular file/);
    await Deno.writeFile(`${dir}/x.bin`, new Uint8Array([9, 8, 7]));
    const source = await openFileSource(`${dir}/x.bin`);
    assert.equal(source.name, "x.bin");
    assert.equal(source.size, 3);
    const into = new Uint8Array(2);
    assert.equal(await source.read(1, into), 2);
    assert.deepEqual(into, new Uint8Array([8, 7]));
    source.close();
  });
  assert.equal(
    defaultDownloadsDir((n) => (n === "HOME" ? "/home/u" : undefined)),
    "/home/u/Downloads/p2p",
  );
  assert.equal(defaultDownloadsDir(() => undefined), undefined);
});

Deno.test("fs store: a 24 MiB file between two transfer managers on real disks, restart included", async () => {
  await withDir(async (dir) => {
    const size = 24 * (1 << 20) + 3;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) data[i] = (i >>> 12) & 0xff;
    await Deno.writeFile(`${dir}/input.bin`, data);
    const events: FileEvent[] = [];
    const A = "a".repeat(40);
    const B = "b".repeat(40);
    const sides: Record<string, FileTransfers> = {};
    let generation = 0; // a restart resets the channel: what was in flight is lost
    const make = (me: string) =>
      new FileTransfers({
        runtime: systemRuntime,
        send: (to, message) => {
          // An ordered, unbounded in-process pipe.
          const sentIn = generation;
          queueMicrotask(() => {
            if (sentIn === generation) sides[to].onMessage(me, message);
          });
          return true;
        },
        emit: (event) => events.push(event),
        openSource: openFileSource,
        store: new FsDownloadStore(`${dir}/${me[0]}`),
        decide: () => "accept",
        checkpointBytes: 1 << 20,
      });
    sides[A] = make(A);
    sides[B] = make(B);
    await sides[A].sendFile(B, `${dir}/input.bin`);
    const deadline = systemRuntime.now() + 60_000;
    // Restart the receiver once it has some of the file.
    while ((sides[B].list()[0]?.bytes ?? 0) < 8 << 20 && systemRuntime.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    sides[B].close();
    generation++;
    sides[B] = make(B);
    sides[A].peerReset(B);
    while (!events.some((e) => e.state === "received") && systemRuntime.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const received = events.find((e) => e.state === "received");
    assert.ok(received, JSON.stringify(events.filter((e) => e.state === "failed")));
    assert.equal(received.path, `${dir}/b/input.bin`);
    assert.equal(received.sha256, createHash("sha256").update(data).digest("hex"));
    assert.deepEqual(await Deno.readFile(`${dir}/b/input.bin`), data);
    while (sides[A].active && systemRuntime.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(events.some((e) => e.state === "sent"));
    sides[A].close();
    sides[B].close();
  });
});
