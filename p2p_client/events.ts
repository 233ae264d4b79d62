/**
 * The events the client reports, one object per event. In `--json` mode each is printed as one
 * JSON line on stdout (the contract scripts and the NAT lab parse); on a terminal they are
 * rendered as text.
 *
 * @module
 */

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
}

import type { FileEvent, TransferSummary } from "./files/types.ts";
import { finalLine, formatBytes, progressLine } from "./files/progress_view.ts";

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
  | { type: "disconnected"; server: string; reason: string }
  | { type: "help"; text: string }
  | FileEvent
  | { type: "files"; transfers: TransferSummary[] }
  | { type: "exit" };

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

function clean(text: string): string {
  // Keep terminal control sequences sent by peers out of the user's terminal.
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f\u009b]/g, "\uFFFD");
}

/**
 * Renders an event as human-readable text for the interactive prompt.
 *
 * @example
 * ```ts
 * formatTextEvent({ type: "message", from: "ab".repeat(20), text: "hi" }); // "[abababab…] hi"
 * ```
 */
export function formatTextEvent(event: ClientEvent): string {
  switch (event.type) {
    case "registered":
      return `registered with ${event.server} as ${event.id}`;
    case "endpoint":
      return `public endpoint ${event.public}`;
    case "peer":
      return `peer ${short(event.peer)} ${event.state}${event.path ? ` via ${event.path}` : ""}${
        event.reason ? ` (${event.reason})` : ""
      }`;
    case "message":
      return `[${short(event.from)}] ${clean(event.text)}`;
    case "delivered":
      return `message ${event.messageId} delivered to ${short(event.peer)}`;
    case "unconfirmed":
      return `message ${event.messageId} to ${
        short(event.peer)
      } unconfirmed: it may have arrived (${event.reason})`;
    case "error":
      return `error (${event.code}): ${event.message}`;
    case "id":
      return event.id;
    case "peers":
      if (event.peers.length === 0) return "no peers yet (connect <peer_id>)";
      return event.peers.map((row) =>
        `${row.peer}  ${row.state.padEnd(12)} ${(row.path ?? "-").padEnd(26)} ${
          row.rttMs === null ? "-" : `${row.rttMs.toFixed(1)} ms`
        }`
      ).join("\n");
    case "sent":
      return `message ${event.messageId} queued for ${short(event.peer)}`;
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
        }: ${clean(event.name)} (${formatBytes(event.size)})${
          event.direction === "receive"
            ? ` — accept ${event.id.slice(0, 8)} / reject ${event.id.slice(0, 8)}`
            : ""
        }`;
    case "files":
      if (event.transfers.length === 0) return "no file transfers";
      return event.transfers.map((t) =>
        `${t.id.slice(0, 8)}  ${t.direction === "send" ? "→" : "←"} ${short(t.peer)}  ${
          t.state.padEnd(10)
        } ${formatBytes(t.bytes)}/${formatBytes(t.size)}  ${clean(t.name)}`
      ).join("\n");
    case "exit":
      return "bye";
  }
}

function short(id: string): string {
  return `${id.slice(0, 8)}…`;
}
