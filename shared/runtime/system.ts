/**
 * The {@linkcode Runtime} of a real process: `performance.now`, `Date.now`, the host's timers,
 * Web Crypto randomness and Deno's sockets. This module and `testing/` are the only places that
 * touch those APIs directly.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type {
  DatagramSocket,
  HostPort,
  NetAddress,
  Runtime,
  StreamConn,
  StreamListener,
  TimerId,
} from "./runtime.ts";
import { enlargeUdpBuffers } from "./socket_buffer.ts";

function listenDatagram(bind: HostPort): DatagramSocket {
  const socket = Deno.listenDatagram({ transport: "udp", ...bind });
  return {
    get addr() {
      return socket.addr as NetAddress;
    },
    receive: (buffer) => socket.receive(buffer) as Promise<[Uint8Array, NetAddress]>,
    send: (bytes, to) => socket.send(bytes, to),
    close: () => socket.close(),
    // Through FFI when granted (Linux); without it Deno leaves the kernel's defaults.
    enlargeBuffers: (bytes) => enlargeUdpBuffers((socket.addr as Deno.NetAddr).port, bytes),
  };
}

/** The host's bindable addresses (needs `--allow-sys=networkInterfaces`; empty without it). */
function interfaceAddresses(): string[] {
  let interfaces: Deno.NetworkInterfaceInfo[];
  try {
    interfaces = Deno.networkInterfaces();
  } catch {
    return [];
  }
  const v4 = new Set<string>(), v6 = new Set<string>();
  for (const entry of interfaces) {
    if (entry.family === "IPv4") v4.add(entry.address);
    else if (!/^fe[89ab]/i.test(entry.address)) v6.add(entry.address.split("%")[0].toLowerCase());
  }
  return [...v4, ...v6];
}

/**
 * The system's clock, timers, randomness and network.
 *
 * @example
 * ```ts
 * const id = systemRuntime.setTimer(() => {}, 1000);
 * systemRuntime.clearTimer(id);
 * console.log(systemRuntime.randomBytes(4).length); // 4
 * ```
 */
export const systemRuntime: Runtime = {
  now: () => performance.now(),
  wallClock: () => Date.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, Math.max(0, delayMs)) as unknown as TimerId,
  clearTimer: (id) => {
    if (id !== undefined) clearTimeout(id);
  },
  defer: (callback) => {
    setImmediate(callback);
  },
  random: () => Math.random(),
  randomBytes: (length) => crypto.getRandomValues(new Uint8Array(length)),
  net: {
    listenDatagram,
    connect: async (to: HostPort): Promise<StreamConn> =>
      (await Deno.connect({ transport: "tcp", ...to })) as unknown as StreamConn,
    listen: (bind: HostPort & { reusePort?: boolean }): StreamListener =>
      Deno.listen({ transport: "tcp", ...bind }) as unknown as StreamListener,
    interfaceAddresses,
    ...(Deno.build.os === "linux"
      ? {
        listenLocal: (name: string): StreamListener =>
          Deno.listen({ transport: "unix", path: `\0${name}` }) as unknown as StreamListener,
        connectLocal: async (name: string): Promise<StreamConn> =>
          (await Deno.connect({ transport: "unix", path: `\0${name}` })) as unknown as StreamConn,
      }
      : {}),
  },
};
