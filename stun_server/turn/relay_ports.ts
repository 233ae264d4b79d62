/**
 * Binding relayed transport addresses inside a port range (coturn's `min-port`/`max-port`,
 * default 49152-65535): random ports (RFC 8656 section 6.2 asks for unpredictable ones), a
 * bounded number of tries, EVEN-PORT (an even port, optionally with the next odd one held).
 *
 * @module
 */
import type { DatagramSocket, Runtime } from "../../shared/runtime/mod.ts";

/** An inclusive port range. */
export interface PortRange {
  /** Lowest port. */
  readonly min: number;
  /** Highest port. */
  readonly max: number;
}

/** The default relay port range (the IANA dynamic range, as coturn's). */
export const DEFAULT_RELAY_PORTS: PortRange = { min: 49152, max: 65535 };

/** How many random ports to try before giving up (508). */
export const BIND_ATTEMPTS = 64;

/**
 * Parses `MIN-MAX`.
 *
 * @throws {RangeError} when malformed or empty.
 *
 * @example
 * ```ts
 * import { parsePortRange } from "./relay_ports.ts";
 * console.log(parsePortRange("50000-50010")); // { min: 50000, max: 50010 }
 * ```
 */
export function parsePortRange(text: string): PortRange {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const min = Number(match?.[1]), max = Number(match?.[2]);
  if (match === null || min < 1 || max > 65535 || min > max) {
    throw new RangeError(`"${text}" is not a port range MIN-MAX within 1-65535`);
  }
  return { min, max };
}

/** A bound relay socket, and the next odd port held with it when asked. */
export interface BoundRelay {
  /** The relay socket. */
  socket: DatagramSocket;
  /** The socket holding port + 1 (EVEN-PORT with R), if asked for. */
  reserved?: DatagramSocket;
}

/**
 * Binds a UDP socket on `hostname` at a random port of `range`; with `even`, an even port, and
 * with `reserveNext` also port + 1. Returns undefined when no port could be bound.
 *
 * @example
 * ```ts
 * import { bindRelay } from "./relay_ports.ts";
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const bound = bindRelay(systemRuntime, "127.0.0.1", { min: 40000, max: 40100 }, false, false);
 * bound?.socket.close();
 * ```
 */
export function bindRelay(
  runtime: Runtime,
  hostname: string,
  range: PortRange,
  even: boolean,
  reserveNext: boolean,
): BoundRelay | undefined {
  const span = range.max - range.min + 1;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    let port = range.min + Math.floor(runtime.random() * span);
    if (even && port % 2 === 1) port = port + 1 <= range.max ? port + 1 : port - 1;
    if (even && (port % 2 === 1 || port < range.min)) return undefined;
    if (reserveNext && port + 1 > range.max) continue;
    let socket: DatagramSocket;
    try {
      socket = runtime.net.listenDatagram({ hostname, port });
    } catch {
      continue;
    }
    if (!reserveNext) return { socket };
    try {
      return { socket, reserved: runtime.net.listenDatagram({ hostname, port: port + 1 }) };
    } catch {
      socket.close();
    }
  }
  return undefined;
}
