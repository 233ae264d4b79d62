/**
 * One end of a bulk transfer over "our stack" (for `deno task bench --only bulk` and the memory
 * test `p2p_client/e2e/files_memory_test.ts`): the reliable channel (`p2p_client/reliable/`)
 * over a secure session (`shared/peer/session.ts`) over one Deno UDP socket: the per-packet path
 * a direct peer link runs (seal, send; receive, open, decode, channel), without the client
 * program around it, and with what the client program does not do yet (issue 14): packets sealed
 * into recycled buffers and opened in place in the receive buffer, file chunks from a pool given
 * back when acknowledged, and (with `--allow-ffi`) socket buffers of 4 MiB. So no buffer is
 * allocated per packet on either side.
 *
 * - `recv`/`send PORT FRAME TOTAL`: the sender streams `TOTAL` bytes as `bulk` messages cut in
 *   fragments of `FRAME` bytes (one fragment per message with large packets, as file chunks; 16
 *   with small ones); the receiver prints one JSON line: bytes delivered, seconds from
 *   the first datagram to the last message, CPU seconds, peak RSS.
 * - `file-recv PORT FRAME DIR` / `file-send PORT FRAME PATH`: a file transfer
 *   (`p2p_client/files/`) over the same stack, the receiver saving into DIR; the receiver prints
 *   the same line plus whether the SHA-256 matched, and the sender its own line.
 *
 * Run the receiver first (it prints `port N` and `ready`; PORT 0 picks a free one). Both use fixed keys: the handshake is not measured.
 *
 * @module
 */
import { isFileMessage } from "../shared/files/codec.ts";
import { decodeFrame, FrameType, MAX_LARGE_DATA_PAYLOAD_BYTES } from "../shared/peer/frames.ts";
import {
  MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
} from "../shared/peer/packet.ts";
import { SecureSession } from "../shared/peer/session.ts";
import { systemRuntime } from "../shared/runtime/system.ts";
import { enlargeUdpBuffers } from "../shared/runtime/socket_buffer.ts";
import { FsDownloadStore, openFileSource } from "../p2p_client/files/fs_store.ts";
import { FileTransfers } from "../p2p_client/files/transfers.ts";
import { BufferPool } from "../p2p_client/files/buffer_pool.ts";
import { CHUNK_HEADER_BYTES } from "../shared/files/codec.ts";
import type { FileEvent } from "../p2p_client/files/types.ts";
import { ReliableChannel } from "../p2p_client/reliable/reliable_channel.ts";

/** CPU seconds (user + system) of a process, from `/proc/<pid>/stat` (100 ticks a second). */
async function readCpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Bytes per streamed message: with large packets one full fragment (as file chunks are: the
 * receiver gets a view of the packet, nothing is assembled or allocated); with small packets 16
 * full fragments (fewer messages to track).
 */
function messageBytes(frameBytes: number): number {
  return frameBytes > MAX_TRANSPORT_PLAINTEXT_BYTES
    ? frameBytes - (MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES - MAX_LARGE_DATA_PAYLOAD_BYTES)
    : 16 * (frameBytes - (MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES - MAX_LARGE_DATA_PAYLOAD_BYTES));
}
/** Socket buffers asked for (the kernel may give less: `net.core.rmem_max`, unless root). */
const SOCKET_BUFFER_BYTES = 4 << 20;
const SENDER_ID = "5".repeat(40);
const RECEIVER_ID = "7".repeat(40);

/** A figure of `/proc/self/status` in MiB: `VmHWM` (peak RSS), `VmRSS`, `RssAnon`, `RssFile`. */
function statusMiB(field: string): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(status);
  return match === null ? 0 : Number(match[1]) / 1024;
}

/** Peak resident memory of this process (VmHWM), MiB. */
function peakRssMiB(): number {
  return statusMiB("VmHWM");
}

/**
 * Memory figures at the end: resident memory now, and how much of it is private (anonymous:
 * heap, buffers) and how much the mapped program (`RssFile`: the Deno binary's code pages,
 * shared and clean, about 40 MiB of every Deno process's RSS).
 */
function memoryNow(): { rssMiB: number; anonMiB: number; fileMiB: number } {
  return { rssMiB: peakRssMiB(), anonMiB: statusMiB("RssAnon"), fileMiB: statusMiB("RssFile") };
}

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

/** A channel over a session over a UDP socket on 127.0.0.1. */
interface PeerChannel {
  channel: ReliableChannel;
  /** When the first datagram arrived (0 before). */
  firstAt: () => number;
  /** The local UDP port. */
  port: number;
  close: () => void;
}

function openPeerChannel(options: {
  sender: boolean;
  port: number;
  frameBytes: number;
  deliver: (message: Uint8Array) => void;
  onAcknowledged: (id: number) => void;
  onFirstDatagram?: () => void;
}): PeerChannel {
  const { sender, frameBytes } = options;
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: sender ? 0 : options.port,
  });
  // Both ends run this code: each enlarges its own socket buffers (FFI, when granted) and counts
  // on the peer having done the same. Linux reports twice the payload room it accounts.
  const reported = enlargeUdpBuffers((socket.addr as Deno.NetAddr).port, SOCKET_BUFFER_BYTES);
  const receiveBufferBytes = reported !== undefined && reported / 2 > 196_608
    ? Math.floor(reported / 2 * 0.9)
    : undefined;
  let peer: Deno.NetAddr | undefined = sender
    ? { transport: "udp", hostname: "127.0.0.1", port: options.port }
    : undefined;
  const secure = session(sender, frameBytes > 1171);
  let firstAt = 0;
  const POOL = 64;
  const pool: Uint8Array[] = [];
  const channel = new ReliableChannel({
    now: () => systemRuntime.now(),
    send: (frame) => {
      if (peer === undefined) return;
      socket.send(secure.sealSync(frame), peer).catch(() => {});
    },
    sendParts: (head, payload) => {
      if (peer === undefined) return;
      // Sealed into a recycled buffer: no garbage per packet (with libcrypto).
      const out = pool.pop() ?? new Uint8Array(65_536);
      socket.send(secure.sealPartsInto(head, payload, out), peer).catch(() => {}).finally(() => {
        if (pool.length < POOL) pool.push(out);
      });
    },
    deliver: options.deliver,
    // Delivered messages are views of the receive buffer: the file layer copies chunks into its
    // pool, the stream mode only counts bytes.
    deliverViews: true,
    onAcknowledged: (id) => {
      options.onAcknowledged(id);
      schedule();
    },
    onFailure: (error) => {
      console.error(`channel failed: ${error.message}`);
      Deno.exit(1);
    },
    maxFrameBytes: frameBytes,
    maxBulkBytes: 4 << 20,
    receiveBufferBytes,
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
        options.onFirstDatagram?.();
      }
      peer ??= from as Deno.NetAddr;
      // In place in the receive buffer: the channel copies what it keeps.
      const plaintext = secure.openInPlaceSync(datagram);
      if (plaintext === undefined) continue;
      const frame = decodeFrame(plaintext);
      if (frame.type === FrameType.Data || frame.type === FrameType.Ack) channel.receive(frame);
      schedule();
    }
  })();
  return {
    channel: new Proxy(channel, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (key === "sendMessage") {
          return (bytes: Uint8Array, priority?: "normal" | "bulk") => {
            const id = target.sendMessage(bytes, priority);
            schedule();
            return id;
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
    firstAt: () => firstAt,
    port: (socket.addr as Deno.NetAddr).port,
    close: () => {
      systemRuntime.clearTimer(timer);
      socket.close();
    },
  };
}

async function streamMode(sender: boolean, port: number, frameBytes: number, total: number) {
  let delivered = 0;
  let doneAt = 0;
  let acknowledged = 0;
  let cpuAtStart = sender ? await readCpuSeconds(Deno.pid) : 0;
  const MESSAGE_BYTES = messageBytes(frameBytes);
  const messages = Math.ceil(total / MESSAGE_BYTES);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => finished = resolve);
  let pump = () => {};
  const link = openPeerChannel({
    sender,
    port,
    frameBytes,
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
    onFirstDatagram: () => {
      if (!sender) readCpuSeconds(Deno.pid).then((cpu) => cpuAtStart = cpu);
    },
  });
  const chunk = new Uint8Array(MESSAGE_BYTES).fill(0x5a);
  let queued = 0;
  pump = () => {
    while (sender && queued < messages && link.channel.hasRoomFor(MESSAGE_BYTES, "bulk")) {
      link.channel.sendMessage(chunk, "bulk");
      queued++;
    }
  };
  if (!sender) console.log(`port ${link.port}\nready`);
  pump();
  await done;
  const cpuSeconds = (await readCpuSeconds(Deno.pid)) - cpuAtStart;
  const rssMiB = peakRssMiB();
  const stats = link.channel.stats;
  if (!sender) {
    console.log(JSON.stringify({
      bytes: delivered,
      seconds: (doneAt - link.firstAt()) / 1000,
      duplicates: stats.duplicatesReceived,
      cpuSeconds,
      ...memoryNow(),
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
      ...memoryNow(),
      rssMiB,
    }));
  }
  link.close();
}

async function fileMode(sender: boolean, port: number, frameBytes: number, where: string) {
  const me = sender ? SENDER_ID : RECEIVER_ID;
  const other = sender ? RECEIVER_ID : SENDER_ID;
  let cpuAtStart = sender ? await readCpuSeconds(Deno.pid) : 0;
  let finished: (event: FileEvent) => void = () => {};
  const done = new Promise<FileEvent>((resolve) => finished = resolve);
  const late: { files?: FileTransfers } = {};
  // Chunks come from a pool and go back to it once the peer acknowledged them (sender) or they
  // are written (receiver): no allocation per chunk.
  const pool = new BufferPool(CHUNK_HEADER_BYTES + MAX_LARGE_DATA_PAYLOAD_BYTES, 72);
  const inFlight = new Map<number, Uint8Array>();
  const link = openPeerChannel({
    sender,
    port,
    frameBytes,
    deliver: (message) => {
      if (isFileMessage(message)) late.files?.onMessage(other, message);
    },
    onAcknowledged: (id) => {
      const chunk = inFlight.get(id);
      if (chunk !== undefined) {
        inFlight.delete(id);
        pool.release(chunk);
      }
      late.files?.roomAvailable(other);
    },
    onFirstDatagram: () => {
      if (!sender) readCpuSeconds(Deno.pid).then((cpu) => cpuAtStart = cpu);
    },
  });
  const files = late.files = new FileTransfers({
    runtime: systemRuntime,
    send: (_to, message, priority) => {
      if (!link.channel.hasRoomFor(message.length, priority)) return false;
      const id = link.channel.sendMessage(message, priority);
      if (message.buffer.byteLength === pool.size) inFlight.set(id, message);
      return true;
    },
    chunkPool: pool,
    emit: (event) => {
      if (["sent", "received", "failed"].includes(event.state)) finished(event);
    },
    openSource: openFileSource,
    store: new FsDownloadStore(sender ? "/nonexistent" : where),
    decide: () => "accept",
  });
  void me;
  if (!sender) console.log(`port ${link.port}\nready`);
  else await files.sendFile(other, where);
  const event = await done;
  const doneAt = systemRuntime.now();
  const cpuSeconds = (await readCpuSeconds(Deno.pid)) - cpuAtStart;
  console.log(JSON.stringify({
    bytes: event.state === "failed" ? 0 : event.size,
    seconds: (doneAt - link.firstAt()) / 1000,
    cpuSeconds,
    ...memoryNow(),
    sha256: event.sha256,
    failed: event.reason,
  }));
  if (!sender) {
    await new Promise((resolve) => systemRuntime.setTimer(() => resolve(undefined), 300));
  }
  files.close();
  link.close();
}

async function main(): Promise<void> {
  const [mode, portText, frameText, last] = Deno.args;
  const port = Number(portText);
  const frameBytes = Number(frameText);
  if (mode === "recv" || mode === "send") {
    await streamMode(mode === "send", port, frameBytes, Number(last));
  } else if (mode === "file-recv" || mode === "file-send") {
    await fileMode(mode === "file-send", port, frameBytes, last);
  } else {
    console.error(
      "usage: bulk_peer.ts recv|send PORT FRAME TOTAL | file-recv|file-send PORT FRAME DIR|PATH",
    );
    Deno.exit(2);
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
