/**
 * File transfers over the real reliable channel on virtual time: a lossy, bandwidth-limited path
 * between two `ReliableChannel`s, each side's file messages and chat lines on its channel, as the
 * client carries them. Shows that a file arrives intact and that a chat line sent in the middle of
 * a transfer is not queued behind the file data.
 */
import assert from "node:assert/strict";
import { isFileMessage } from "../../shared/files/codec.ts";
import { MemoryDownloadStore, patternSource } from "../../testing/memory_files.ts";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { ReliableChannel } from "../reliable/reliable_channel.ts";
import { FileTransfers } from "./transfers.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const MiB = 1 << 20;

interface Side {
  channel: ReliableChannel;
  files: FileTransfers;
  store: MemoryDownloadStore;
  chat: { text: string; at: number }[];
}

/** Two sides joined by a path: `bytesPerMs` each way, `delayMs` latency, `loss` (seeded). */
function connect(
  runtime: VirtualRuntime,
  path: { bytesPerMs: number; delayMs: number; loss: number },
) {
  const sides: Record<string, Side> = {};
  const freeAt: Record<string, number> = { [A]: 0, [B]: 0 };
  const timers: Record<string, number | undefined> = {};
  const schedule = (me: string) => {
    const side = sides[me];
    const deadline = side.channel.nextDeadline();
    runtime.clearTimer(timers[me]);
    if (deadline === undefined) return;
    timers[me] = runtime.setTimer(() => {
      side.channel.tick();
      schedule(me);
    }, Math.max(0, deadline - runtime.now()));
  };
  const make = (me: string, other: string): Side => {
    const side = {} as Side;
    side.chat = [];
    side.store = new MemoryDownloadStore();
    side.channel = new ReliableChannel({
      now: () => runtime.now(),
      send: (frame) => {
        // The path: serialized at its bandwidth, then delayed, sometimes lost.
        const now = runtime.now();
        freeAt[me] = Math.max(now, freeAt[me]) + (frame.length + 29) / path.bytesPerMs;
        if (runtime.random() < path.loss) return;
        runtime.setTimer(() => {
          sides[other].channel.receive(frame);
          schedule(other);
        }, freeAt[me] - now + path.delayMs);
      },
      deliver: (message) => {
        if (isFileMessage(message)) side.files.onMessage(other, message);
        else side.chat.push({ text: new TextDecoder().decode(message), at: runtime.now() });
      },
      onAcknowledged: () => side.files.roomAvailable(other),
      streamId: me === A ? 1 : 2,
    });
    side.files = new FileTransfers({
      runtime,
      send: (_to, message, priority) => {
        if (!side.channel.hasRoomFor(message.length, priority)) return false;
        side.channel.sendMessage(message, priority);
        schedule(me);
        return true;
      },
      emit: () => {},
      openSource: () => Promise.resolve(patternSource("film.mkv", 24 * MiB, 3)),
      store: side.store,
      decide: () => "accept",
    });
    return side;
  };
  sides[A] = make(A, B);
  sides[B] = make(B, A);
  return sides;
}

Deno.test("files over the reliable channel: intact under loss; a chat line overtakes file data", async () => {
  const runtime = new VirtualRuntime({ seed: 5 });
  // 10 MB/s, 10 ms one way, 0.5% loss.
  const sides = connect(runtime, { bytesPerMs: 10_000, delayMs: 10, loss: 0.005 });
  await sides[A].files.sendFile(B, "film.mkv");
  // Wait until file data fills the channel's bulk budget, then send a chat line.
  assert.ok(
    await runtime.runUntil(() => (sides[B].files.list()[0]?.bytes ?? 0) > 4 * MiB, 60_000),
  );
  // The receiver's 4 MiB credit window bounds what the sender queues: over 2 MiB is seconds of
  // data on this path.
  assert.ok(sides[A].channel.stats.queuedBytes > 2 * MiB, `${sides[A].channel.stats.queuedBytes}`);
  const sentAt = runtime.now();
  sides[A].channel.sendMessage(new TextEncoder().encode("are you there?"));
  assert.ok(await runtime.runUntil(() => sides[B].chat.length === 1, 10_000, 1));
  const latency = sides[B].chat[0].at - sentAt;
  // Behind the queued file data (over 2 MiB, at the ~1 MB/s this lossy path gives) it would wait
  // seconds; it waits only for what is in flight and the rest of the 64 KiB chunk being cut.
  assert.ok(latency < 250, `chat line took ${latency} ms`);
  assert.ok(
    await runtime.runUntil(() => sides[B].store.files.has("film.mkv"), 120_000, 50),
  );
  const file = sides[B].store.files.get("film.mkv")!;
  assert.equal(file.length, 24 * MiB);
  const expected = new Uint8Array(24 * MiB);
  (await import("../../testing/memory_files.ts")).fillPattern(3, 0, expected);
  assert.ok(file.every((b, i) => b === expected[i]));
  assert.ok(sides[A].channel.stats.retransmissions > 0, "the path lost packets");
  assert.ok(await runtime.runUntil(() => !sides[A].files.active, 10_000));
});
