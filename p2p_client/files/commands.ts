/**
 * The prompt's file commands, parsed apart from the others so the client's command parser can
 * hand them over: `sendfile <peer_id> <path>`, `files`, `cancel <transfer>`, `accept <transfer>`,
 * `reject <transfer>`. A path is the rest of the line (spaces allowed; surrounding quotes removed,
 * `~/` expanded by the caller).
 *
 * @module
 */

/** A parsed file command. */
export type FileCommand =
  | { kind: "sendfile"; peer: string; path: string }
  | { kind: "files" }
  | { kind: "cancel"; transfer: string }
  | { kind: "accept"; transfer: string }
  | { kind: "reject"; transfer: string };

/** Names of the file commands, for completion and help. */
export const FILE_COMMAND_NAMES = ["sendfile", "files", "cancel", "accept", "reject"] as const;

/**
 * Help lines of the file commands.
 *
 * @example
 * ```ts
 * console.log(FILE_HELP_TEXT);
 * ```
 */
export const FILE_HELP_TEXT: string = [
  "  sendfile <peer_id> <path>   offer a file to a peer (the rest of the line is the path)",
  "  files                       transfers with state, progress and rate",
  "  cancel <transfer>           stop a transfer (a unique prefix of its ID will do)",
  "  accept <transfer>           accept a file offered to you",
  "  reject <transfer>           decline a file offered to you",
].join("\n");

/**
 * Parses a line if it is a file command: the command, an error text, or `undefined` when the
 * line is another command.
 *
 * @example
 * ```ts
 * console.log(parseFileCommand("sendfile ab12 /tmp/my file.txt"));
 * // { kind: "sendfile", peer: "ab12", path: "/tmp/my file.txt" }
 * ```
 */
export function parseFileCommand(line: string): FileCommand | { error: string } | undefined {
  const trimmed = line.trim();
  const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(trimmed);
  if (match === null) return undefined;
  const name = match[1].toLowerCase();
  const rest = (match[2] ?? "").trim();
  switch (name) {
    case "sendfile": {
      const args = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (args === null) return { error: "usage: sendfile <peer_id> <path>" };
      let path = args[2].trim();
      if (path.length >= 2 && /^(["']).*\1$/.test(path)) path = path.slice(1, -1);
      if (path === "") return { error: "usage: sendfile <peer_id> <path>" };
      return { kind: "sendfile", peer: args[1], path };
    }
    case "files":
      return rest === "" ? { kind: "files" } : { error: "usage: files" };
    case "cancel":
    case "accept":
    case "reject":
      if (!/^[0-9a-fA-F]{1,32}$/.test(rest)) {
        return { error: `usage: ${name} <transfer> (its ID, or a unique prefix of 4+ digits)` };
      }
      return { kind: name, transfer: rest.toLowerCase() };
    default:
      return undefined;
  }
}
