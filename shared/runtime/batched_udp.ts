/**
 * UDP sockets that move datagrams in batches: `recvmmsg` and `sendmmsg` through Deno's FFI
 * (Linux, 64-bit), so the runtime crossing and the system call are paid once per batch of up to
 * 64 datagrams instead of once per datagram. Opt-in (`--batched-udp` on the server) because it
 * needs `--allow-ffi`, which lifts Deno's sandbox for native code.
 *
 * Why: `Deno.DatagramConn` costs one op and one system call per datagram each way; on this
 * project's bench machine a plain Deno Binding responder needs about 12-13 µs of CPU per request
 * against coturn's 5-8 µs and a C `recvmmsg` responder's 2-3.5 µs (bench/README.md). Receives
 * run on FFI's blocking thread (`nonblocking: true`, `MSG_WAITFORONE`); sends are queued and
 * flushed with one `sendmmsg` (`MSG_DONTWAIT`) after the JavaScript that queued them has run.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { DatagramSocket, HostPort, NetAddress, Runtime } from "./runtime.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_RCVBUF = 8;
const SO_SNDBUF = 7;
const MSG_DONTWAIT = 0x40;
const MSG_WAITFORONE = 0x10000;
const SHUT_RDWR = 2;
/** Datagrams per system call. */
export const BATCH = 64;
const SLOT_BYTES = 2048;
const MMSGHDR = 64;
const IOVEC = 16;
const SOCKADDR = 32;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  recvmmsg: {
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  recvmmsgNow: {
    name: "recvmmsg",
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
  },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | undefined;

function load(): Libc {
  if (libc !== undefined) return libc;
  if (Deno.build.os !== "linux" || !["x86_64", "aarch64"].includes(Deno.build.arch)) {
    throw new Error("batched UDP needs 64-bit Linux");
  }
  try {
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (error) {
    throw new Error(
      `batched UDP needs --allow-ffi (and libc.so.6): ${(error as Error).message}`,
    );
  }
  return libc;
}

/**
 * Whether batched UDP can be used here (64-bit Linux, FFI permitted, libc found).
 *
 * @example
 * ```ts
 * import { batchedUdpAvailable } from "./batched_udp.ts";
 * console.log(typeof batchedUdpAvailable()); // "boolean"
 * ```
 */
export function batchedUdpAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

function pointerValue(buffer: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as Uint8Array<ArrayBuffer>)));
}

function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(":")) {
    const halves = text.split("::");
    if (halves.length > 2) return undefined;
    const left = halves[0] === "" ? [] : halves[0].split(":");
    const right = halves.length < 2 || halves[1] === "" ? [] : halves[1].split(":");
    const withV4 = (right.at(-1) ?? left.at(-1) ?? "").includes(".");
    const width = withV4 ? 7 : 8;
    let groups = halves.length === 2
      ? [...left, ...Array(Math.max(0, width - left.length - right.length)).fill("0"), ...right]
      : left;
    const out = new Uint8Array(16);
    if (withV4) {
      const v4 = parseIp(groups.at(-1)!);
      if (v4 === undefined || groups.length !== 7) return undefined;
      out.set(v4, 12);
      groups = groups.slice(0, 6);
    } else if (groups.length !== 8) return undefined;
    for (let i = 0; i < groups.length; i++) {
      if (!/^[0-9a-f]{1,4}$/i.test(groups[i])) return undefined;
      const value = parseInt(groups[i], 16);
      out[i * 2] = value >> 8;
      out[i * 2 + 1] = value & 0xff;
    }
    return out;
  }
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) {
    return undefined;
  }
  return Uint8Array.from(parts.map(Number));
}

function formatIpv6(bytes: Uint8Array, offset: number): string {
  if (
    bytes.subarray(offset, offset + 10).every((b) => b === 0) && bytes[offset + 10] === 0xff &&
    bytes[offset + 11] === 0xff
  ) {
    return `::ffff:${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${
      bytes[offset + 15]
    }`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[offset + i * 2] << 8) | bytes[offset + i * 2 + 1]);
  let bestStart = -1, bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Writes a sockaddr for `hostname:port` at `view`'s offset; returns its length. */
function writeSockaddr(view: DataView, offset: number, hostname: string, port: number): number {
  const ip = parseIp(hostname);
  if (ip === undefined) throw new TypeError(`"${hostname}" is not a literal IP address`);
  const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, 28);
  bytes.fill(0);
  view.setUint16(offset + 2, port);
  if (ip.length === 4) {
    view.setUint16(offset, AF_INET, true);
    bytes.set(ip, 4);
    return 16;
  }
  view.setUint16(offset, AF_INET6, true);
  bytes.set(ip, 8);
  return 28;
}

class BatchedDatagramSocket implements DatagramSocket {
  readonly addr: NetAddress;
  readonly copiesOnSend = true;
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #v6: boolean;
  // Receive side.
  readonly #rxData = new Uint8Array(BATCH * SLOT_BYTES);
  readonly #rxNames = new Uint8Array(BATCH * SOCKADDR);
  readonly #rxNamesView = new DataView(this.#rxNames.buffer);
  readonly #rxMsgs = new Uint8Array(BATCH * MMSGHDR);
  readonly #rxMsgsView = new DataView(this.#rxMsgs.buffer);
  readonly #rxIovs = new Uint8Array(BATCH * IOVEC);
  #count = 0;
  #cursor = 0;
  /** Whether {@linkcode #fill} runs (it may finish synchronously). */
  #filling = false;
  #waiters: {
    resolve: (value: [Uint8Array, NetAddress]) => void;
    reject: (error: Error) => void;
    buffer?: Uint8Array;
  }[] = [];
  readonly #addresses = new Map<number, NetAddress>();
  // Send side.
  readonly #txData = new Uint8Array(BATCH * SLOT_BYTES);
  readonly #txNames = new Uint8Array(BATCH * SOCKADDR);
  readonly #txNamesView = new DataView(this.#txNames.buffer);
  readonly #txMsgs = new Uint8Array(BATCH * MMSGHDR);
  readonly #txMsgsView = new DataView(this.#txMsgs.buffer);
  readonly #txIovs = new Uint8Array(BATCH * IOVEC);
  readonly #txIovsView = new DataView(this.#txIovs.buffer);
  #queued = 0;
  #flushScheduled = false;
  readonly #names = new WeakMap<NetAddress, { bytes: Uint8Array; length: number; port: number }>();
  #closed = false;

  constructor(bind: HostPort) {
    const c = load();
    this.#libc = c;
    const probe = parseIp(bind.hostname);
    if (probe === undefined) throw new TypeError(`"${bind.hostname}" is not a literal IP address`);
    this.#v6 = probe.length === 16;
    const fd = c.socket(this.#v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) throw new Error("socket() failed");
    this.#fd = fd;
    const sockaddr = new Uint8Array(SOCKADDR);
    const length = writeSockaddr(new DataView(sockaddr.buffer), 0, bind.hostname, bind.port);
    const option = new Uint8Array(16);
    const optionView = new DataView(option.buffer);
    optionView.setInt32(0, 4 << 20, true);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, option, 4);
    c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, option, 4);
    // Receives wake up every 200 ms so a closed socket's thread is released.
    optionView.setBigInt64(0, 0n, true);
    optionView.setBigInt64(8, 200_000n, true);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, option, 16);
    if (c.bind(fd, sockaddr, length) !== 0) {
      c.close(fd);
      throw new Deno.errors.AddrInUse(`cannot bind ${bind.hostname}:${bind.port}`);
    }
    const lengthField = new Uint8Array(4);
    new DataView(lengthField.buffer).setUint32(0, SOCKADDR, true);
    c.getsockname(fd, sockaddr, lengthField);
    this.addr = { transport: "udp", ...this.#decode(new DataView(sockaddr.buffer), 0) };
    this.#prepare(this.#rxMsgsView, this.#rxIovs, this.#rxData, this.#rxNames, true);
    this.#prepare(this.#txMsgsView, this.#txIovs, this.#txData, this.#txNames, false);
  }

  #prepare(
    msgs: DataView,
    iovs: Uint8Array,
    data: Uint8Array,
    names: Uint8Array,
    receive: boolean,
  ): void {
    const iovView = new DataView(iovs.buffer);
    const iovBase = pointerValue(iovs),
      dataBase = pointerValue(data),
      nameBase = pointerValue(names);
    for (let i = 0; i < BATCH; i++) {
      iovView.setBigUint64(i * IOVEC, dataBase + BigInt(i * SLOT_BYTES), true);
      iovView.setBigUint64(i * IOVEC + 8, BigInt(SLOT_BYTES), true);
      const m = i * MMSGHDR;
      msgs.setBigUint64(m, nameBase + BigInt(i * SOCKADDR), true);
      msgs.setUint32(m + 8, receive ? 28 : 0, true);
      msgs.setBigUint64(m + 16, iovBase + BigInt(i * IOVEC), true);
      msgs.setBigUint64(m + 24, 1n, true);
    }
  }

  #decode(view: DataView, offset: number): { hostname: string; port: number } {
    const family = view.getUint16(offset, true);
    const port = view.getUint16(offset + 2);
    if (family === AF_INET) {
      const b = offset + 4;
      return {
        hostname: `${view.getUint8(b)}.${view.getUint8(b + 1)}.${view.getUint8(b + 2)}.${
          view.getUint8(b + 3)
        }`,
        port,
      };
    }
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return { hostname: formatIpv6(bytes, offset + 8), port };
  }

  #source(i: number): NetAddress {
    const view = this.#rxNamesView;
    const offset = i * SOCKADDR;
    if (view.getUint16(offset, true) === AF_INET) {
      // IPv4 sources are cached by address and port: no string building per datagram.
      const key = view.getUint32(offset + 4) * 65536 + view.getUint16(offset + 2);
      let address = this.#addresses.get(key);
      if (address === undefined) {
        if (this.#addresses.size >= 4096) this.#addresses.clear();
        address = { transport: "udp", ...this.#decode(view, offset) };
        this.#addresses.set(key, address);
      }
      return address;
    }
    return { transport: "udp", ...this.#decode(view, offset) };
  }

  #take(buffer?: Uint8Array): [Uint8Array, NetAddress] {
    const i = this.#cursor++;
    const length = this.#rxMsgsView.getUint32(i * MMSGHDR + 56, true);
    const data = this.#rxData.subarray(i * SLOT_BYTES, i * SLOT_BYTES + length);
    let out: Uint8Array;
    if (buffer !== undefined && buffer.length >= length) {
      buffer.set(data);
      out = buffer.subarray(0, length);
    } else {
      out = data.slice();
    }
    return [out, this.#source(i)];
  }

  receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddress]> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("socket closed"));
    if (this.#cursor < this.#count) return Promise.resolve(this.#take(buffer));
    const waiter = Promise.withResolvers<[Uint8Array, NetAddress]>();
    this.#waiters.push({ resolve: waiter.resolve, reject: waiter.reject, buffer });
    if (!this.#filling) this.#fill();
    return waiter.promise;
  }

  async #fill(): Promise<void> {
    this.#filling = true;
    try {
      while (!this.#closed) {
        for (let i = 0; i < BATCH; i++) this.#rxMsgsView.setUint32(i * MMSGHDR + 8, 28, true);
        // Under load datagrams are already waiting: take them without the hop to FFI's blocking
        // thread; only an empty socket is waited on there.
        let n = this.#libc.recvmmsgNow(this.#fd, this.#rxMsgs, BATCH, MSG_DONTWAIT, null);
        if (n <= 0) {
          n = await this.#libc.recvmmsg(this.#fd, this.#rxMsgs, BATCH, MSG_WAITFORONE, null);
        }
        if (this.#closed) break;
        if (n <= 0) continue; // timeout (or a transient error): wait again
        this.#count = n;
        this.#cursor = 0;
        while (this.#waiters.length > 0 && this.#cursor < this.#count) {
          const waiter = this.#waiters.shift()!;
          waiter.resolve(this.#take(waiter.buffer));
        }
        if (this.#waiters.length === 0) return;
      }
    } finally {
      this.#filling = false;
      if (this.#closed) this.#release();
    }
  }

  send(bytes: Uint8Array, to: NetAddress): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("socket closed"));
    if (bytes.length > SLOT_BYTES) return this.#sendLarge(bytes, to);
    if (this.#queued === BATCH) this.#flush();
    const i = this.#queued;
    // Destinations are usually address objects this socket handed out: their sockaddr bytes are
    // encoded once.
    let name = this.#names.get(to);
    if (name === undefined || name.port !== to.port) {
      const bytes = new Uint8Array(SOCKADDR);
      try {
        const length = writeSockaddr(
          new DataView(bytes.buffer),
          0,
          this.#mapped(to.hostname),
          to.port,
        );
        name = { bytes, length, port: to.port };
      } catch (error) {
        return Promise.reject(error);
      }
      this.#names.set(to, name);
    }
    const length = name.length;
    this.#txNames.set(name.bytes, i * SOCKADDR);
    this.#txData.set(bytes, i * SLOT_BYTES);
    this.#txIovsView.setBigUint64(i * IOVEC + 8, BigInt(bytes.length), true);
    this.#txMsgsView.setUint32(i * MMSGHDR + 8, length, true);
    this.#queued++;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#scheduledFlush);
    }
    return Promise.resolve(bytes.length);
  }

  /** An IPv6 socket reaches IPv4 peers through mapped addresses. */
  #mapped(hostname: string): string {
    return this.#v6 && !hostname.includes(":") ? `::ffff:${hostname}` : hostname;
  }

  #sendLarge(bytes: Uint8Array, to: NetAddress): Promise<number> {
    this.#flush();
    const name = new Uint8Array(SOCKADDR);
    const length = writeSockaddr(new DataView(name.buffer), 0, this.#mapped(to.hostname), to.port);
    const data = bytes.slice();
    const iov = new Uint8Array(IOVEC);
    const iovView = new DataView(iov.buffer);
    iovView.setBigUint64(0, pointerValue(data), true);
    iovView.setBigUint64(8, BigInt(data.length), true);
    const msg = new Uint8Array(MMSGHDR);
    const msgView = new DataView(msg.buffer);
    msgView.setBigUint64(0, pointerValue(name), true);
    msgView.setUint32(8, length, true);
    msgView.setBigUint64(16, pointerValue(iov), true);
    msgView.setBigUint64(24, 1n, true);
    const sent = this.#libc.sendmmsg(this.#fd, msg, 1, MSG_DONTWAIT);
    return sent === 1 ? Promise.resolve(data.length) : Promise.reject(new Error("send failed"));
  }

  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    let offset = 0;
    const total = this.#queued;
    this.#queued = 0;
    if (this.#closed) return;
    // Datagrams that do not fit the send buffer are dropped, as a full UDP socket would.
    for (let attempt = 0; offset < total && attempt < 4; attempt++) {
      const msgs = offset === 0 ? this.#txMsgs : this.#txMsgs.subarray(offset * MMSGHDR);
      const sent = this.#libc.sendmmsg(this.#fd, msgs, total - offset, MSG_DONTWAIT);
      if (sent <= 0) break;
      offset += sent;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#libc.shutdown(this.#fd, SHUT_RDWR);
    for (const waiter of this.#waiters) waiter.reject(new Deno.errors.BadResource("socket closed"));
    this.#waiters = [];
    if (!this.#filling) this.#release();
  }

  #released = false;
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#libc.close(this.#fd);
  }
}

/**
 * `base` with its UDP sockets replaced by batched ones (TCP, timers and the rest unchanged).
 *
 * @throws when FFI is not permitted or the platform is not 64-bit Linux.
 *
 * @example
 * ```ts
 * import { batchedDatagramRuntime, batchedUdpAvailable, systemRuntime } from "./mod.ts";
 * if (batchedUdpAvailable()) {
 *   const runtime = batchedDatagramRuntime(systemRuntime);
 *   const socket = runtime.net.listenDatagram({ hostname: "127.0.0.1", port: 0 });
 *   socket.close();
 * }
 * ```
 */
export function batchedDatagramRuntime(base: Runtime): Runtime {
  load();
  return {
    ...base,
    net: {
      ...base.net,
      listenDatagram: (bind: HostPort) => new BatchedDatagramSocket(bind),
      connect: (to) => base.net.connect(to),
      listen: (bind) => base.net.listen(bind),
      interfaceAddresses: base.net.interfaceAddresses?.bind(base.net),
    },
  };
}
