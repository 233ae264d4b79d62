/**
 * Enlarges the kernel buffers of a UDP socket Deno opened (`SO_RCVBUF`, `SO_SNDBUF`), which
 * `Deno.listenDatagram` cannot do: the socket's descriptor is found by asking each open descriptor
 * for its type and bound port (`getsockopt(SO_TYPE)`, `getsockname`; under Deno's permissions
 * `/proc/net` would need `--allow-all`) and the sizes are set through FFI (`setsockopt` in libc).
 * Linux only; needs `--allow-ffi`. Without privileges Linux caps the size at `net.core.rmem_max`
 * and `wmem_max` (default 212,992: the kernel then reports twice that); as root (or with
 * `CAP_NET_ADMIN`) it uses `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE`, past those limits.
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
const SO_TYPE = 3;
const SOCK_DGRAM = 2;
const AF_INET = 2;
const AF_INET6 = 10;

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
} as const;

/** `getsockopt` / `getsockname` through `libc`, the part this module calls. */
type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Highest descriptor looked at: a client or bench process has a few dozen open. */
const MAX_FD = 4096;

/** An integer socket option of `fd` at `SOL_SOCKET` (`getsockopt`), or undefined on error. */
function intOption(libc: Libc, fd: number, name: number): number | undefined {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const ok = libc.symbols.getsockopt(
    fd,
    SOL_SOCKET,
    name,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return ok === 0 ? value[0] : undefined;
}

/**
 * Our descriptor of the UDP socket bound to local `port`, or undefined: every descriptor up to
 * {@linkcode MAX_FD} is asked for its socket type and bound address (`getsockopt(SO_TYPE)`,
 * `getsockname`), as `/proc` needs more than read access under Deno's permissions.
 */
function socketFd(libc: Libc, port: number): number | undefined {
  const address = new Uint8Array(128);
  const addressLength = new Uint32Array(1);
  for (let fd = 3; fd < MAX_FD; fd++) {
    if (intOption(libc, fd, SO_TYPE) !== SOCK_DGRAM) continue;
    addressLength[0] = address.length;
    if (libc.symbols.getsockname(fd, address, new Uint8Array(addressLength.buffer)) !== 0) continue;
    const family = address[0] | (address[1] << 8);
    if (family !== AF_INET && family !== AF_INET6) continue;
    if (((address[2] << 8) | address[3]) === port) return fd;
  }
  return undefined;
}

/**
 * Sets the receive and send buffers of this process's UDP socket bound to local `port` to
 * `bytes` each; returns the receive buffer the kernel then reports (Linux reports twice what it
 * accounts as payload room), or `undefined` when it could not be done (not Linux, no FFI, socket
 * not found). Never throws.
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
    const libc = Deno.dlopen("libc.so.6", SYMBOLS);
    try {
      const fd = socketFd(libc, port);
      if (fd === undefined) return undefined;
      const value = new Uint8Array(new Int32Array([bytes]).buffer);
      for (const [force, plain] of [[SO_RCVBUFFORCE, SO_RCVBUF], [SO_SNDBUFFORCE, SO_SNDBUF]]) {
        if (libc.symbols.setsockopt(fd, SOL_SOCKET, force, value, 4) !== 0) {
          libc.symbols.setsockopt(fd, SOL_SOCKET, plain, value, 4);
        }
      }
      return intOption(libc, fd, SO_RCVBUF);
    } finally {
      libc.close();
    }
  } catch {
    return undefined;
  }
}
