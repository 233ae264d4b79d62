/**
 * Admission: whether a new connection is served at all (room on the server, connections per
 * source address), and the graceful refusal of one that is not: one `error`, then the write side
 * shut and the input drained for up to 2 s so the client reads the error rather than a reset. At
 * most 256 refused connections linger at once; beyond that they are closed at once.
 *
 * @module
 */
import type { StreamConn } from "../../shared/runtime/mod.ts";
import { encodeControlFrame, type ErrorCode } from "../../shared/signaling/mod.ts";
import type { SignalingContext } from "./context.ts";

/** After the last words, how long a refused connection may linger. */
export const REFUSAL_LINGER_MS = 2000;
/** Refused connections allowed to linger at once. */
const MAX_LINGERING_REFUSALS = 256;
/** Accepted-but-unregistered connections allowed beyond `maxClients`. */
export const PENDING_CONNECTION_ALLOWANCE = 1024;

/**
 * Counts connections per address and decides admission.
 *
 * @example
 * ```ts
 * import type { SignalingContext } from "./context.ts";
 * declare const context: SignalingContext;
 * declare const conn: import("../../shared/runtime/mod.ts").StreamConn;
 * const admission = new Admission(context);
 * if (admission.admit(conn, "192.0.2.1", 0)) admission.release("192.0.2.1");
 * ```
 */
export class Admission {
  readonly #context: SignalingContext;
  readonly #perAddress = new Map<string, number>();
  #lingering = 0;

  /** @param context The service's shared context. */
  constructor(context: SignalingContext) {
    this.#context = context;
  }

  /**
   * Admits `conn` from `host` (taking a per-address slot) or refuses it (answered and closed);
   * `open` is the number of connections open now.
   */
  admit(conn: StreamConn, host: string, open: number): boolean {
    const { limits, metrics, log } = this.#context;
    if (open >= limits.maxClients + PENDING_CONNECTION_ALLOWANCE) {
      metrics.connections.inc("server-full");
      log.refusal("connection-server-full", "refused a connection from {host}: server full", {
        host,
        open,
      });
      this.refuse(conn, "server-full", "the server has no room for more connections");
      return false;
    }
    const count = (this.#perAddress.get(host) ?? 0) + 1;
    if (count > limits.maxConnectionsPerAddress) {
      metrics.connections.inc("too-many-connections");
      log.refusal(
        "too-many-connections",
        "refused a connection from {host}: over {limit} connections from that address",
        { host, limit: limits.maxConnectionsPerAddress },
      );
      this.refuse(conn, "too-many-connections", "too many connections from your address");
      return false;
    }
    this.#perAddress.set(host, count);
    metrics.connections.inc("accepted");
    return true;
  }

  /** Gives back the slot of a connection from `host`. */
  release(host: string): void {
    const count = (this.#perAddress.get(host) ?? 1) - 1;
    if (count <= 0) this.#perAddress.delete(host);
    else this.#perAddress.set(host, count);
  }

  /** Answers a connection it will not serve with one `error` and closes it gracefully. */
  refuse(conn: StreamConn, code: ErrorCode, message: string): void {
    const frame = encodeControlFrame({ type: "error", code, message });
    if (this.#lingering >= MAX_LINGERING_REFUSALS) {
      conn.write(frame).catch(() => {}).finally(() => closeQuietly(conn));
      return;
    }
    this.#lingering++;
    const runtime = this.#context.runtime;
    const timer = runtime.setTimer(() => closeQuietly(conn), REFUSAL_LINGER_MS);
    (async () => {
      try {
        await conn.write(frame);
        await conn.closeWrite();
        const scratch = new Uint8Array(256);
        for (let reads = 0; reads < 1024; reads++) {
          if (await conn.read(scratch) === null) break;
        }
      } catch {
        // reset, or closed by the timer: either way done
      } finally {
        runtime.clearTimer(timer);
        this.#lingering--;
        closeQuietly(conn);
      }
    })();
  }
}

/** Closes a stream, ignoring "already closed". */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
