/**
 * Issue 14: memory stays bounded whatever the file size. Two processes run a direct link's
 * per-packet path with the file layer (`testing/bulk_peer.ts`: reliable channel, secure session,
 * Deno UDP on loopback, `FileTransfers` reading and writing real files, `--allow-ffi` as the
 * bench runs it) and move a 256 MiB file; the test samples each one's private memory (`RssAnon`
 * in `/proc/<pid>/status`, every 20 ms) and reads its peak resident memory (`VmHWM`) at the end.
 *
 * Bounds: private memory at most 40 MiB per side (an idle process has about 16 MiB; the old path,
 * which allocated a buffer per packet, reached 50–70 MiB because V8 collects array buffers only
 * after about 64 MiB of them), and peak RSS at most 72 MiB per side: the 64 MiB plus the
 * slack of the Deno executable's own mapped code (about 40 MiB of every Deno process's RSS is
 * `RssFile`, shared clean pages of the binary, which grew by up to 8 MiB as more code ran).
 * 256 MiB rather than 1 GiB: what is held does not grow with the file, and the peak is reached
 * in the first seconds. Behaviour, not speed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

const MiB = 1 << 20;
const PRIVATE_LIMIT_MIB = 40;
const RSS_LIMIT_MIB = 72;
const PEER = new URL("../../testing/bulk_peer.ts", import.meta.url).pathname;

function statusMiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(status);
  return match === null ? 0 : Number(match[1]) / 1024;
}

async function makeFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const piece = new Uint8Array(MiB);
  for (let at = 0; at < size; at += piece.length) {
    for (let i = 0; i < piece.length; i += 64) piece[i] = (at + i) >>> 6;
    hash.update(piece);
    let done = 0;
    while (done < piece.length) done += await file.write(piece.subarray(done));
  }
  file.close();
  return hash.digest("hex");
}

/** Runs one end; resolves with its JSON line; records its peak private memory while it runs. */
function runPeer(args: string[], peaks: { privateMiB: number; rssMiB: number }) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "-A", PEER, ...args],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let lines = "";
  let waiting: (() => void) | undefined;
  const reader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      lines += decoder.decode(chunk, { stream: true });
      waiting?.();
    }
  })();
  const stderr = new Response(child.stderr).text();
  const sampler = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peaks.privateMiB = Math.max(peaks.privateMiB, statusMiB(status, "RssAnon"));
      peaks.rssMiB = Math.max(peaks.rssMiB, statusMiB(status, "VmHWM"));
    } catch {
      // exited
    }
  }, 20);
  const line = async (predicate: (line: string) => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.split("\n").find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(`no line from ${args[0]} in ${timeoutMs} ms: ${lines} ${await stderr}`);
      }
      await new Promise<void>((resolve) => {
        waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  const stop = async () => {
    clearInterval(sampler);
    try {
      child.kill();
    } catch {
      // already gone
    }
    await child.status;
    await reader;
    await stderr;
  };
  return { line, stop };
}

Deno.test({
  name: "files memory: 256 MiB over the per-packet stack, each side's memory bounded",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "p2p-files-memory-" });
    const receiverPeaks = { privateMiB: 0, rssMiB: 0 };
    const senderPeaks = { privateMiB: 0, rssMiB: 0 };
    let receiver: ReturnType<typeof runPeer> | undefined;
    let sender: ReturnType<typeof runPeer> | undefined;
    try {
      const sha = await makeFile(`${dir}/big.bin`, 256 * MiB);
      await Deno.mkdir(`${dir}/out`);
      receiver = runPeer(["file-recv", "0", "65478", `${dir}/out`], receiverPeaks);
      await receiver.line((l) => l === "ready", 30_000);
      const port = (await receiver.line((l) => l.startsWith("port "), 1_000)).slice(5);
      sender = runPeer(["file-send", port, "65478", `${dir}/big.bin`], senderPeaks);
      const received = JSON.parse(await receiver.line((l) => l.startsWith("{"), 180_000));
      const sent = JSON.parse(await sender.line((l) => l.startsWith("{"), 30_000));
      assert.equal(received.failed, undefined);
      assert.equal(received.sha256, sha);
      assert.equal(sent.sha256, sha);
      // The figures the processes report themselves at the end count too.
      receiverPeaks.rssMiB = Math.max(receiverPeaks.rssMiB, received.rssMiB);
      senderPeaks.rssMiB = Math.max(senderPeaks.rssMiB, sent.rssMiB);
      const report = `receiver: private ${receiverPeaks.privateMiB.toFixed(1)} MiB, peak RSS ${
        receiverPeaks.rssMiB.toFixed(1)
      } MiB; sender: private ${senderPeaks.privateMiB.toFixed(1)} MiB, peak RSS ${
        senderPeaks.rssMiB.toFixed(1)
      } MiB`;
      console.log(report);
      assert.ok(receiverPeaks.privateMiB > 0 && senderPeaks.privateMiB > 0, "no samples");
      assert.ok(
        receiverPeaks.privateMiB <= PRIVATE_LIMIT_MIB &&
          senderPeaks.privateMiB <= PRIVATE_LIMIT_MIB,
        report,
      );
      assert.ok(
        receiverPeaks.rssMiB <= RSS_LIMIT_MIB && senderPeaks.rssMiB <= RSS_LIMIT_MIB,
        report,
      );
    } finally {
      await sender?.stop();
      await receiver?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
