/**
 * Restart safety: what a client keeps beside its identity file, so a restarted sender sends again
 * what was not confirmed and a restarted receiver drops what it already printed.
 *
 * - `outbox.json`: messages without an outcome (peer, message ID, wire ID, text), at most
 *   {@linkcode MAX_STORED_MESSAGES} messages and {@linkcode MAX_STORED_BYTES} bytes of text, the
 *   next message ID, and the peers we had a session with (at most 256: introduced again at the
 *   next start);
 * - `received.json`: per peer the wire IDs of the last {@linkcode DEFAULT_RECEIVED_PER_PEER}
 *   messages received, for at most {@linkcode DEFAULT_RECEIVED_PEERS} peers.
 *
 * Both are written atomically (a temporary file renamed over the old one) shortly after each
 * change (batched: at most every {@linkcode SAVE_DELAY_MS} ms), and once more at exit; between
 * saves each change is appended to a journal at once (a message queued, an outcome reported, a
 * message received before it is printed), so even a crash loses nothing.
 *
 * The {@linkcode ClientStore} interface keeps file I/O out of the client (the simulator passes an
 * in-memory one); {@linkcode FileClientStore} is the real one.
 *
 * @module
 */
import { DEFAULT_RECEIVED_PEERS, DEFAULT_RECEIVED_PER_PEER } from "./received_window.ts";

/** Most messages kept in the stored outbox. */
export const MAX_STORED_MESSAGES = 1000;
/** Most text bytes kept in the stored outbox (UTF-8). */
export const MAX_STORED_BYTES = 4 << 20;
/** Delay before a change is saved, ms. */
export const SAVE_DELAY_MS = 5000;

/** One stored unconfirmed message. */
export interface StoredMessage {
  /** The peer's ID. */
  peer: string;
  /** Our message ID. */
  id: number;
  /** Wire ID, 16 hex digits. */
  uid: string;
  /** The text. */
  text: string;
  /** Whether any of it may have left (then it can never be reported `failed`). */
  sent?: boolean;
}

/** Everything stored. */
export interface StoredState {
  /** Unconfirmed messages, in order. */
  outbox: StoredMessage[];
  /** Recently received wire IDs per peer. */
  received: Record<string, string[]>;
  /** The next message ID (IDs go on across restarts, so an outcome names one message). */
  nextMessageId?: number;
  /** Peers we had a session with (introduced again at the next start), at most 256. */
  peers?: string[];
}

/** One change recorded at once (crash-safe) between two saves. */
export type StoreEntry =
  | { kind: "queued"; message: StoredMessage }
  | { kind: "resolved"; id: number }
  | { kind: "received"; peer: string; uid: string };

/**
 * Where a client keeps its restart state: a snapshot saved shortly after changes, and each change
 * recorded at once (before the message is printed, before `sent` is reported, when an outcome is
 * reported), so even a crash loses nothing.
 */
export interface ClientStore {
  /** The stored state (empty when nothing is stored yet), with the recorded changes applied. */
  load(): StoredState;
  /** Replaces the stored state (and drops the recorded changes it includes). */
  save(state: StoredState): void;
  /** Records one change at once. */
  record(entry: StoreEntry): void;
}

/**
 * Applies recorded changes to a state (in order; idempotent). A message restored from a record
 * only may have left before the crash: it counts as sent (never reported `failed`).
 *
 * @example
 * ```ts
 * applyEntries({ outbox: [], received: {} }, [{ kind: "received", peer: "p", uid: "00" }]).received;
 * // { p: ["00"] }
 * ```
 */
export function applyEntries(state: StoredState, entries: readonly StoreEntry[]): StoredState {
  let outbox = state.outbox.slice();
  const received: Record<string, string[]> = {};
  for (const [peer, ids] of Object.entries(state.received)) received[peer] = ids.slice();
  let nextMessageId = state.nextMessageId;
  for (const entry of entries) {
    if (entry.kind === "queued") {
      if (!outbox.some((m) => m.id === entry.message.id)) {
        outbox.push({ ...entry.message, sent: true });
      }
      nextMessageId = Math.max(nextMessageId ?? 1, entry.message.id + 1);
    } else if (entry.kind === "resolved") {
      outbox = outbox.filter((m) => m.id !== entry.id);
      nextMessageId = Math.max(nextMessageId ?? 1, entry.id + 1);
    } else {
      const ids = received[entry.peer] ??= [];
      if (!ids.includes(entry.uid)) ids.push(entry.uid);
    }
  }
  return {
    ...state,
    outbox,
    received,
    ...(nextMessageId !== undefined ? { nextMessageId } : {}),
  };
}

/**
 * A store in memory (tests and the simulator: survives a simulated client restart).
 *
 * @example
 * ```ts
 * const store = new MemoryClientStore();
 * store.save({ outbox: [], received: {} });
 * console.log(store.load().outbox.length); // 0
 * ```
 */
export class MemoryClientStore implements ClientStore {
  #state: StoredState = { outbox: [], received: {} };
  #entries: StoreEntry[] = [];

  /** The stored state. */
  load(): StoredState {
    return boundState(applyEntries(structuredClone(this.#state), this.#entries));
  }

  /** Replaces the stored state. */
  save(state: StoredState): void {
    this.#state = structuredClone(state);
    this.#entries = [];
  }

  /** Records one change. */
  record(entry: StoreEntry): void {
    this.#entries.push(structuredClone(entry));
  }
}

/**
 * Bounds a state to what may be stored: the oldest messages beyond the limits are left out (they
 * still get their outcome in this run).
 *
 * @example
 * ```ts
 * boundState({ outbox: [], received: {} }).outbox.length; // 0
 * ```
 */
export function boundState(state: StoredState): StoredState {
  const outbox: StoredMessage[] = [];
  let bytes = 0;
  for (let i = state.outbox.length - 1; i >= 0; i--) {
    const message = state.outbox[i];
    const length = new TextEncoder().encode(message.text).length;
    if (outbox.length >= MAX_STORED_MESSAGES || bytes + length > MAX_STORED_BYTES) break;
    outbox.push(message);
    bytes += length;
  }
  outbox.reverse();
  const received: Record<string, string[]> = {};
  const peers = Object.keys(state.received).slice(-DEFAULT_RECEIVED_PEERS);
  for (const peer of peers) {
    received[peer] = state.received[peer].slice(-DEFAULT_RECEIVED_PER_PEER);
  }
  const knownPeers = (state.peers ?? []).slice(-DEFAULT_RECEIVED_PEERS);
  return {
    outbox,
    received,
    ...(state.nextMessageId ? { nextMessageId: state.nextMessageId } : {}),
    ...(knownPeers.length > 0 ? { peers: knownPeers } : {}),
  };
}

function isStoredMessage(value: unknown): value is StoredMessage {
  const m = value as StoredMessage;
  return typeof m === "object" && m !== null && typeof m.peer === "string" &&
    /^[0-9a-f]{40}$/.test(m.peer) && Number.isSafeInteger(m.id) && m.id > 0 &&
    typeof m.uid === "string" && /^[0-9a-f]{16}$/.test(m.uid) && typeof m.text === "string" &&
    (m.sent === undefined || typeof m.sent === "boolean");
}

/**
 * Parses stored JSON leniently: anything malformed is dropped (a damaged file never stops the
 * client), and the result is bounded.
 *
 * @example
 * ```ts
 * parseStoredState('{"outbox":[],"received":{}}', "{}").outbox.length; // 0
 * ```
 */
export function parseStoredState(outboxJson: string, receivedJson: string): StoredState {
  let outbox: StoredMessage[] = [];
  let received: Record<string, string[]> = {};
  let nextMessageId: number | undefined;
  let peers: string[] | undefined;
  try {
    const parsed = JSON.parse(outboxJson);
    const list = Array.isArray(parsed?.outbox) ? parsed.outbox : [];
    outbox = list.filter(isStoredMessage);
    const next = parsed?.nextMessageId;
    if (Number.isSafeInteger(next) && next > 0) nextMessageId = next;
    if (Array.isArray(parsed?.peers)) {
      peers = parsed.peers.filter((p: unknown): p is string =>
        typeof p === "string" && /^[0-9a-f]{40}$/.test(p)
      );
    }
  } catch {
    outbox = [];
  }
  try {
    const parsed = JSON.parse(receivedJson);
    const map = parsed?.received && typeof parsed.received === "object" ? parsed.received : {};
    for (const [peer, ids] of Object.entries(map)) {
      if (!/^[0-9a-f]{40}$/.test(peer) || !Array.isArray(ids)) continue;
      received[peer] = ids.filter((id): id is string =>
        typeof id === "string" && /^[0-9a-f]{16}$/.test(id)
      );
    }
  } catch {
    received = {};
  }
  return boundState({ outbox, received, nextMessageId, peers });
}

/**
 * The files beside the identity: `<identity>.outbox.json` and `<identity>.received.json` (the
 * snapshot), and `<identity>.journal` (one JSON line per change since the snapshot, appended at
 * once; emptied by each save).
 *
 * @example
 * ```ts
 * // const store = new FileClientStore("/home/me/.config/p2p-client/identity.key");
 * ```
 */
export class FileClientStore implements ClientStore {
  readonly #outboxPath: string;
  readonly #receivedPath: string;
  readonly #journalPath: string;

  /**
   * A store beside an identity file.
   *
   * @param identityPath The identity file; the store's files sit beside it.
   */
  constructor(identityPath: string) {
    this.#outboxPath = `${identityPath}.outbox.json`;
    this.#receivedPath = `${identityPath}.received.json`;
    this.#journalPath = `${identityPath}.journal`;
  }

  /** Reads the files (missing or damaged files and lines count as empty). */
  load(): StoredState {
    const state = parseStoredState(
      readOrEmpty(this.#outboxPath),
      readOrEmpty(this.#receivedPath),
    );
    const entries: StoreEntry[] = [];
    const journal = readOrEmpty(this.#journalPath);
    for (const line of journal.split("\n").slice(-MAX_JOURNAL_LINES)) {
      const entry = parseEntry(line);
      if (entry) entries.push(entry);
    }
    return boundState(applyEntries(state, entries));
  }

  /** Appends one change to the journal (owner-only). */
  record(entry: StoreEntry): void {
    Deno.writeTextFileSync(this.#journalPath, JSON.stringify(entry) + "\n", {
      append: true,
      mode: 0o600,
    });
  }

  /** Writes both files atomically, owner-only. */
  save(state: StoredState): void {
    const bounded = boundState(state);
    writeAtomic(
      this.#outboxPath,
      JSON.stringify({
        outbox: bounded.outbox,
        nextMessageId: bounded.nextMessageId,
        peers: bounded.peers,
      }),
    );
    writeAtomic(this.#receivedPath, JSON.stringify({ received: bounded.received }));
    Deno.writeTextFileSync(this.#journalPath, "", { mode: 0o600 });
  }
}

/** Journal lines read at most (a journal is emptied at every save, 5 s after changes). */
const MAX_JOURNAL_LINES = 100_000;

function parseEntry(line: string): StoreEntry | undefined {
  if (line.trim() === "") return undefined;
  try {
    const entry = JSON.parse(line);
    if (entry?.kind === "queued" && isStoredMessage(entry.message)) return entry;
    if (entry?.kind === "resolved" && Number.isSafeInteger(entry.id)) return entry;
    if (
      entry?.kind === "received" && typeof entry.peer === "string" &&
      /^[0-9a-f]{40}$/.test(entry.peer) && typeof entry.uid === "string" &&
      /^[0-9a-f]{16}$/.test(entry.uid)
    ) {
      return entry;
    }
  } catch {
    // a torn last line after a crash
  }
  return undefined;
}

function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "{}";
  }
}

function writeAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp`;
  Deno.writeTextFileSync(temporary, text, { mode: 0o600 });
  Deno.renameSync(temporary, path);
}
