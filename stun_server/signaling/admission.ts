/**
 * Admission: whether a new connection is served at all (room on the server, connections per
 * source prefix: IPv4 /32 and /24, IPv6 /64 and /48, see `address_prefix.ts`), and the graceful
 * refusal of one that is not: one `error`, then the write side shut and the input drained for up
 * to 2 s so the client reads the error rather than a reset. At most 256 refused connections
 * linger at once; beyond that they are closed at once.
 *
 * Issue 11: counting per /128 let 100 addresses of one /64 open 6,400 connections; now the /64
 * gets `maxConnectionsPerAddress` and its /48 four times that.
 *
 * @module
 */
import type { StreamConn } from "../../shared/runtime/mod.ts";
import { encodeControlFrame, type ErrorCode } from "../../shared/signaling/mod.ts";
import { PrefixCounter, type PrefixLimitHit } from "../address_prefix.ts";
import type { SignalingContext } from "./context.ts";

/** After the last words, how long a refused connection may linger. */
export const REFUSAL_LINGER_MS = 2000;
/** Refused connections allowed to linger at once. */
const MAX_LINGERING_REFUSALS = 256;
/** Accepted-but-unregistered connections allowed beyond `maxClients`. */
export const PENDING_CONNECTION_ALLOWANCE = 1024;
/** The wide prefix (/24, /48) may hold this many times the per-address limit. */
export const WIDE_PREFIX_FACTOR = 4;

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
  readonly #perPrefix: PrefixCounter;
  #lingering = 0;

  /** @param context The service's shared context. */
  constructor(context: SignalingContext) {
    this.#context = context;
    const limit = context.limits.maxConnectionsPerAddress;
    this.#perPrefix = new PrefixCounter(limit, limit * WIDE_PREFIX_FACTOR);
  }

  /**
   * Admits `conn` from `host` (taking a per-address slot) or refuses it (answered and closed);
   * `open` is the number of connections registered or registering now.
   */
  admit(conn: StreamConn, host: string, open: number): boolean {
    const { limits, metrics, log } = this.#context;
    if (open >= limits.maxClients + limits.maxPendingConnections) {
      metrics.connections.inc("server-full");
      log.refusal("connection-server-full", "refused a connection from {host}: server full", {
        host,
        open,
      });
      this.refuse(conn, "server-full", "the server has no room for more connections");
      return false;
    }
    const hit: PrefixLimitHit | null = this.#perPrefix.tryAdd(host);
    if (hit !== null) {
      const limit = hit === "narrow"
        ? limits.maxConnectionsPerAddress
        : limits.maxConnectionsPerAddress * WIDE_PREFIX_FACTOR;
      const where = hit === "narrow"
        ? "that address (IPv4 /32, IPv6 /64)"
        : "that network (IPv4 /24, IPv6 /48)";
      metrics.connections.inc("too-many-connections");
      log.refusal(
        "too-many-connections",
        "refused a connection from {host}: over {limit} connections from {where}",
        { host, limit, where },
      );
      this.refuse(
        conn,
        "too-many-connections",
        hit === "narrow"
          ? "too many connections from your address"
          : "too many connections from your network",
      );
      return false;
    }
    metrics.connections.inc("accepted");
    return true;
  }

  /** Gives back the slot of a connection from `host`. */
  release(host: string): void {
    this.#perPrefix.remove(host);
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
