/**
 * The server's command line: every flag, its default and its validation.
 *
 * @module
 */
import { Command, CommanderError, InvalidArgumentError } from "@commander-js/extra-typings";
import type { LogLevel } from "@logtape/logtape";
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_STUN_PORT,
  DEFAULT_TCP_PORT,
  REGISTRATION_TIMEOUT_MS,
} from "../shared/signaling/mod.ts";
import { SERVER_VERSION } from "./version.ts";
import { addStunTurnOptions, type StunTurnConfig, stunTurnConfig } from "./turn_flags.ts";

/** Settings parsed from the command line. */
export interface ServerConfig {
  /** Address to listen on; undefined means all interfaces (IPv4 and IPv6). */
  host: string | undefined;
  /** UDP port of the STUN service (0 picks a free one). */
  stunPort: number;
  /** TCP port of the signaling service (0 picks a free one). */
  tcpPort: number;
  /** Lowest log level written to stderr. */
  logLevel: LogLevel;
  /** Most registered clients. */
  maxClients: number;
  /** Most open TCP connections from one source address. */
  maxConnsPerIp: number;
  /** Relayed payload bytes per second per sending client. */
  relayRate: number;
  /** Bytes that may wait for one receiver before relay frames to it are refused. */
  relayQueue: number;
  /** Heartbeat interval (ms). */
  heartbeatMs: number;
  /** Time a new connection has to register (ms). */
  registrationTimeoutMs: number;
  /** STUN/TURN settings (TURN credentials, relay, quotas, RFC 5780; see `turn_flags.ts`). */
  stun: StunTurnConfig;
}

/** The outcome of parsing: settings to run with, or an exit code (after help, version, error). */
export type ParsedArgs = { config: ServerConfig } | { exitCode: number };

/** Where {@linkcode parseServerArgs} writes help, version and errors. */
export interface CliOutput {
  /** Writes to standard output. */
  writeOut(text: string): void;
  /** Writes to standard error. */
  writeErr(text: string): void;
}

const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

function logLevel(value: string): LogLevel {
  const level = value === "warn" ? "warning" : value;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidArgumentError(`must be one of ${LOG_LEVELS.join(", ")}`);
  }
  return level as LogLevel;
}

/**
 * Parses the server's arguments (without the program name).
 *
 * @example
 * ```ts
 * const parsed = parseServerArgs(["--tcp-port", "0", "--stun-port", "0"], {
 *   writeOut: () => {},
 *   writeErr: () => {},
 * });
 * if ("config" in parsed) console.log(parsed.config.tcpPort); // 0
 * ```
 */
export function parseServerArgs(args: string[], output: CliOutput): ParsedArgs {
  const program = new Command()
    .name("stun_server")
    .description(
      "Rendezvous server: STUN (RFC 8489) on UDP, and signaling, brokering and relay on TCP.",
    )
    .version(SERVER_VERSION, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show this help and exit")
    .option("--host <address>", "address to listen on (default: all interfaces, IPv4 and IPv6)")
    .option(
      "--stun-port <port>",
      "UDP port of the STUN service",
      integer(0, 65535),
      DEFAULT_STUN_PORT,
    )
    .option(
      "--tcp-port <port>",
      "TCP port of the signaling service",
      integer(0, 65535),
      DEFAULT_TCP_PORT,
    )
    .option(
      "--log-level <level>",
      `lowest log level written to stderr (${LOG_LEVELS.join(", ")})`,
      logLevel,
      "info" as LogLevel,
    )
    .option("--max-clients <count>", "most registered clients", integer(1, 1_000_000), 10_000)
    .option(
      "--max-conns-per-ip <count>",
      "most open TCP connections from one source address",
      integer(1, 1_000_000),
      64,
    )
    .option(
      "--relay-rate <bytes>",
      "relayed payload bytes per second per sending client",
      integer(1, Number.MAX_SAFE_INTEGER),
      4 * 1024 * 1024,
    )
    .option(
      "--relay-queue <bytes>",
      "bytes that may wait for one receiver before relay frames to it are refused (min 65540)",
      integer(1, Number.MAX_SAFE_INTEGER),
      1024 * 1024,
    )
    .option(
      "--heartbeat-ms <ms>",
      "heartbeat interval; a client silent for 2.5 intervals is dead",
      integer(50, 3_600_000),
      DEFAULT_HEARTBEAT_MS,
    )
    .option(
      "--registration-timeout-ms <ms>",
      "time a new connection has to register",
      integer(50, 3_600_000),
      REGISTRATION_TIMEOUT_MS,
    )
    .exitOverride();
  addStunTurnOptions(program as never);
  program
    .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr });
  try {
    program.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return { exitCode: error.exitCode };
    throw error;
  }
  const options = program.opts();
  return {
    config: {
      host: options.host,
      stunPort: options.stunPort,
      tcpPort: options.tcpPort,
      logLevel: options.logLevel,
      maxClients: options.maxClients,
      maxConnsPerIp: options.maxConnsPerIp,
      relayRate: options.relayRate,
      relayQueue: options.relayQueue,
      heartbeatMs: options.heartbeatMs,
      registrationTimeoutMs: options.registrationTimeoutMs,
      stun: stunTurnConfig(options as Record<string, unknown>),
    },
  };
}
