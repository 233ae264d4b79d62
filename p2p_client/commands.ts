/**
 * Parsing of the prompt's commands: `help`, `list`, `connect <peer_id>`, `send <peer_id> <message>`,
 * `id`, `stats`, `nat`, `exit` | `quit`.
 *
 * @module
 */

/** A parsed prompt command. */
export type PromptCommand =
  | { kind: "help" }
  | { kind: "list" }
  | { kind: "id" }
  | { kind: "stats" }
  | { kind: "nat" }
  | { kind: "exit" }
  | { kind: "connect"; peer: string }
  | { kind: "send"; peer: string; text: string };

/** The outcome of parsing one line: a command, nothing (blank line), or a helpful error. */
export type CommandParseResult =
  | { ok: true; command: PromptCommand | undefined }
  | { ok: false; error: string };

/**
 * Every command name, for completion and help.
 *
 * @example
 * ```ts
 * COMMAND_NAMES.includes("send"); // true
 * ```
 */
export const COMMAND_NAMES = [
  "help",
  "list",
  "connect",
  "send",
  "id",
  "stats",
  "nat",
  "exit",
  "quit",
] as const;

/**
 * The help text of the prompt.
 *
 * @example
 * ```ts
 * console.log(HELP_TEXT);
 * ```
 */
export const HELP_TEXT: string = [
  "commands:",
  "  help                        this text",
  "  list                        known peers with state, path and RTT",
  "  connect <peer_id>           connect to a peer (unique ID prefix of a known peer accepted)",
  "  send <peer_id> <message>    send a message (the rest of the line)",
  "  id                          print this client's peer ID",
  "  stats                       counters: pending messages, rejected packets",
  "  nat                         NAT behaviour, public endpoints, port mapping, server latency",
  "  exit | quit                 leave (pending messages are delivered or reported first)",
].join("\n");

/**
 * Resolves what the user typed as a peer ID: a full 40-hex-digit ID as is, or a unique prefix of
 * a known peer's ID. Returns the ID or an error text.
 *
 * @example
 * ```ts
 * resolvePeerId("ab", ["ab".repeat(20)]); // "abab..." (the full ID)
 * ```
 */
export function resolvePeerId(text: string, known: Iterable<string>): string | { error: string } {
  const lower = text.toLowerCase();
  if (/^[0-9a-f]{40}$/.test(lower)) return lower;
  if (!/^[0-9a-f]+$/.test(lower)) {
    return {
      error: `"${text}" is not a peer ID (40 hex digits, or a unique prefix of a known one)`,
    };
  }
  const matches = [...known].filter((id) => id.startsWith(lower));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) return { error: `no known peer ID starts with "${text}"` };
  return { error: `"${text}" is ambiguous: ${matches.length} known peers start with it` };
}

/**
 * Parses one line typed at the prompt. `known` lists known peer IDs, for prefixes.
 *
 * @example
 * ```ts
 * const result = parseCommand("send abab hello there", ["ab".repeat(20)]);
 * if (result.ok && result.command?.kind === "send") console.log(result.command.text); // "hello there"
 * ```
 */
export function parseCommand(line: string, known: Iterable<string> = []): CommandParseResult {
  const trimmed = line.trim();
  if (trimmed === "") return { ok: true, command: undefined };
  const match = /^(\S+)\s*(.*)$/s.exec(trimmed)!;
  const name = match[1].toLowerCase();
  const rest = match[2];
  const noArguments = (command: PromptCommand): CommandParseResult =>
    rest === ""
      ? { ok: true, command }
      : { ok: false, error: `"${name}" takes no arguments (type "help")` };
  switch (name) {
    case "help":
    case "?":
      return noArguments({ kind: "help" });
    case "list":
    case "peers":
      return noArguments({ kind: "list" });
    case "id":
      return noArguments({ kind: "id" });
    case "stats":
      return noArguments({ kind: "stats" });
    case "nat":
      return noArguments({ kind: "nat" });
    case "exit":
    case "quit":
      return noArguments({ kind: "exit" });
    case "connect": {
      const parts = rest.split(/\s+/).filter((part) => part !== "");
      if (parts.length !== 1) return { ok: false, error: "usage: connect <peer_id>" };
      const peer = resolvePeerId(parts[0], known);
      if (typeof peer !== "string") return { ok: false, error: peer.error };
      return { ok: true, command: { kind: "connect", peer } };
    }
    case "send": {
      const sendMatch = /^(\S+)\s+(.+)$/s.exec(rest);
      if (!sendMatch) return { ok: false, error: "usage: send <peer_id> <message>" };
      const peer = resolvePeerId(sendMatch[1], known);
      if (typeof peer !== "string") return { ok: false, error: peer.error };
      return { ok: true, command: { kind: "send", peer, text: sendMatch[2] } };
    }
    default:
      return { ok: false, error: `unknown command "${match[1]}" (type "help" for the commands)` };
  }
}

/**
 * Tab completion: completes a command name, or a known peer ID after `connect`/`send`.
 * Returns readline's `[candidates, substring]` pair.
 *
 * @example
 * ```ts
 * completeLine("con", []); // [["connect "], "con"]
 * ```
 */
export function completeLine(line: string, known: Iterable<string>): [string[], string] {
  const commandMatch = /^\s*(\S*)$/.exec(line);
  if (commandMatch) {
    const word = commandMatch[1].toLowerCase();
    const hits = COMMAND_NAMES.filter((name) => name.startsWith(word)).map((name) => name + " ");
    return [hits, commandMatch[1]];
  }
  const peerMatch = /^\s*(connect|send)\s+(\S*)$/i.exec(line);
  if (peerMatch) {
    const word = peerMatch[2].toLowerCase();
    const hits = [...known].filter((id) => id.startsWith(word)).map((id) => id + " ");
    return [hits, peerMatch[2]];
  }
  return [[], line];
}
