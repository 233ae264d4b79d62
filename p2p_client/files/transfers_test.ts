import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decodeFileMessage, encodeFileMessage, isFileMessage } from "../../shared/files/codec.ts";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { sleep } from "../../shared/runtime/timing.ts";
import { fillPattern, MemoryDownloadStore, patternSource } from "../../testing/memory_files.ts";
import { FileTransfers, type FileTransfersOptions, type OfferDecision } from "./transfers.ts";
import type { FileEvent, FileSource } from "./types.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);

/**
 * Two clients' file transfers joined by a model of their reliable channel: ordered delivery,
 * `normal` messages after `latencyMs`, `bulk` ones also queued behind each other at `bytesPerMs`
 * (so control overtakes queued data, as in the channel), a bulk budget with room given back as
 * bulk messages arrive, and a reset that loses everything in flight.
 */
class Pair {
  readonly runtime = new VirtualRuntime({ seed: 3 });
  readonly events: FileEvent[] = [];
  readonly stores: Record<string, MemoryDownloadStore> = {
    [A]: new MemoryDownloadStore(),
    [B]: new MemoryDownloadStore(),
  };
  readonly sides: Record<string, FileTransfers> = {};
  readonly sources = new Map<string, FileSource>();
  latencyMs = 5;
  bytesPerMs = 50_000; // 50 MB/s
  bulkBudget = 4 << 20;
  /** Drop everything sent while true (a path that silently died). */
  down = false;
  /** Called on every message in transit; may change it (tests of damage and abuse). */
  tamper: ((from: string, message: Uint8Array) => Uint8Array | undefined) | undefined;
  bulkBytesSent = 0;
  maxUnwritten = 0;
  #generation = 0;
  #bulkInFlight: Record<string, number> = { [A]: 0, [B]: 0 };
  #bulkFreeAt: Record<string, number> = { [A]: 0, [B]: 0 };

  constructor(
    readonly decide: OfferDecision = "accept",
    readonly options: Partial<FileTransfersOptions> = {},
  ) {
    this.start(A);
    this.start(B);
  }

  /** (Re)starts one client's transfers (a restart keeps its store). */
  start(peer: string): FileTransfers {
    this.sides[peer]?.close();
    const other = peer === A ? B : A;
    const side = new FileTransfers({
      runtime: this.runtime,
      send: (to, message, priority) => this.#send(peer, to, message, priority),
      emit: (event) => this.events.push({ ...event, peer: `${peer[0]}>${event.peer[0]}` }),
      openSource: (path) => {
        const source = this.sources.get(path);
        if (source === undefined) return Promise.reject(new Error(`no file ${path}`));
        return Promise.resolve(source);
      },
      store: this.stores[peer],
      decide: () => this.decide,
      ...this.options,
    });
    this.sides[peer] = side;
    void other;
    return side;
  }

  #send(from: string, to: string, message: Uint8Array, priority: "normal" | "bulk"): boolean {
    assert.ok(isFileMessage(message));
    if (priority === "bulk") {
      if (
        this.#bulkInFlight[from] > 0 && this.#bulkInFlight[from] + message.length > this.bulkBudget
      ) {
        return false;
      }
      this.#bulkInFlight[from] += message.length;
      this.bulkBytesSent += message.length;
    }
    const generation = this.#generation;
    const now = this.runtime.now();
    let at = now + this.latencyMs;
    if (priority === "bulk") {
      const start = Math.max(now, this.#bulkFreeAt[from]);
      this.#bulkFreeAt[from] = start + message.length / this.bytesPerMs;
      at = this.#bulkFreeAt[from] + this.latencyMs;
    }
    const lost = this.down;
    this.runtime.setTimer(() => {
      if (priority === "bulk" && generation === this.#generation) {
        this.#bulkInFlight[from] -= message.length;
        this.sides[from].roomAvailable(to);
      }
      if (lost || generation !== this.#generation) return;
      const delivered = this.tamper ? this.tamper(from, message) : message;
      if (delivered !== undefined) this.sides[to].onMessage(from, delivered);
    }, at - now);
    return true;
  }

  /** The channel between them is reset: everything in flight is lost; both are told. */
  reset(): void {
    this.#generation++;
    this.#bulkInFlight = { [A]: 0, [B]: 0 };
    this.#bulkFreeAt = { [A]: 0, [B]: 0 };
    this.sides[A].peerReset(B);
    this.sides[B].peerReset(A);
  }

  final(peer: string, state: FileEvent["state"]): FileEvent | undefined {
    return this.events.find((e) => e.peer === peer && e.state === state);
  }

  async runUntilDone(limitMs = 600_000): Promise<boolean> {
    return await this.runtime.runUntil(
      () => !this.sides[A].active && !this.sides[B].active,
      limitMs,
      50,
    );
  }
}

function sha256Of(size: number, seed: number): string {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(1 << 20);
  for (let at = 0; at < size; at += buffer.length) {
    const piece = buffer.subarray(0, Math.min(buffer.length, size - at));
    fillPattern(seed, at, piece);
    hash.update(piece);
  }
  return hash.digest("hex");
}

function expectPattern(bytes: Uint8Array | undefined, size: number, seed: number): void {
  assert.ok(bytes !== undefined, "file saved");
  assert.equal(bytes.length, size);
  const expected = new Uint8Array(size);
  fillPattern(seed, 0, expected);
  assert.ok(bytes.every((b, i) => b === expected[i]), "content intact");
}

const MiB = 1 << 20;

Deno.test("files: a 20 MiB file arrives intact, hashed end to end, memory bounded", async () => {
  const pair = new Pair("accept", { windowBytes: 4 * MiB });
  pair.bytesPerMs = 10_000; // 10 MB/s: two seconds
  const size = 20 * MiB + 12_345;
  pair.sources.set("/tmp/data.bin", patternSource("data.bin", size, 1));
  // Watch how far the receiver's granted credit runs ahead of what it wrote.
  let maxAhead = 0;
  pair.tamper = (from, message) => {
    const decoded = decodeFileMessage(message);
    if (from === B && (decoded.kind === "credit" || decoded.kind === "accept")) {
      const written = pair.sides[B].list()[0]?.bytes ?? 0;
      maxAhead = Math.max(maxAhead, decoded.credit - written);
    }
    return message;
  };
  const id = await pair.sides[A].sendFile(B, "/tmp/data.bin");
  assert.ok(await pair.runUntilDone());
  const sha = sha256Of(size, 1);
  const received = pair.final("b>a", "received");
  assert.deepEqual(
    { ...received, rate: undefined },
    {
      type: "file",
      id,
      peer: "b>a",
      direction: "receive",
      name: "data.bin",
      bytes: size,
      size,
      state: "received",
      path: "/downloads/data.bin",
      sha256: sha,
      rate: undefined,
    },
  );
  assert.equal(pair.final("a>b", "sent")?.sha256, sha);
  assert.ok(pair.final("a>b", "offered") && pair.final("b>a", "offered"));
  expectPattern(pair.stores[B].files.get("data.bin"), size, 1);
  // Progress events with a rate and an ETA, at most one per 500 ms per side.
  const progress = pair.events.filter((e) => e.peer === "a>b" && e.state === "progress");
  assert.ok(progress.length >= 3, `${progress.length} progress events`);
  assert.ok(progress.some((e) => (e.rate ?? 0) > 5e6 && e.etaSeconds !== undefined));
  // Flow control: credit never ran more than the window ahead of the disk; each byte sent once.
  assert.ok(maxAhead <= 4 * MiB, `credit ahead ${maxAhead}`);
  assert.ok(pair.bulkBytesSent < size * 1.01);
  assert.equal(pair.sides[A].active, false);
  assert.equal(pair.stores[B].partials.size, 0);
});

Deno.test("files: policy ask waits for the user; accept and reject; policy none refuses", async () => {
  const ask = new Pair("ask");
  ask.sources.set("f", patternSource("photo.jpg", 1000, 2));
  const id = await ask.sides[A].sendFile(B, "f");
  await ask.runtime.advance(100);
  assert.equal(ask.final("b>a", "offered")?.name, "photo.jpg");
  assert.deepEqual(ask.sides[B].list().map((t) => t.state), ["asking"]);
  assert.equal(ask.sides[B].accept("nope"), false);
  assert.equal(ask.sides[B].accept(id.slice(0, 2)), false); // too short a prefix
  assert.equal(ask.sides[B].accept(id.slice(0, 6)), true); // a unique prefix will do
  assert.equal(ask.sides[B].accept(id), false); // no longer waiting
  assert.ok(await ask.runUntilDone());
  expectPattern(ask.stores[B].files.get("photo.jpg"), 1000, 2);

  const declined = new Pair("ask");
  declined.sources.set("f", patternSource("x.txt", 10, 3));
  const id2 = await declined.sides[A].sendFile(B, "f");
  await declined.runtime.advance(100);
  assert.equal(declined.sides[B].reject(id2), true);
  assert.ok(await declined.runUntilDone());
  assert.match(declined.final("a>b", "failed")?.reason ?? "", /declined by the peer/);

  const none = new Pair("reject");
  none.sources.set("f", patternSource("x.txt", 10, 3));
  await none.sides[A].sendFile(B, "f");
  assert.ok(await none.runUntilDone());
  assert.match(none.final("a>b", "failed")?.reason ?? "", /declined by the peer: not accepted/);
  assert.match(none.final("b>a", "failed")?.reason ?? "", /policy/);
  assert.equal(none.stores[B].partials.size + none.stores[B].files.size, 0);
});

Deno.test("files: a channel reset mid-transfer (path change) resumes where the receiver is", async () => {
  const pair = new Pair();
  const size = 12 * MiB;
  pair.sources.set("f", patternSource("big.iso", size, 4));
  await pair.sides[A].sendFile(B, "f");
  assert.ok(
    await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > 5 * MiB, 60_000),
  );
  pair.reset();
  assert.ok(await pair.runUntilDone());
  expectPattern(pair.stores[B].files.get("big.iso"), size, 4);
  // Only what was in flight at the reset went twice.
  assert.ok(pair.bulkBytesSent < size + 6 * MiB, `${pair.bulkBytesSent} bulk bytes`);
});

Deno.test("files: the receiver restarts (crash) and the transfer resumes from its checkpoint", async () => {
  const pair = new Pair("ask", { checkpointBytes: 2 * MiB });
  const size = 16 * MiB + 7;
  pair.sources.set("f", patternSource("movie.mkv", size, 5));
  const id = await pair.sides[A].sendFile(B, "f");
  await pair.runtime.advance(50);
  pair.sides[B].accept(id);
  assert.ok(
    await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > 9 * MiB, 60_000),
  );
  pair.stores[B].crash(); // unflushed writes are lost
  pair.start(B); // a new process: nothing in memory
  pair.reset();
  assert.ok(await pair.runUntilDone());
  // No second question: a partial download of that file was accepted before.
  assert.equal(pair.events.filter((e) => e.peer === "b>a" && e.state === "offered").length, 1);
  expectPattern(pair.stores[B].files.get("movie.mkv"), size, 5);
  assert.ok(pair.bulkBytesSent < size + 10 * MiB, `${pair.bulkBytesSent}`);
  assert.ok(pair.bulkBytesSent > size, "some bytes went again after the crash");
});

Deno.test("files: the sender restarts and sends the same file again: resumed, not restarted", async () => {
  const pair = new Pair("accept", { checkpointBytes: MiB });
  const size = 10 * MiB;
  pair.sources.set("f", patternSource("same.bin", size, 6));
  await pair.sides[A].sendFile(B, "f");
  assert.ok(
    await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > 6 * MiB, 60_000),
  );
  pair.start(A);
  pair.reset();
  // B's transfer now waits; after it gives up it keeps the partial file for a resume.
  pair.bulkBytesSent = 0;
  await pair.sides[A].sendFile(B, "f");
  assert.ok(await pair.runtime.runUntil(() => pair.stores[B].files.has("same.bin"), 60_000));
  expectPattern(pair.stores[B].files.get("same.bin"), size, 6);
  assert.ok(pair.bulkBytesSent <= 4 * MiB + 65_536, `${pair.bulkBytesSent} bytes sent again`);
});

Deno.test("files: a silent stall is detected and the transfer resumes when the path returns", async () => {
  const pair = new Pair("accept", { stallMs: 10_000 });
  const size = 8 * MiB;
  pair.sources.set("f", patternSource("s.bin", size, 7));
  await pair.sides[A].sendFile(B, "f");
  assert.ok(
    await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > 2 * MiB, 60_000),
  );
  pair.down = true; // everything sent from now on is lost, nobody is told
  await pair.runtime.advance(5_000);
  pair.down = false;
  // Without a reset, the bulk budget of the lost messages is never given back: the channel of
  // the model has lost them, as a real one would retransmit them; here the stall timer offers
  // again and the receiver's ACCEPT restarts the sender from what arrived.
  pair.reset();
  assert.ok(await pair.runUntilDone(120_000));
  expectPattern(pair.stores[B].files.get("s.bin"), size, 7);
});

Deno.test("files: a stall with no reset is repaired by the stall timer (offer again)", async () => {
  const pair = new Pair("accept", { stallMs: 10_000 });
  const size = 6 * MiB;
  pair.sources.set("f", patternSource("t.bin", size, 8));
  await pair.sides[A].sendFile(B, "f");
  assert.ok(await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > MiB, 60_000));
  // Lose CHUNK messages for 3 s (the channel failed them), but let everything else through.
  const until = pair.runtime.now() + 3000;
  pair.tamper = (_from, message) =>
    pair.runtime.now() < until && decodeFileMessage(message).kind === "chunk" ? undefined : message;
  assert.ok(await pair.runUntilDone(120_000));
  expectPattern(pair.stores[B].files.get("t.bin"), size, 8);
});

Deno.test("files: cancel from either side; the receiver's partial file is deleted", async () => {
  const pair = new Pair();
  pair.sources.set("f", patternSource("c.bin", 8 * MiB, 9));
  const id = await pair.sides[A].sendFile(B, "f");
  assert.ok(await pair.runtime.runUntil(() => (pair.sides[B].list()[0]?.bytes ?? 0) > MiB, 60_000));
  assert.equal(pair.sides[A].cancel(id.slice(0, 8)), true);
  assert.ok(await pair.runUntilDone());
  assert.equal(pair.final("a>b", "failed")?.reason, "cancelled");
  assert.match(pair.final("b>a", "failed")?.reason ?? "", /cancelled by the peer/);
  assert.equal(pair.stores[B].partials.size, 0);
  assert.equal(pair.sides[A].cancel(id), false); // already over

  const other = new Pair();
  const source = patternSource("d.bin", 8 * MiB, 9);
  other.sources.set("f", source);
  const id2 = await other.sides[A].sendFile(B, "f");
  assert.ok(
    await other.runtime.runUntil(() => (other.sides[B].list()[0]?.bytes ?? 0) > MiB, 60_000),
  );
  assert.equal(other.sides[B].cancel(id2), true);
  assert.ok(await other.runUntilDone());
  assert.match(other.final("a>b", "failed")?.reason ?? "", /cancelled by the peer/);
  assert.equal(source.closed, true);
});

Deno.test("files: damaged data fails the SHA-256 check and nothing is saved", async () => {
  const pair = new Pair();
  pair.sources.set("f", patternSource("e.bin", 3 * MiB, 10));
  let damaged = false;
  pair.tamper = (_from, message) => {
    const decoded = decodeFileMessage(message);
    if (!damaged && decoded.kind === "chunk" && decoded.offset > MiB) {
      damaged = true;
      const copy = message.slice();
      copy[copy.length - 1] ^= 1;
      return copy;
    }
    return message;
  };
  await pair.sides[A].sendFile(B, "f");
  assert.ok(await pair.runUntilDone());
  assert.ok(damaged);
  assert.match(pair.final("b>a", "failed")?.reason ?? "", /SHA-256 mismatch/);
  assert.match(pair.final("a>b", "failed")?.reason ?? "", /SHA-256 mismatch/);
  assert.equal(pair.stores[B].files.size + pair.stores[B].partials.size, 0);
});

Deno.test("files: a sender ignoring credit or the size is cut off; other peers cannot interfere", async () => {
  const pair = new Pair("accept", { windowBytes: 512 << 10, chunkBytes: 128 << 10 });
  pair.sources.set("f", patternSource("g.bin", 4 * MiB, 11));
  const id = await pair.sides[A].sendFile(B, "f");
  await pair.runtime.advance(20);
  // A third peer's cancel and chunks for A's transfer are ignored.
  const C = "c".repeat(40);
  pair.sides[B].onMessage(C, encodeFileMessage({ kind: "cancel", id, reason: "x" }));
  pair.sides[B].onMessage(C, new Uint8Array([0xff, 0x04, 1, 2])); // malformed: ignored
  assert.equal(pair.sides[B].list()[0].state, "receiving");
  // A chunk far beyond the granted credit: the receiver stops the transfer.
  pair.sides[B].onMessage(
    A,
    encodeFileMessage({ kind: "chunk", id, offset: 0, bytes: new Uint8Array(MiB - 26) }),
  );
  assert.ok(await pair.runUntilDone());
  assert.match(pair.final("b>a", "failed")?.reason ?? "", /flow control/);
});

Deno.test("files: an empty file, a missing file, and names made safe by the store", async () => {
  const pair = new Pair();
  pair.sources.set("empty", patternSource("../../etc/passwd", 0, 0));
  await pair.sides[A].sendFile(B, "empty");
  assert.ok(await pair.runUntilDone());
  assert.equal(pair.final("b>a", "received")?.path, "/downloads/passwd");
  assert.equal(pair.final("b>a", "received")?.sha256, createHash("sha256").digest("hex"));
  await pair.sides[A].sendFile(B, "empty");
  assert.ok(await pair.runUntilDone());
  assert.ok(pair.stores[B].files.has("passwd (1)"));
  await assert.rejects(() => pair.sides[A].sendFile(B, "missing"), /no file missing/);
});

Deno.test("files: a peer cannot flood offers; finished transfers are forgotten beyond a limit", async () => {
  const pair = new Pair("ask", { maxIncomingPerPeer: 3, keepFinished: 2 });
  for (let i = 0; i < 5; i++) pair.sources.set(`f${i}`, patternSource(`f${i}.txt`, 10, i));
  for (let i = 0; i < 5; i++) await pair.sides[A].sendFile(B, `f${i}`);
  await pair.runtime.advance(100);
  assert.equal(pair.sides[B].list().length, 3);
  const refused = pair.events.filter((e) => e.peer === "a>b" && e.state === "failed");
  assert.equal(refused.length, 2);
  assert.match(refused[0].reason ?? "", /too many transfers at once/);
  // A's list: three waiting, two failed; after more finish, only the newest two finished stay.
  for (const t of pair.sides[B].list()) pair.sides[B].reject(t.id);
  await pair.runtime.advance(100);
  pair.sources.set("g", patternSource("g.txt", 10, 9));
  await pair.sides[A].sendFile(B, "g");
  const states = pair.sides[A].list().map((t) => t.state);
  assert.deepEqual(states.filter((s) => s === "failed").length, 2);
});

Deno.test("files: with a message prefix and a chunk pool, every message carries the prefix and chunks reuse pooled buffers", async () => {
  const { BufferPool } = await import("./buffer_pool.ts");
  const { CHUNK_HEADER_BYTES } = await import("../../shared/files/codec.ts");
  const runtime = new VirtualRuntime({ seed: 9 });
  const prefix = new Uint8Array([0xaa, 0xbb, 0xcc]);
  const chunkBytes = 1000;
  const pool = new BufferPool(prefix.length + CHUNK_HEADER_BYTES + chunkBytes, 8);
  const sent: { message: Uint8Array; priority: string }[] = [];
  let room = 4; // bulk messages the "channel" takes before it is full
  const sender = new FileTransfers({
    runtime,
    send: (_to, message, priority) => {
      if (priority === "bulk") {
        if (room === 0) return false;
        room--;
      }
      sent.push({ message, priority });
      return true;
    },
    emit: () => {},
    openSource: () => Promise.resolve(patternSource("p.bin", 20 * chunkBytes, 4)),
    store: new MemoryDownloadStore(),
    decide: () => "accept",
    chunkBytes,
    windowBytes: 4 * chunkBytes,
    chunkPool: pool,
    messagePrefix: prefix,
  });
  const id = await sender.sendFile(B, "p.bin");
  const offer = sent.shift()!;
  assert.deepEqual(offer.message.subarray(0, 3), prefix);
  assert.equal(decodeFileMessage(offer.message.subarray(3)).kind, "offer");
  sender.onMessage(
    B,
    encodeFileMessage({ kind: "accept", id, offset: 0, credit: 20 * chunkBytes }),
  );
  const received = new Uint8Array(20 * chunkBytes);
  for (let round = 0; round < 100 && sent.length + room > 0; round++) {
    await runtime.advance(1);
    // "Acknowledge" what was sent: its bytes are checked, its buffer goes back to the pool.
    for (const { message, priority } of sent.splice(0)) {
      assert.deepEqual(message.subarray(0, 3), prefix);
      const decoded = decodeFileMessage(message.subarray(3));
      if (decoded.kind === "chunk") received.set(decoded.bytes, decoded.offset);
      if (priority === "bulk") {
        pool.release(message);
        room++;
      }
    }
    sender.roomAvailable(B);
    if (sender.list()[0]?.state === "finishing") break;
  }
  const expected = new Uint8Array(20 * chunkBytes);
  fillPattern(4, 0, expected);
  assert.deepEqual(received, expected);
  assert.ok(pool.allocated <= 5, `${pool.allocated} buffers for 20 chunks`);
  sender.close();
});

Deno.test("files: the same file offered again while its partial file opens never shares that file: no failure, every saved copy intact", async () => {
  const pair = new Pair("accept");
  // A store whose partial file can be found at once but takes 20 ms to open (a disk).
  const slow = new MemoryDownloadStore();
  const create = slow.create.bind(slow);
  slow.create = (record) => create(record).then((file) => sleep(pair.runtime, 20).then(() => file));
  pair.stores[B] = slow;
  pair.start(B);
  const size = 3 * MiB;
  pair.sources.set("f", patternSource("dup.bin", size, 8));
  await pair.sides[A].sendFile(B, "f");
  await pair.runtime.advance(10); // the second offer arrives while the first file opens
  await pair.sides[A].sendFile(B, "f");
  assert.ok(await pair.runUntilDone());
  assert.deepEqual(pair.events.filter((e) => e.state === "failed"), [], "no failure");
  assert.equal(pair.events.filter((e) => e.peer === "a>b" && e.state === "sent").length, 2);
  const saved = [...slow.files.keys()];
  assert.ok(saved.length >= 1 && saved.length <= 2, `${saved}`);
  for (const name of saved) expectPattern(slow.files.get(name), size, 8);
});
