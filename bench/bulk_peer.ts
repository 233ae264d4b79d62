/**
 * One end of the bulk benchmark's "our stack" pair: the reliable channel (`p2p_client/reliable/`)
 * over a secure session (`shared/peer/session.ts`) over one Deno UDP socket, exactly the per-packet
 * path a direct peer link runs (seal, send; receive, open, decode, channel), without the client
 * program around it. The sender streams `TOTAL` bytes as 1 MiB `bulk` messages, as a file
 * transfer does, with fragments of `FRAME` bytes; the receiver prints one JSON line with the bytes
 * delivered and the seconds from the first datagram to the last message.
 *
 * Run: `deno run -A --unstable-net bench/bulk_peer.ts recv PORT FRAME TOTAL` (prints `ready`),
 * then `... send PORT FRAME TOTAL`. Both use fixed keys: the handshake is not measured.
 *
 * @module
 */
import { decodeFrame, FrameType } from "../shared/peer/frames.ts";
import { SecureSession } from "../shared/peer/session.ts";
import { ReliableChannel } from "../p2p_client/reliable/reliable_channel.ts";
import { systemRuntime } from "../shared/runtime/system.ts";
import { readCpuSeconds } from "./proc.ts";

/** Peak resident memory of this process (VmHWM), MiB. */
async function peakRssMiB(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match === null ? 0 : Number(match[1]) / 1024;
}

const MESSAGE_BYTES = 1 << 20;

/** The two ends' sessions: fixed keys, peer known to read TRANSPORT_LARGE (both are ours). */
function session(sender: boolean, peerReadsLarge: boolean): SecureSession {
  const k1 = new Uint8Array(32).fill(0x11);
  const k2 = new Uint8Array(32).fill(0x22);
  return new SecureSession({
    remoteId: "00".repeat(20),
    localIndex: sender ? 1 : 2,
    remoteIndex: sender ? 2 : 1,
    isInitiator: sender,
    sendKey: sender ? k1 : k2,
    receiveKey: sender ? k2 : k1,
    createdAt: 0,
    peerReadsLarge,
  });
}

async function main(): Promise<void> {
  const [mode, portText, frameText, totalText] = Deno.args;
  const frameBytes = Number(frameText);
  const total = Number(totalText);
  const sender = mode === "send";
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: sender ? 0 : Number(portText),
  });
  let peer: Deno.NetAddr | undefined = sender
    ? { transport: "udp", hostname: "127.0.0.1", port: Number(portText) }
    : undefined;
  const secure = session(sender, frameBytes > 1171);
  let delivered = 0;
  let firstAt = 0;
  let doneAt = 0;
  let cpuAtStart = sender ? await readCpuSeconds(Deno.pid) : 0;
  let acknowledged = 0;
  const messages = Math.ceil(total / MESSAGE_BYTES);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => finished = resolve);
  const channel = new ReliableChannel({
    now: () => systemRuntime.now(),
    send: (frame) => {
      if (peer === undefined) return;
      const packet = secure.sealSync(frame);
      socket.send(packet, peer).catch(() => {});
    },
    sendParts: (head, payload) => {
      if (peer === undefined) return;
      socket.send(secure.sealPartsSync(head, payload), peer).catch(() => {});
    },
    deliver: (message) => {
      delivered += message.length;
      if (delivered >= total) {
        doneAt = systemRuntime.now();
        finished();
      }
    },
    onAcknowledged: () => {
      if (++acknowledged === messages) finished();
      else pump();
    },
    onFailure: (error) => {
      console.error(`channel failed: ${error.message}`);
      Deno.exit(1);
    },
    maxFrameBytes: frameBytes,
    streamId: sender ? 1 : 2,
  });
  let timer: number | undefined;
  let tickQueued = false;
  const schedule = () => {
    const deadline = channel.nextDeadline();
    if (deadline === undefined) return;
    const delay = deadline - systemRuntime.now();
    if (delay <= 0) {
      if (!tickQueued) {
        tickQueued = true;
        systemRuntime.defer(() => {
          tickQueued = false;
          channel.tick();
          schedule();
        });
      }
      return;
    }
    systemRuntime.clearTimer(timer);
    timer = systemRuntime.setTimer(() => {
      channel.tick();
      schedule();
    }, delay);
  };
  const chunk = new Uint8Array(MESSAGE_BYTES).fill(0x5a);
  let queued = 0;
  const pump = () => {
    while (sender && queued < messages && channel.hasRoomFor(MESSAGE_BYTES, "bulk")) {
      channel.sendMessage(chunk, "bulk");
      queued++;
    }
    schedule();
  };
  (async () => {
    const buffer = new Uint8Array(65_536);
    while (true) {
      let datagram: Uint8Array;
      let from: Deno.Addr;
      try {
        [datagram, from] = await socket.receive(buffer);
      } catch {
        return;
      }
      if (firstAt === 0) {
        firstAt = systemRuntime.now();
        if (!sender) cpuAtStart = await readCpuSeconds(Deno.pid);
      }
      peer ??= from as Deno.NetAddr;
      const plaintext = secure.openSync(datagram);
      if (plaintext === undefined) continue;
      const frame = decodeFrame(plaintext);
      if (frame.type === FrameType.Data || frame.type === FrameType.Ack) channel.receive(frame);
      schedule();
    }
  })();
  if (!sender) console.log("ready");
  pump();
  await done;
  const cpuSeconds = (await readCpuSeconds(Deno.pid)) - cpuAtStart;
  const rssMiB = await peakRssMiB();
  const stats = channel.stats;
  if (!sender) {
    console.log(JSON.stringify({
      bytes: delivered,
      seconds: (doneAt - firstAt) / 1000,
      duplicates: stats.duplicatesReceived,
      cpuSeconds,
      rssMiB,
    }));
    // Let the last acknowledgements go out before leaving.
    await new Promise((resolve) => systemRuntime.setTimer(() => resolve(undefined), 300));
  } else {
    console.log(JSON.stringify({
      retransmissions: stats.retransmissions,
      timeouts: stats.timeouts,
      framesSent: stats.framesSent,
      cpuSeconds,
      rssMiB,
    }));
  }
  socket.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
