/**
 * Parsing of the prompt's commands: `help`, `list [--all]`, `connect <peer>`,
 * `send <peer> <message>`, `name <peer> <name>`, `forget <peer>`, `verify <peer>`, `status`,
 * `id`, `stats`, `nat`, `exit` | `quit`. A `<peer>` is a full ID, a contact's name, or a unique prefix
 * of either (see {@linkcode resolvePeer}).
 *
 * @module
 */
import { resolvePeer, type ResolveResult } from "./contacts.ts";

/** A parsed prompt command. */
export type PromptCommand =
  | { kind: "help" }
  | { kind: "list"; all: boolean }
  | { kind: "id" }
  | { kind: "stats" }
  | { kind: "status" }
  | { kind: "nat" }
  | { kind: "exit" }
  | { kind: "connect"; peer: string }
  | { kind: "send"; peer: string; text: string }
  | { kind: "name"; peer: string; name: string }
  | { kind: "forget"; peer: string }
  | { kind: "verify"; peer: string };

/** The outcome of parsing one line: a command, nothing (blank line), or a helpful error. */
export type CommandParseResult =
  | { ok: true; command: PromptCommand | undefined }
  | { ok: false; error: string };

/** Turns what the user typed for a peer into an ID (names, prefixes), or an error. */
export type PeerResolver = (text: string) => ResolveResult;

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
  "name",
  "forget",
  "verify",
  "status",
  "id",
  "stats",
  "nat",
  "exit",
  "quit",
] as const;

/** Commands whose first argument is a peer. */
const PEER_COMMANDS = ["connect", "send", "name", "forget", "verify"];

/**
 * The help text of the prompt.
 *
 * @example
 * ```ts
 * console.log(HELP_TEXT);
 * ```
 */
export const HELP_TEXT: string = [
  "commands (<peer> is a peer ID, a contact's name, or a unique prefix of either):",
  "  help                     this text",
  "  list [--all]             connected peers and contacts (--all: also peers gone for good)",
  "  connect <peer>           connect to a peer",
  "  send <peer> <message>    send a message: the rest of the line, spaces kept",
  "  name <peer> <name>       name a peer (kept in contacts.json beside the identity)",
  "  forget <peer>            remove a contact",
  "  verify <peer>            show the safety number to compare with the peer",
  "  status                   the server connection, this client's ID, pending messages",
  "  id                       print this client's peer ID",
  "  stats                    counters: pending messages, rejected packets",
  "  nat                      NAT behaviour, public endpoints, port mapping, server latency",
  "  exit | quit | Ctrl-D     leave (pending messages are delivered or reported first)",
  "keys: Tab completes, Up/Down recall, Ctrl-C clears the line",
].join("\n");

/**
 * Resolves what the user typed as a peer ID: a full 40-hex-digit ID as is, or a unique prefix of
 * a known peer's ID. Returns the ID or an error text (listing the candidates when ambiguous).
 *
 * @example
 * ```ts
 * resolvePeerId("ab", ["ab".repeat(20)]); // "abab..." (the full ID)
 * ```
 */
export function resolvePeerId(text: string, known: Iterable<string>): string | { error: string } {
  const lower = text.toLowerCase();
  if (!/^[0-9a-f]+$/.test(lower)) {
    return {
      error: `"${text}" is not a peer ID (40 hex digits, or a unique prefix of a known one)`,
    };
  }
  const result = resolvePeer(text, known, new Map());
  return result.ok ? result.id : { error: result.error };
}

function resolverOf(known: Iterable<string> | PeerResolver): PeerResolver {
  if (typeof known === "function") return known;
  const ids = [...known];
  return (text) => {
    const id = resolvePeerId(text, ids);
    return typeof id === "string"
      ? { ok: true, id }
      : { ok: false, error: id.error, candidates: [] };
  };
}

/**
 * Parses one line typed at the prompt. `known` lists known peer IDs (for prefixes), or resolves
 * names and prefixes itself.
 *
 * @example
 * ```ts
 * const result = parseCommand("send abab  hello there ", ["ab".repeat(20)]);
 * if (result.ok && result.command?.kind === "send") console.log(result.command.text); // " hello there "
 * ```
 */
export function parseCommand(
  line: string,
  known: Iterable<string> | PeerResolver = [],
): CommandParseResult {
  const resolve = resolverOf(known);
  const trimmed = line.trim();
  if (trimmed === "") return { ok: true, command: undefined };
  const match = /^(\S+)\s*(.*)$/s.exec(trimmed)!;
  const name = match[1].toLowerCase();
  const rest = match[2];
  const noArguments = (command: PromptCommand): CommandParseResult =>
    rest === ""
      ? { ok: true, command }
      : { ok: false, error: `"${name}" takes no arguments (type "help")` };
  const onePeer = (
    usage: string,
    make: (peer: string) => PromptCommand,
  ): CommandParseResult => {
    const parts = rest.split(/\s+/).filter((part) => part !== "");
    if (parts.length !== 1) return { ok: false, error: `usage: ${usage}` };
    const peer = resolve(parts[0]);
    if (!peer.ok) return { ok: false, error: peer.error };
    return { ok: true, command: make(peer.id) };
  };
  switch (name) {
    case "help":
    case "?":
      return noArguments({ kind: "help" });
    case "list":
    case "peers":
      if (rest === "--all" || rest === "-a") {
        return { ok: true, command: { kind: "list", all: true } };
      }
      if (rest !== "") return { ok: false, error: "usage: list [--all]" };
      return { ok: true, command: { kind: "list", all: false } };
    case "id":
      return noArguments({ kind: "id" });
    case "stats":
      return noArguments({ kind: "stats" });
    case "status":
      return noArguments({ kind: "status" });
    case "nat":
      return noArguments({ kind: "nat" });
    case "exit":
    case "quit":
      return noArguments({ kind: "exit" });
    case "connect":
      return onePeer("connect <peer>", (peer) => ({ kind: "connect", peer }));
    case "forget":
      return onePeer("forget <peer>", (peer) => ({ kind: "forget", peer }));
    case "verify":
      return onePeer("verify <peer>", (peer) => ({ kind: "verify", peer }));
    case "name": {
      const parts = rest.split(/\s+/).filter((part) => part !== "");
      if (parts.length !== 2) return { ok: false, error: "usage: name <peer> <name>" };
      const peer = resolve(parts[0]);
      if (!peer.ok) return { ok: false, error: peer.error };
      return { ok: true, command: { kind: "name", peer: peer.id, name: parts[1] } };
    }
    case "send": {
      // The message is the rest of the line after one separator, exactly as typed.
      const sendMatch = /^\s*\S+\s+(\S+)[ \t](.*)$/s.exec(line);
      if (!sendMatch || sendMatch[2] === "") {
        return { ok: false, error: "usage: send <peer> <message>" };
      }
      const peer = resolve(sendMatch[1]);
      if (!peer.ok) return { ok: false, error: peer.error };
      return { ok: true, command: { kind: "send", peer: peer.id, text: sendMatch[2] } };
    }
    default:
      return { ok: false, error: `unknown command "${match[1]}" (type "help" for the commands)` };
  }
}

/**
 * Tab completion: completes a command name, or a known peer ID or contact name after a command
 * that takes a peer. Returns readline's `[candidates, substring]` pair.
 *
 * @example
 * ```ts
 * completeLine("con", []); // [["connect "], "con"]
 * completeLine("send al", [], new Map([["ab".repeat(20), "alice"]])); // [["alice "], "al"]
 * ```
 */
export function completeLine(
  line: string,
  known: Iterable<string>,
  names: ReadonlyMap<string, string> = new Map(),
): [string[], string] {
  const commandMatch = /^\s*(\S*)$/.exec(line);
  if (commandMatch) {
    const word = commandMatch[1].toLowerCase();
    const hits = COMMAND_NAMES.filter((name) => name.startsWith(word)).map((name) => name + " ");
    return [hits, commandMatch[1]];
  }
  const peerMatch = /^\s*(\S+)\s+(\S*)$/i.exec(line);
  if (peerMatch && PEER_COMMANDS.includes(peerMatch[1].toLowerCase())) {
    const word = peerMatch[2].toLowerCase();
    const hits = new Set<string>();
    for (const name of names.values()) {
      if (name.toLowerCase().startsWith(word)) hits.add(name + " ");
    }
    for (const id of known) {
      if (id.startsWith(word) && !names.has(id)) hits.add(id + " ");
    }
    // A named peer's ID typed by prefix completes to the ID.
    if (hits.size === 0) {
      for (const id of names.keys()) if (id.startsWith(word)) hits.add(id + " ");
    }
    return [[...hits], peerMatch[2]];
  }
  if (/^\s*list\s+-/.test(line)) return [["--all"], line.replace(/^\s*list\s+/, "")];
  return [[], line];
}
