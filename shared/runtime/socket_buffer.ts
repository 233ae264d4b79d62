/**
 * Enlarges the kernel buffers of a UDP socket Deno opened (`SO_RCVBUF`, `SO_SNDBUF`), which
 * `Deno.listenDatagram` cannot do: the socket's descriptor is found through `/proc` (its inode in
 * `/proc/net/udp[6]` by local port, matched against `/proc/self/fd`) and set through FFI
 * (`setsockopt` in libc). Linux only; needs `--allow-ffi` and read access to `/proc`; as root it
 * uses `SO_RCVBUFFORCE` (past `net.core.rmem_max`).
 *
 * Why: on loopback a bulk sender may only keep in flight what the receiver's socket buffer holds
 * (Linux's default 212,992 bytes: three 64 KiB datagrams; the rest is dropped), so each round
 * trip moves three packets. With 4 MiB the bench peer moved 256 MiB at 0.6–1.0 GB/s instead of
 * 0.3–0.5 GB/s on the same (loaded) machine (`deno task bench --only bulk`).
 *
 * @module
 */

const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;

/** The inode of our UDP socket bound to `port`, from `/proc/net/udp` and `udp6`. */
function socketInodes(port: number): Set<string> {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && fields[1].endsWith(suffix)) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** Our file descriptor of the UDP socket bound to `port`, or undefined. */
function socketFd(port: number): number | undefined {
  const inodes = socketInodes(port);
  if (inodes.size === 0) return undefined;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue;
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match !== null && inodes.has(match[1])) return Number(entry.name);
  }
  return undefined;
}

/**
 * Sets the receive and send buffers of this process's UDP socket bound to local `port` to
 * `bytes` each; returns the receive buffer the kernel then reports (Linux reports twice what it
 * accounts as payload room), or `undefined` when it could not be done (not Linux, no FFI or
 * `/proc` access, socket not found). Never throws.
 *
 * @example
 * ```ts
 * import { enlargeUdpBuffers } from "./socket_buffer.ts";
 * const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const size = enlargeUdpBuffers((socket.addr as Deno.NetAddr).port, 4 << 20);
 * console.log(size ?? "left as it was");
 * socket.close();
 * ```
 */
export function enlargeUdpBuffers(port: number, bytes: number): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const fd = socketFd(port);
    if (fd === undefined) return undefined;
    const libc = Deno.dlopen("libc.so.6", SYMBOLS);
    try {
      const value = new Uint8Array(new Int32Array([bytes]).buffer);
      for (const [force, plain] of [[SO_RCVBUFFORCE, SO_RCVBUF], [SO_SNDBUFFORCE, SO_SNDBUF]]) {
        if (libc.symbols.setsockopt(fd, SOL_SOCKET, force, value, 4) !== 0) {
          libc.symbols.setsockopt(fd, SOL_SOCKET, plain, value, 4);
        }
      }
      const out = new Int32Array(1);
      const length = new Uint32Array([4]);
      const ok = libc.symbols.getsockopt(
        fd,
        SOL_SOCKET,
        SO_RCVBUF,
        new Uint8Array(out.buffer),
        new Uint8Array(length.buffer),
      );
      return ok === 0 ? out[0] : undefined;
    } finally {
      libc.close();
    }
  } catch {
    return undefined;
  }
}
