/**
 * A host's view of a shared runtime that can be frozen, as a process stopped with `kill -STOP`
 * or a laptop with its lid closed: while frozen, none of its timers, deferred callbacks, socket
 * reads or connection reads run; the clock goes on, and everything due runs at the thaw, in
 * order (as a resumed process finds its timers overdue and its socket buffers full).
 *
 * @module
 */
import type {
  DatagramSocket,
  NetworkRuntime,
  Runtime,
  StreamConn,
  StreamListener,
  TimerId,
} from "../shared/runtime/mod.ts";

/**
 * Wraps `base` (one host's runtime) with a freeze switch.
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "./virtual_runtime.ts";
 * const world = new VirtualRuntime();
 * const host = new FreezableRuntime(world.forHost("10.0.0.1"));
 * host.freeze();
 * host.thaw();
 * ```
 */
export class FreezableRuntime implements Runtime {
  readonly #base: Runtime;
  #frozen = false;
  #held: Array<{ id?: TimerId; callback: () => void }> = [];
  #thawed: Promise<void> = Promise.resolve();
  #release: () => void = () => {};
  readonly net: NetworkRuntime;

  /**
   * Wraps a host's runtime, not frozen.
   *
   * @param base The host's runtime.
   */
  constructor(base: Runtime) {
    this.#base = base;
    const gate = () => this.#gate();
    this.net = {
      listenDatagram: (bind) => {
        const socket = base.net.listenDatagram(bind);
        const wrapped: DatagramSocket = {
          get addr() {
            return socket.addr;
          },
          receive: async (buffer) => {
            const result = await socket.receive(buffer);
            await gate();
            return result;
          },
          send: (bytes, to) => socket.send(bytes, to),
          close: () => socket.close(),
        };
        return wrapped;
      },
      connect: async (to) => wrapStream(await base.net.connect(to), gate),
      listen: (bind): StreamListener => {
        const listener = base.net.listen(bind);
        return {
          get addr() {
            return listener.addr;
          },
          accept: async () => wrapStream(await listener.accept(), gate),
          close: () => listener.close(),
        };
      },
    };
  }

  /** True while frozen. */
  get frozen(): boolean {
    return this.#frozen;
  }

  /** Stops this host's work (time goes on). */
  freeze(): void {
    if (this.#frozen) return;
    this.#frozen = true;
    this.#thawed = new Promise((resolve) => this.#release = resolve);
  }

  /** Resumes: everything that came due runs now, in order. */
  thaw(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    const held = this.#held;
    this.#held = [];
    this.#release();
    for (const { callback } of held) callback();
  }

  #gate(): Promise<void> {
    return this.#frozen ? this.#thawed : Promise.resolve();
  }

  #run(callback: () => void, id?: () => TimerId): () => void {
    return () => {
      if (this.#frozen) this.#held.push({ id: id?.(), callback });
      else callback();
    };
  }

  now(): number {
    return this.#base.now();
  }

  wallClock(): number {
    return this.#base.wallClock();
  }

  setTimer(callback: () => void, delayMs: number): TimerId {
    let id: TimerId = 0;
    id = this.#base.setTimer(this.#run(callback, () => id), delayMs);
    return id;
  }

  clearTimer(id: TimerId | undefined): void {
    this.#base.clearTimer(id);
    // A timer that came due while frozen is cancelled too.
    if (id !== undefined) this.#held = this.#held.filter((entry) => entry.id !== id);
  }

  defer(callback: () => void): void {
    this.#base.defer(this.#run(callback));
  }

  random(): number {
    return this.#base.random();
  }

  randomBytes(length: number): Uint8Array {
    return this.#base.randomBytes(length);
  }
}

function wrapStream(conn: StreamConn, gate: () => Promise<void>): StreamConn {
  return {
    get localAddr() {
      return conn.localAddr;
    },
    get remoteAddr() {
      return conn.remoteAddr;
    },
    read: async (buffer) => {
      const n = await conn.read(buffer);
      await gate();
      return n;
    },
    write: (bytes) => conn.write(bytes),
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
    setNoDelay: (noDelay) => conn.setNoDelay?.(noDelay),
  };
}
