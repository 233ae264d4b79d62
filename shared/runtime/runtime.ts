/**
 * The one door through which side effects enter the client and the server: a monotonic clock,
 * wall-clock time, timers scheduled by deadline, randomness, and the network (UDP sockets, TCP
 * connections and listeners).
 *
 * Why: every timer in the first version read the wall clock and `node:timers` directly, so a
 * 35 s freeze of a peer could only be tested by waiting 35 s. With one injected {@linkcode Runtime}
 * the same code runs on the system (`systemRuntime`) or on virtual time in a deterministic
 * simulator (`testing/virtual_runtime.ts`), where an hour of simulated faults takes milliseconds.
 * Nothing in `shared/`, `stun_server/` or `p2p_client/` outside this folder calls `Date.now`,
 * `performance.now`, `setTimeout`, `setInterval`, `setImmediate` or `Math.random`.
 *
 * @module
 */

/** An opaque timer handle returned by {@linkcode Runtime.setTimer}. */
export type TimerId = number;

/** A host and port to bind or to reach. */
export interface HostPort {
  /** Host name or literal address (IPv6 without brackets). */
  hostname: string;
  /** Port number (0 to let the system pick when binding). */
  port: number;
}

/** A transport address: what `Deno.NetAddr` carries for TCP and UDP. */
export interface NetAddress {
  /** `"udp"` or `"tcp"`. */
  transport: "udp" | "tcp";
  /** Literal IP address (IPv6 without brackets). */
  hostname: string;
  /** Port number. */
  port: number;
}

/** A bound UDP socket: the part of `Deno.DatagramConn` the programs use. */
export interface DatagramSocket {
  /** The local address it is bound to. */
  readonly addr: NetAddress;
  /** Resolves with the next datagram and its sender; rejects once closed. */
  receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddress]>;
  /** Sends one datagram; resolves with the bytes sent. */
  send(bytes: Uint8Array, to: NetAddress): Promise<number>;
  /** Closes the socket; a pending `receive` rejects. */
  close(): void;
  /**
   * True when `send` copies `bytes` before it returns, so the caller may reuse them at once
   * (batched sockets); otherwise the bytes must stay untouched until the send settles.
   */
  readonly copiesOnSend?: boolean;
  /**
   * Asks the kernel for receive and send buffers of `bytes` each; returns the receive buffer it
   * then reports, or undefined when that cannot be done here (absent: never).
   */
  enlargeBuffers?(bytes: number): number | undefined;
}

/** A connected byte stream (TCP): the part of `Deno.TcpConn` the programs use. */
export interface StreamConn {
  /** This end's address. */
  readonly localAddr: NetAddress;
  /** The other end's address. */
  readonly remoteAddr: NetAddress;
  /** Reads into `buffer`; resolves with the count read, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes`; resolves with the count written. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the write half (sends FIN). */
  closeWrite(): Promise<void>;
  /** Closes both halves at once. */
  close(): void;
  /** Disables Nagle's algorithm where the transport has one. */
  setNoDelay?(noDelay?: boolean): void;
}

/** A TCP listener: the part of `Deno.TcpListener` the programs use. */
export interface StreamListener {
  /** The bound address. */
  readonly addr: NetAddress;
  /** Resolves with the next connection; rejects once closed. */
  accept(): Promise<StreamConn>;
  /** Stops listening; a pending `accept` rejects. */
  close(): void;
}

/** The network half of a {@linkcode Runtime}. */
export interface NetworkRuntime {
  /** Binds a UDP socket (throws as `Deno.listenDatagram` does: address in use, permission). */
  listenDatagram(bind: HostPort): DatagramSocket;
  /** Opens a TCP connection. */
  connect(to: HostPort): Promise<StreamConn>;
  /**
   * Starts a TCP listener (throws as `Deno.listen` does). `reusePort` sets `SO_REUSEPORT` (Linux:
   * several processes share the port, the kernel spreads connections over them).
   */
  listen(bind: HostPort & { reusePort?: boolean }): StreamListener;
  /**
   * Linux: listens on the abstract Unix socket `name` (no file; any process of this machine's
   * network namespace may connect, as to a loopback port, with half the cost per write and read).
   * Absent where there are none (other systems, simulated networks). The connections' addresses
   * are not IP addresses: `localAddr` and `remoteAddr` must not be read.
   */
  listenLocal?(name: string): StreamListener;
  /** Connects to the abstract Unix socket `name` (see {@linkcode NetworkRuntime.listenLocal}). */
  connectLocal?(name: string): Promise<StreamConn>;
  /**
   * The host's own addresses worth binding one by one (IPv4 first, link-local IPv6 left out), or
   * an empty list when they cannot be listed; absent where the network has no such notion (a
   * simulated network binds wildcards to its host's one address).
   */
  interfaceAddresses?(): string[];
}

/**
 * Clock, timers, randomness and network, injected into every component that has side effects.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "./system.ts";
 *
 * const runtime: Runtime = systemRuntime;
 * const start = runtime.now();
 * const id = runtime.setTimer(() => console.log(`fired after ${runtime.now() - start} ms`), 10);
 * runtime.clearTimer(id);
 * ```
 */
export interface Runtime {
  /** Monotonic time in milliseconds (fractional); only differences mean anything. */
  now(): number;
  /** Wall-clock time in milliseconds since the Unix epoch (for timestamps shown to people). */
  wallClock(): number;
  /** Calls `callback` once, `delayMs` (>= 0) from now. */
  setTimer(callback: () => void, delayMs: number): TimerId;
  /** Cancels a timer; unknown or `undefined` IDs are ignored. */
  clearTimer(id: TimerId | undefined): void;
  /** Calls `callback` soon, after I/O already received is processed (as `setImmediate`). */
  defer(callback: () => void): void;
  /** A uniformly distributed number in [0, 1). */
  random(): number;
  /** `length` cryptographically random bytes (seeded, hence not secret, in simulation). */
  randomBytes(length: number): Uint8Array;
  /** Sockets. */
  readonly net: NetworkRuntime;
}
