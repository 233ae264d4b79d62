/**
 * The client configuration file: `{"stun": [...], "turn": [...]}`.
 *
 * - `stun`: rendezvous servers, each `"host:port"`, `"stun:host:port"` or `"stun://host:port"`
 *   (IPv6 in brackets: `"[::1]:54321"`). The port is the server's STUN port.
 * - `turn`: TURN servers, each `{"url", "username", "credential"}` with a `turn:`/`turns:` URL
 *   (RFC 7065). The client allocates a relay on each `turn:` (UDP) server and uses it as a relay
 *   path beside the rendezvous server's (`p2p_client/turn_client.ts`); {@linkcode parseTurnUrl}
 *   reads the URL.
 *
 * @module
 */
import { ConfigError } from "./errors.ts";
import { parseServerAddress, type ServerAddress } from "./server_address.ts";

/** A TURN server entry of the configuration file. */
export interface TurnServerConfig {
  /** `turn:host[:port][?transport=udp|tcp]` or `turns:...`. */
  url: string;
  /** TURN user name. */
  username: string;
  /** TURN credential (password). */
  credential: string;
}

/** A parsed and validated client configuration. */
export interface ClientConfig {
  /** Rendezvous servers, in the order they should be tried. */
  stun: ServerAddress[];
  /** TURN servers (RFC 7065 URLs and long-term credentials). */
  turn: TurnServerConfig[];
}

const TURN_URL_PATTERN =
  /^turns?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(\?transport=(udp|tcp))?$/;
const MAX_ENTRIES = 64;

/** A TURN URL taken apart (RFC 7065). */
export interface TurnUrl {
  /** `turns:` (TLS or DTLS) rather than `turn:`. */
  secure: boolean;
  /** Host name or literal IP address (IPv6 without brackets). */
  host: string;
  /** Port (default 3478, or 5349 for `turns:`). */
  port: number;
  /** `?transport=`: `udp` (default for `turn:`) or `tcp` (default for `turns:`). */
  transport: "udp" | "tcp";
}

/**
 * Takes a TURN URL apart (RFC 7065 section 3: `turn:host[:port][?transport=udp|tcp]`,
 * `turns:...`); undefined when it is not one.
 *
 * @example
 * ```ts
 * parseTurnUrl("turn:[::1]:3479"); // { secure: false, host: "::1", port: 3479, transport: "udp" }
 * parseTurnUrl("turns:turn.example.org")?.port; // 5349
 * ```
 */
export function parseTurnUrl(url: string): TurnUrl | undefined {
  if (!TURN_URL_PATTERN.test(url)) return undefined;
  const match =
    /^(turns?):(\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?(?:\?transport=(udp|tcp))?$/
      .exec(url);
  if (!match) return undefined;
  const secure = match[1] === "turns";
  const port = match[5] === undefined ? (secure ? 5349 : 3478) : Number(match[5]);
  if (port < 1 || port > 65_535) return undefined;
  return {
    secure,
    host: match[3] ?? match[4],
    port,
    transport: (match[6] as "udp" | "tcp" | undefined) ?? (secure ? "tcp" : "udp"),
  };
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (the field is missing)";
  if (Array.isArray(value)) return "an array";
  return /^[aeiou]/.test(typeof value) ? `an ${typeof value}` : `a ${typeof value}`;
}

/**
 * Validates an already-decoded JSON value as a client configuration.
 *
 * @throws {ConfigError} naming `file` and the field at fault.
 *
 * @example
 * ```ts
 * const config = parseClientConfig({ stun: ["stun:127.0.0.1:54321"], turn: [] }, "inline");
 * console.log(config.stun[0]); // { host: "127.0.0.1", port: 54321 }
 * ```
 */
export function parseClientConfig(value: unknown, file: string): ClientConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(file, "", `expected a JSON object, got ${typeName(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== "stun" && key !== "turn") {
      throw new ConfigError(file, key, `unknown field (expected "stun" and "turn")`);
    }
  }
  const stunValue = record.stun;
  if (!Array.isArray(stunValue)) {
    throw new ConfigError(
      file,
      "stun",
      `expected an array of "host:port" strings, got ${typeName(stunValue)}`,
    );
  }
  if (stunValue.length === 0) throw new ConfigError(file, "stun", "must name at least one server");
  if (stunValue.length > MAX_ENTRIES) {
    throw new ConfigError(file, "stun", `at most ${MAX_ENTRIES} servers`);
  }
  const stun = stunValue.map((entry, index) => {
    const field = `stun[${index}]`;
    if (typeof entry !== "string") {
      throw new ConfigError(file, field, `expected a "host:port" string, got ${typeName(entry)}`);
    }
    const parsed = parseServerAddress(entry);
    if (typeof parsed === "string") throw new ConfigError(file, field, parsed);
    return parsed;
  });
  const turnValue = record.turn ?? [];
  if (!Array.isArray(turnValue)) {
    throw new ConfigError(file, "turn", `expected an array of objects, got ${typeName(turnValue)}`);
  }
  if (turnValue.length > MAX_ENTRIES) {
    throw new ConfigError(file, "turn", `at most ${MAX_ENTRIES} servers`);
  }
  const turn = turnValue.map((entry, index) => parseTurnEntry(entry, `turn[${index}]`, file));
  return { stun, turn };
}

function parseTurnEntry(entry: unknown, field: string, file: string): TurnServerConfig {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new ConfigError(
      file,
      field,
      `expected {"url", "username", "credential"}, got ${typeName(entry)}`,
    );
  }
  const record = entry as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== "url" && key !== "username" && key !== "credential") {
      throw new ConfigError(file, `${field}.${key}`, "unknown field");
    }
  }
  for (const key of ["url", "username", "credential"] as const) {
    if (typeof record[key] !== "string") {
      throw new ConfigError(
        file,
        `${field}.${key}`,
        `expected a string, got ${typeName(record[key])}`,
      );
    }
  }
  const url = record.url as string;
  if (!TURN_URL_PATTERN.test(url)) {
    throw new ConfigError(
      file,
      `${field}.url`,
      `expected "turn:host[:port]" or "turns:host[:port]", got "${url}"`,
    );
  }
  const portMatch = /:([0-9]{1,5})(\?|$)/.exec(url.replace(/^\[.*\]/, ""));
  if (portMatch && (Number(portMatch[1]) < 1 || Number(portMatch[1]) > 65535)) {
    throw new ConfigError(file, `${field}.url`, `port out of range in "${url}"`);
  }
  return { url, username: record.username as string, credential: record.credential as string };
}

/**
 * Parses the text of a configuration file.
 *
 * @throws {ConfigError} for invalid JSON or an invalid field.
 *
 * @example
 * ```ts
 * const config = parseClientConfigText('{"stun": ["[::1]:54321"]}', "x.json");
 * console.log(config.stun[0].host); // "::1"
 * ```
 */
export function parseClientConfigText(text: string, file: string): ClientConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, "", `not valid JSON (${(error as Error).message})`);
  }
  return parseClientConfig(value, file);
}

/**
 * Reads and parses a configuration file.
 *
 * @throws {ConfigError} when the file cannot be read or is invalid.
 *
 * @example
 * ```ts
 * const config = await loadClientConfig("resources/stun_servers.json");
 * console.log(config.stun.length);
 * ```
 */
export async function loadClientConfig(path: string): Promise<ClientConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "file not found"
      : (error as Error).message;
    throw new ConfigError(path, "", `cannot read (${reason})`);
  }
  return parseClientConfigText(text, path);
}
