/**
 * The events the client reports, one object per event. In `--json` mode each is printed as one
 * JSON line on stdout (the contract scripts and the NAT lab parse); on a terminal they are
 * rendered as text.
 *
 * @module
 */
import { escapeUntrusted, formatIncoming } from "./safe_text.ts";
import { formatNatReport } from "./nat_probe/explain.ts";
import type { NatReport } from "./nat_probe/nat_probe.ts";

/**
 * A peer's connection state: `connecting` (no path yet: introduced and punching, or the peer is
 * away), `direct` (a proven UDP path), `mixed` (the direct path is in doubt: traffic goes over
 * it and the relay at once), `relayed` (over the server), `disconnected` (closed).
 */
export type PeerState = "connecting" | "direct" | "mixed" | "relayed" | "disconnected";

/** One row of `list`. */
export interface PeerSummary {
  /** The peer's ID. */
  peer: string;
  /** Its state. */
  state: PeerState;
  /** `"udp ip:port"`, `"udp ip:port + relay"` (mixed), `"relay"`, or null while no path is in use. */
  path: string | null;
  /** Smoothed round-trip time in milliseconds, or null before any sample. */
  rttMs: number | null;
  /** The contact's name, when it is one. */
  name?: string;
  /** For an offline contact: when it was last connected (ms since the epoch), if known. */
  lastSeen?: number;
}

import type { FileEvent, TransferSummary } from "./files/types.ts";
import { finalLine, formatBytes, progressLine } from "./files/progress_view.ts";
/**
 * The state of the server connection: `connecting` (an attempt is under way), `registered`,
 * `unreachable` (no answer, refused connection, timeout — retrying), `refused` (the server said
 * no: full, bad request, or another client took this identity).
 */
export type ServerState = "connecting" | "registered" | "unreachable" | "refused";

/** Every event the client emits. */
export type ClientEvent =
  | { type: "registered"; id: string; server: string }
  | { type: "endpoint"; public: string }
  | { type: "peer"; peer: string; state: PeerState; path: string | null; reason?: string }
  | { type: "message"; from: string; text: string }
  | { type: "delivered"; peer: string; messageId: number }
  | { type: "unconfirmed"; peer: string; messageId: number; reason: string }
  | { type: "error"; code: string; message: string; peer?: string; messageId?: number }
  | { type: "id"; id: string }
  | { type: "peers"; peers: PeerSummary[] }
  | { type: "sent"; peer: string; messageId: number }
  | { type: "stats"; pendingMessages: number; rejectedPackets: number; peers: number }
  | { type: "nat"; report: NatReport }
  | { type: "disconnected"; server: string; reason: string }
  | { type: "help"; text: string }
  | FileEvent
  | { type: "files"; transfers: TransferSummary[] }
  | { type: "exit" }
  | { type: "server"; state: ServerState; server: string; id?: string; reason?: string }
  | { type: "presence"; peer: string; state: "online"; path: string | null }
  | { type: "verify"; peer: string; safetyNumber: string }
  | { type: "contact"; peer: string; name: string | null }
  | {
    type: "status";
    id: string;
    server: ServerState;
    address: string | null;
    reason: string | null;
    pendingMessages: number;
    connectedPeers: number;
    contacts: number;
  }
  | { type: "info"; text: string }
  | {
    type: "turn";
    /** The TURN server as `turn host:port` (never its credentials). */
    server: string;
    /** `allocated` (with the relayed address) or `failed` (with why; retried with backoff). */
    state: "allocated" | "failed";
    relayed?: string;
    reason?: string;
  };

/**
 * Renders an event as exactly one JSON line (no trailing newline).
 *
 * @example
 * ```ts
 * formatJsonEvent({ type: "endpoint", public: "1.2.3.4:5" }); // '{"type":"endpoint","public":"1.2.3.4:5"}'
 * ```
 */
export function formatJsonEvent(event: ClientEvent): string {
  // JSON.stringify escapes every control character, so the line holds no raw newline.
  return JSON.stringify(event);
}

/**
 * Renders an event as human-readable text for the interactive prompt.
 *
 * @example
 * ```ts
 * formatTextEvent({ type: "message", from: "ab".repeat(20), text: "hi" }); // "[abababab…] hi"
 * formatTextEvent({ type: "message", from: "ab".repeat(20), text: "hi" }, () => "alice"); // "[alice] hi"
 * ```
 */
export function formatTextEvent(event: ClientEvent, label: (id: string) => string = short): string {
  switch (event.type) {
    case "registered":
      return `registered with ${event.server} as ${event.id}`;
    case "endpoint":
      return `public endpoint ${event.public}`;
    case "peer":
      return `peer ${label(event.peer)} ${event.state}${event.path ? ` via ${event.path}` : ""}${
        event.reason ? ` (${event.reason})` : ""
      }`;
    case "message":
      return formatIncoming(label(event.from), event.text);
    case "delivered":
      return `message ${event.messageId} delivered to ${label(event.peer)}`;
    case "unconfirmed":
      return `message ${event.messageId} to ${
        label(event.peer)
      } unconfirmed: it may have arrived (${event.reason})`;
    case "error":
      return `error (${event.code}): ${event.message}${errorHint(event.code, event.message)}`;
    case "id":
      return event.id;
    case "peers":
      if (event.peers.length === 0) return "no peers yet (connect <peer_id>)";
      return formatPeerTable(event.peers);
    case "sent":
      return `message ${event.messageId} queued for ${label(event.peer)}`;
    case "nat":
      return formatNatReport(event.report).join("\n");
    case "stats":
      return `pending messages ${event.pendingMessages}, rejected packets ${event.rejectedPackets}, peers ${event.peers}`;
    case "disconnected":
      return `lost server ${event.server} (${event.reason}); reconnecting`;
    case "help":
      return event.text;
    case "file":
      if (event.state === "progress") return progressLine(event);
      return finalLine(event) ??
        `file ${event.id.slice(0, 8)} ${event.direction === "send" ? "offered to" : "offered by"} ${
          short(event.peer)
        }: ${escapeUntrusted(event.name)} (${formatBytes(event.size)})${
          event.direction === "receive"
            ? ` — accept ${event.id.slice(0, 8)} / reject ${event.id.slice(0, 8)}`
            : ""
        }`;
    case "files":
      if (event.transfers.length === 0) return "no file transfers";
      return event.transfers.map((t) =>
        `${t.id.slice(0, 8)}  ${t.direction === "send" ? "→" : "←"} ${short(t.peer)}  ${
          t.state.padEnd(10)
        } ${formatBytes(t.bytes)}/${formatBytes(t.size)}  ${escapeUntrusted(t.name)}`
      ).join("\n");
    case "exit":
      return "bye";
    case "server":
      return formatServerState(event, label);
    case "presence":
      return `${label(event.peer)} is online${event.path ? ` (${event.path})` : ""}`;
    case "verify":
      return `safety number with ${label(event.peer)}: ${event.safetyNumber}\n` +
        `  (compare it with the one ${
          label(event.peer)
        } sees for you; if they differ, a key was substituted)`;
    case "contact":
      return event.name === null
        ? `forgot ${event.peer}`
        : `${event.peer} is now named ${event.name}`;
    case "status":
      return [
        `id        ${event.id}`,
        `server    ${event.server}${event.address ? ` ${event.address}` : ""}${
          event.reason ? ` (${event.reason})` : ""
        }`,
        `peers     ${event.connectedPeers} connected, ${event.contacts} contact(s)`,
        `pending   ${event.pendingMessages} message(s)`,
      ].join("\n");
    case "info":
      return event.text;
    case "turn":
      return event.state === "allocated"
        ? `${event.server}: relay allocated (${event.relayed})`
        : `${event.server}: no relay (${event.reason}); trying again later`;
  }
}

/** What to do about an error, where its message does not say it already. */
const ERROR_HINTS: Record<string, string> = {
  "unknown-peer": "check the ID, or connect again once it is online",
  "replaced": "another client took this identity: run one client per identity (--identity PATH)",
  "rate-limited": "slow down, then try again",
  "server-full": "try again later, or another server with --server HOST:PORT",
  "too-many-connections": "close other clients on this address, or try again later",
};

function errorHint(code: string, message: string): string {
  const hint = ERROR_HINTS[code];
  if (
    !hint || /:\s*(use|run|check|try|choose|type)\b|\(connect again\)|keep trying/.test(message)
  ) {
    return "";
  }
  return ` (${hint})`;
}

function formatServerState(
  event: { state: ServerState; server: string; id?: string; reason?: string },
  label: (id: string) => string,
): string {
  switch (event.state) {
    case "connecting":
      return `connecting to ${event.server}…`;
    case "registered":
      return `registered with ${event.server}${event.id ? ` as ${label(event.id)}` : ""}`;
    case "unreachable":
      return `server ${event.server} unreachable${
        event.reason ? `: ${event.reason}` : ""
      } (retrying; check the address with --server HOST:PORT)`;
    case "refused":
      return `server ${event.server} refused us${event.reason ? `: ${event.reason}` : ""}`;
  }
}

/**
 * The rows of `list` as an aligned table; each column as wide as its widest cell, so long paths
 * (`udp [2001:db8::1]:54321`) never push the next column out of line.
 *
 * @example
 * ```ts
 * formatPeerTable([{ peer: "ab".repeat(20), state: "direct", path: "udp [::1]:4000", rttMs: 0.4 }]);
 * ```
 */
export function formatPeerTable(rows: PeerSummary[]): string {
  const cells = rows.map((row) => [
    row.name ?? "",
    row.peer,
    row.state,
    row.path ?? (row.lastSeen !== undefined ? `last seen ${formatSeen(row.lastSeen)}` : "-"),
    row.rttMs === null ? "-" : `${row.rttMs.toFixed(1)} ms`,
  ]);
  const withNames = rows.some((row) => row.name !== undefined);
  const widths = [0, 1, 2, 3].map((column) =>
    Math.max(...cells.map((row) => [...row[column]].length))
  );
  return cells.map((row) => {
    const parts = [
      row[1].padEnd(widths[1]),
      row[2].padEnd(widths[2]),
      row[3].padEnd(widths[3]),
      row[4],
    ];
    if (withNames) parts.unshift(row[0].padEnd(widths[0]));
    return parts.join("  ");
  }).join("\n");
}

function formatSeen(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

function short(id: string): string {
  return `${id.slice(0, 8)}…`;
}
