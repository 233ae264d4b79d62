/**
 * Test helper: a TCP proxy between clients and the server that records every byte in both
 * directions and can tamper with relay frames from a client (flip one payload byte).
 *
 * @module
 */

/** Options of a {@linkcode RecordingProxy}. */
export interface RecordingProxyOptions {
  /** The server's TCP port on 127.0.0.1. */
  targetPort: number;
  /** Relay frames (kind 0x02) from clients with a payload of at least this size to corrupt. */
  tamperRelayFrames?: number;
  /** Smallest payload to tamper with (default 64 bytes). */
  tamperMinPayload?: number;
}

/**
 * A recording, optionally tampering, TCP proxy.
 *
 * @example
 * ```ts
 * const proxy = new RecordingProxy({ targetPort: 3478 });
 * console.log(proxy.port);
 * await proxy.close();
 * ```
 */
export class RecordingProxy {
  readonly #listener: Deno.TcpListener;
  readonly #options: RecordingProxyOptions;
  readonly #chunks: Uint8Array[] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  /** Relay frames corrupted so far. */
  tampered = 0;

  constructor(options: RecordingProxyOptions) {
    this.#options = options;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The proxy's port on 127.0.0.1. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Everything recorded, both directions, concatenated. */
  recorded(): Uint8Array {
    const total = this.#chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      const task = this.#serve(client);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#options.targetPort });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const upstream = this.#pipe(client, server, true);
    const downstream = this.#pipe(server, client, false);
    await Promise.all([upstream, downstream]);
    this.#conns.delete(client);
    this.#conns.delete(server);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, fromClient: boolean): Promise<void> {
    const buffer = new Uint8Array(65_536);
    let pending = new Uint8Array(0);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        const chunk = buffer.slice(0, n);
        this.#chunks.push(chunk);
        if (!fromClient || !this.#options.tamperRelayFrames) {
          await writeAll(to, chunk);
          continue;
        }
        // Reframe so that whole frames can be inspected and corrupted.
        const joined = new Uint8Array(pending.length + chunk.length);
        joined.set(pending);
        joined.set(chunk, pending.length);
        let offset = 0;
        while (joined.length - offset >= 4) {
          const length = new DataView(joined.buffer, offset).getUint32(0);
          if (joined.length - offset < 4 + length) break;
          const frame = joined.subarray(offset, offset + 4 + length);
          const payloadLength = length - 1 - 20;
          if (
            frame[4] === 0x02 && (frame[25] === 0xe4 || frame[25] === 0xe5) &&
            payloadLength >= (this.#options.tamperMinPayload ?? 64) &&
            this.tampered < this.#options.tamperRelayFrames
          ) {
            this.tampered++;
            frame[frame.length - 20] ^= 0x40;
          }
          offset += 4 + length;
        }
        if (offset > 0) await writeAll(to, joined.slice(0, offset));
        pending = joined.slice(offset);
      }
    } catch {
      // connection reset: close both sides
    }
    try {
      to.close();
    } catch {
      // already closed
    }
    try {
      from.close();
    } catch {
      // already closed
    }
  }

  /** Stops the proxy and closes every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.all([...this.#tasks]);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/**
 * True when `needle` occurs in `haystack`.
 *
 * @example
 * ```ts
 * containsBytes(new Uint8Array([1, 2, 3]), new Uint8Array([2, 3])); // true
 * ```
 */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
