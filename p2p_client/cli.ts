/**
 * The client's command line: flags parsed with commander into {@linkcode ClientSettings}.
 *
 * Servers: `--server HOST[:PORT]` (repeatable) names signaling servers directly (PORT defaults to
 * `--tcp-port`). Without `--server`, the hosts of the config file's `stun` entries are used, each
 * with `--tcp-port` (default 3478); the STUN port always comes from the server's `registered`
 * message. The config file is `--local-file PATH`, default `resources/stun_servers.json`.
 *
 * @module
 */
import { type AcceptFilesPolicy, parseAcceptFiles } from "./files/policy.ts";
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parseServerAddress, type ServerAddress } from "../shared/config/mod.ts";
import { DEFAULT_TCP_PORT } from "../shared/signaling/constants.ts";
import { CLIENT_VERSION } from "./version.ts";
import { RELAY_POLICIES, type RelayPolicy } from "./relay_paths.ts";

/**
 * Log levels accepted by `--log-level`.
 *
 * @example
 * ```ts
 * LOG_LEVELS.includes("debug"); // true
 * ```
 */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** The parsed command line. */
export interface ClientSettings {
  /** The config file, when given with `--local-file`. */
  localFile: string | undefined;
  /** Servers given with `--server` (TCP signaling addresses; port defaulted later). */
  servers: string[];
  /** Default signaling TCP port. */
  tcpPort: number;
  /** Identity file, when given. */
  identity: string | undefined;
  /** Throw-away identity. */
  ephemeral: boolean;
  /** JSON lines on stdout. */
  json: boolean;
  /** Log level (stderr). */
  logLevel: LogLevel;
  /** Address the UDP socket binds. */
  bind: string;
  /** UDP port (0: any). */
  udpPort: number;
  /** Never use direct paths. */
  relayOnly: boolean;
  /** Which relays may carry peer packets: `server`, `turn` or `any` (default). */
  relay: RelayPolicy;
  /** Seconds to wait for pending messages at exit. */
  exitTimeout: number;
  /** Prefix printed lines with the local time. */
  timestamps: boolean;
  /** `--accept-files`, when given. */
  acceptFiles?: AcceptFilesPolicy;
  /** `--downloads`, when given. */
  downloads?: string;
}

function port(min: number) {
  return (value: string): number => {
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) < min || Number(value) > 65_535) {
      throw new InvalidArgumentError(`expected a port from ${min} to 65535`);
    }
    return Number(value);
  };
}

function positiveSeconds(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 3600) {
    throw new InvalidArgumentError("expected seconds from 0 to 3600");
  }
  return number;
}

function collect(value: string, previous: string[]): string[] {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new InvalidArgumentError(
      "expected HOST[:PORT] (e.g. example.org:3478 or [2001:db8::1]:3478), not a URL",
    );
  }
  const parsed = parseServerAddress(value, 1);
  if (typeof parsed === "string") throw new InvalidArgumentError(parsed);
  return [...previous, value];
}

/**
 * Builds the commander program. `onAction` receives the settings.
 *
 * @example
 * ```ts
 * const program = buildCli((settings) => console.log(settings.json));
 * program.exitOverride();
 * program.parse(["--json"], { from: "user" });
 * ```
 */
export function buildCli(
  onAction: (settings: ClientSettings) => void | Promise<void>,
): Command {
  return new Command()
    .name("p2p-client")
    .description(
      "Peer-to-peer client: registers with a rendezvous server, punches NATs, and exchanges " +
        "end-to-end encrypted messages with peers (relayed through the server when no direct " +
        "path works).",
    )
    .version(CLIENT_VERSION, "-V, --version")
    .option(
      "--local-file <path>",
      'config file {"stun": ["host:port", ...], "turn": [...]} (default: resources/stun_servers.json)',
    )
    .option(
      "--server <host[:port]>",
      "signaling server (TCP), repeatable, tried in order; overrides the config file",
      collect,
      [] as string[],
    )
    .option(
      "--tcp-port <port>",
      "signaling TCP port of config-file servers",
      port(1),
      DEFAULT_TCP_PORT,
    )
    .option("--identity <path>", "identity key file (default: $XDG_CONFIG_HOME/p2p/identity.json)")
    .addOption(
      new Option("--ephemeral", "use a throw-away identity (new ID every run)")
        .default(false)
        .conflicts("identity"),
    )
    .option("--json", "print one JSON object per event on stdout", false)
    .option("--timestamps", "prefix printed lines with the local time", false)
    .addOption(
      new Option("--log-level <level>", "log level on stderr").choices(LOG_LEVELS).default(
        "warning" as LogLevel,
      ),
    )
    .option("--bind <host>", "address the UDP socket binds to", "0.0.0.0")
    .option("--udp-port <port>", "UDP port (0: any free port)", port(0), 0)
    .option("--relay-only", "never try direct paths (diagnostics)", false)
    .addOption(
      new Option(
        "--relay <relays>",
        "relays peers may be reached through: server (the rendezvous server's only), turn (the " +
          "config's TURN servers only), any (both, the lower-latency one preferred)",
      ).choices(RELAY_POLICIES).default("any" as RelayPolicy),
    )
    .option(
      "--exit-timeout <seconds>",
      "at exit, wait this long for pending messages to be delivered",
      positiveSeconds,
      30,
    )
    .option(
      "--accept-files <policy>",
      "who may send files: ask, contacts (peers you connected to), anyone, none (default: ask; none with --json)",
      (value: string) => {
        try {
          return parseAcceptFiles(value);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      },
    )
    .option("--downloads <dir>", "where received files go (default: ~/Downloads/p2p)")
    .action(async (options) => {
      await onAction({
        localFile: options.localFile,
        servers: options.server,
        tcpPort: options.tcpPort,
        identity: options.identity,
        ephemeral: options.ephemeral,
        json: options.json,
        logLevel: options.logLevel as LogLevel,
        bind: options.bind,
        udpPort: options.udpPort,
        relayOnly: options.relayOnly,
        relay: options.relay as RelayPolicy,
        exitTimeout: options.exitTimeout,
        timestamps: options.timestamps,
        ...(options.acceptFiles === undefined ? {} : { acceptFiles: options.acceptFiles }),
        ...(options.downloads === undefined ? {} : { downloads: options.downloads }),
      });
    });
}

/**
 * The servers to use: `--server` entries (port defaulting to `tcpPort`), else the config file's
 * `stun` hosts with `tcpPort`. Duplicates are removed, order kept.
 *
 * @example
 * ```ts
 * resolveServers(["10.0.0.1"], [], 3478); // [{ host: "10.0.0.1", port: 3478 }]
 * resolveServers([], [{ host: "127.0.0.1", port: 54321 }], 3478); // [{ host: "127.0.0.1", port: 3478 }]
 * ```
 */
export function resolveServers(
  cliServers: string[],
  configStun: ServerAddress[],
  tcpPort: number,
): ServerAddress[] {
  const list = cliServers.length > 0
    ? cliServers.map((text) => parseServerAddress(text, tcpPort) as ServerAddress)
    : configStun.map((entry) => ({ host: entry.host, port: tcpPort }));
  const seen = new Set<string>();
  return list.filter((entry) => {
    const key = `${entry.host}|${entry.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
