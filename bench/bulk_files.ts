/**
 * The file transfer layer alone, disk to disk: one process runs both sides' `FileTransfers` with
 * real files (`FsDownloadStore`, `openFileSource`), joined by an in-process pipe that keeps the
 * channel's bulk budget (8 MiB unacknowledged, given back as messages arrive). Moves a file of
 * SIZE bytes (made first in DIR) and prints one JSON line: bytes, seconds, peak RSS of the process
 * (both sides together), and whether the SHA-256 matched.
 *
 * Run: `deno run -A bench/bulk_files.ts DIR SIZE`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { FsDownloadStore, openFileSource } from "../p2p_client/files/fs_store.ts";
import { FileTransfers } from "../p2p_client/files/transfers.ts";
import { BufferPool } from "../p2p_client/files/buffer_pool.ts";
import { CHUNK_HEADER_BYTES } from "../shared/files/codec.ts";
import { MAX_LARGE_DATA_PAYLOAD_BYTES } from "../shared/peer/frames.ts";
import type { FileEvent } from "../p2p_client/files/types.ts";
import { systemRuntime } from "../shared/runtime/system.ts";

const BULK_BUDGET = 8 << 20;

async function peakRssMiB(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match === null ? 0 : Number(match[1]) / 1024;
}

async function main(): Promise<void> {
  const [dir, sizeText] = Deno.args;
  const size = Number(sizeText);
  const input = `${dir}/input.bin`;
  // The input file, written in 1 MiB pieces, and its hash.
  const hash = createHash("sha256");
  {
    const file = await Deno.open(input, { write: true, create: true, truncate: true });
    const piece = new Uint8Array(1 << 20);
    for (let at = 0; at < size; at += piece.length) {
      const part = piece.subarray(0, Math.min(piece.length, size - at));
      for (let i = 0; i < part.length; i += 512) part[i] = (at + i) >>> 9;
      hash.update(part);
      let done = 0;
      while (done < part.length) done += await file.write(part.subarray(done));
    }
    file.close();
  }
  const expected = hash.digest("hex");
  const A = "a".repeat(40);
  const B = "b".repeat(40);
  const sides: Record<string, FileTransfers> = {};
  // Chunks from a pool, as the client's: read into reused buffers, copied into reused ones.
  const pool = new BufferPool(CHUNK_HEADER_BYTES + MAX_LARGE_DATA_PAYLOAD_BYTES, 160);
  let bulkInFlight = 0;
  const events: FileEvent[] = [];
  const make = (me: string) =>
    new FileTransfers({
      runtime: systemRuntime,
      send: (to, message, priority) => {
        if (priority === "bulk") {
          if (bulkInFlight > 0 && bulkInFlight + message.length > BULK_BUDGET) return false;
          bulkInFlight += message.length;
        }
        setTimeout(() => {
          sides[to].onMessage(me, message);
          if (priority === "bulk") {
            bulkInFlight -= message.length;
            pool.release(message); // "acknowledged": the chunk's buffer is reused
            sides[me].roomAvailable(to);
          }
        }, 0);
        return true;
      },
      chunkPool: pool,
      emit: (event) => {
        if (event.state !== "progress") events.push(event);
      },
      openSource: openFileSource,
      store: new FsDownloadStore(`${dir}/downloads`),
      decide: () => "accept",
    });
  sides[A] = make(A);
  sides[B] = make(B);
  const start = performance.now();
  await sides[A].sendFile(B, input);
  while (!events.some((e) => e.state === "sent" || e.state === "failed")) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - start) / 1000;
  const received = events.find((e) => e.state === "received");
  console.log(JSON.stringify({
    bytes: size,
    seconds,
    rssMiB: await peakRssMiB(),
    intact: received?.sha256 === expected,
    failed: events.find((e) => e.state === "failed")?.reason,
  }));
  sides[A].close();
  sides[B].close();
}

if (import.meta.main) await main();
