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
import { parseNatsServers } from "./cluster/nats_transport.ts";

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
  /** Most connections open and not yet registered. */
  maxPending: number;
  /** Most bits of the admission puzzle under load (0: never ask one). */
  puzzleBits: number;
  /** Where to serve `/metrics` and the status page (undefined: off). */
  metrics: { hostname: string; port: number } | undefined;
  /** How log lines look; `auto` is text on a terminal and JSON otherwise. */
  logFormat: "auto" | "text" | "json";
  /** STUN/TURN settings (TURN credentials, relay, quotas, RFC 5780; see `turn_flags.ts`). */
  stun: StunTurnConfig;
  /** NATS URLs of the cluster bus (`--cluster`); undefined: a single server. */
  cluster: string[] | undefined;
  /** This node's name in the cluster (`--node-name`); undefined: a random one. */
  nodeName: string | undefined;
  /** Subject prefix of the cluster on NATS (`--cluster-prefix`, default `p2p`). */
  clusterPrefix: string;
  /** Server processes on this machine sharing the ports (`--workers`, default 1). */
  workers: number;
  /** Share the TCP port with other processes (`SO_REUSEPORT`; set for workers). */
  reusePort: boolean;
  /** Run as a worker of `--workers`: exit when stdin closes (set by the supervisor). */
  supervised: boolean;
  /**
   * A worker linked to its siblings for relay frames: the link secret is the first line of stdin
   * (set by the supervisor; see `cluster/sibling_links.ts`).
   */
  workerLink: boolean;
}

/** Exit code of a usage error (bad flag or value), as on the client. */
export const USAGE_EXIT_CODE = 2;

/** The smallest `--relay-queue`: one maximal frame (65,536 bytes + the 4-byte length). */
export const MIN_RELAY_QUEUE_BYTES = 65_540;

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

/**
 * Parses `host:port` (`[v6]:port` for IPv6) for `--metrics`.
 *
 * @example
 * ```ts
 * console.log(parseHostPort("127.0.0.1:9464")); // { hostname: "127.0.0.1", port: 9464 }
 * console.log(parseHostPort("[::1]:0")); // { hostname: "::1", port: 0 }
 * ```
 */
export function parseHostPort(value: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(value);
  if (match === null) {
    throw new InvalidArgumentError(`expected host:port (IPv6 as [addr]:port), got "${value}"`);
  }
  const port = Number(match[3]);
  if (port > 65535) throw new InvalidArgumentError(`port must be between 0 and 65535`);
  return { hostname: match[1] ?? match[2], port };
}

function logFormat(value: string): "auto" | "text" | "json" {
  if (value !== "auto" && value !== "text" && value !== "json") {
    throw new InvalidArgumentError("must be one of auto, text, json");
  }
  return value;
}

function natsServers(value: string): string[] {
  try {
    return parseNatsServers(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function nodeName(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,60}$/.test(value)) {
    throw new InvalidArgumentError("1 to 60 letters, digits, '-' or '_'");
  }
  return value;
}

function subjectPrefix(value: string): string {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(value) || value.length > 100) {
    throw new InvalidArgumentError("NATS subject tokens (letters, digits, '-', '_') joined by '.'");
  }
  return value;
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
    .option(
      "--max-clients <count>",
      "most registered clients (1 to 1000000)",
      integer(1, 1_000_000),
      10_000,
    )
    .option(
      "--max-conns-per-ip <count>",
      "most open TCP connections from one source address (1 to 1000000)",
      integer(1, 1_000_000),
      64,
    )
    .option(
      "--relay-rate <bytes>",
      "relayed payload bytes per second per sending client (at least 1)",
      integer(1, Number.MAX_SAFE_INTEGER),
      4 * 1024 * 1024,
    )
    .option(
      "--relay-queue <bytes>",
      `bytes that may wait for one receiver before relay frames to it are refused (min ${MIN_RELAY_QUEUE_BYTES})`,
      integer(MIN_RELAY_QUEUE_BYTES, Number.MAX_SAFE_INTEGER),
      1024 * 1024,
    )
    .option(
      "--heartbeat-ms <ms>",
      "heartbeat interval, 50 to 3600000; a client silent for 2.5 intervals is dead",
      integer(50, 3_600_000),
      DEFAULT_HEARTBEAT_MS,
    )
    .option(
      "--registration-timeout-ms <ms>",
      "time a new connection has to register (50 to 3600000)",
      integer(50, 3_600_000),
      REGISTRATION_TIMEOUT_MS,
    )
    .option(
      "--max-pending <count>",
      "most connections open and not yet registered; beyond, the least fair one is evicted (1 to 1000000)",
      integer(1, 1_000_000),
      1024,
    )
    .option(
      "--puzzle-bits <bits>",
      "most bits of the registration puzzle asked under load (0 to 24; 0: never ask one)",
      integer(0, 24),
      16,
    )
    .option(
      "--metrics <host:port>",
      "serve Prometheus metrics at /metrics and a status page at / on this address (default: off)",
      parseHostPort,
    )
    .option(
      "--log-format <format>",
      "log lines as text or json (auto: text on a terminal, json otherwise)",
      logFormat,
      "auto" as "auto" | "text" | "json",
    )
    .option(
      "--cluster <urls>",
      "join a cluster of servers over NATS: nats://host:4222[,nats://host2:4222...]",
      natsServers,
    )
    .option("--node-name <name>", "this server's name in the cluster (default: random)", nodeName)
    .option("--cluster-prefix <prefix>", "NATS subject prefix of the cluster", subjectPrefix, "p2p")
    .option(
      "--workers <count>",
      "server processes on this machine sharing the ports (needs --cluster)",
      integer(1, 64),
      1,
    )
    .option("--reuse-port", "share the TCP port with other processes (SO_REUSEPORT)", false)
    .option("--supervised", "internal (set by --workers): shut down when stdin closes", false)
    .option(
      "--worker-link",
      "internal (set by --workers): relay to sibling workers over loopback, secret on stdin",
      false,
    )
    .exitOverride();
  addStunTurnOptions(program as never);
  program
    .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr });
  try {
    program.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every usage error exits 2, as on the client.
      return { exitCode: error.exitCode === 0 ? 0 : USAGE_EXIT_CODE };
    }
    throw error;
  }
  const options = program.opts();
  if (options.workers > 1 && options.cluster === undefined) {
    output.writeErr("error: --workers needs --cluster (the workers meet on the cluster bus)\n");
    return { exitCode: USAGE_EXIT_CODE };
  }
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
      maxPending: options.maxPending,
      puzzleBits: options.puzzleBits,
      metrics: options.metrics,
      logFormat: options.logFormat,
      stun: stunTurnConfig(options as Record<string, unknown>),
      cluster: options.cluster,
      nodeName: options.nodeName,
      clusterPrefix: options.clusterPrefix,
      workers: options.workers,
      reusePort: options.reusePort,
      supervised: options.supervised,
      workerLink: options.workerLink,
    },
  };
}
