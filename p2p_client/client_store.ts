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
 * change (batched: at most every {@linkcode SAVE_DELAY_MS} ms), and once more at exit. A crash
 * loses at most that last moment: a message printed in it may be printed again after a restart.
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
export const SAVE_DELAY_MS = 200;

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

/** Where a client keeps its restart state (synchronous: small files, written rarely). */
export interface ClientStore {
  /** The stored state (empty when nothing is stored yet). */
  load(): StoredState;
  /** Replaces the stored state. */
  save(state: StoredState): void;
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

  /** The stored state. */
  load(): StoredState {
    return structuredClone(this.#state);
  }

  /** Replaces the stored state. */
  save(state: StoredState): void {
    this.#state = structuredClone(state);
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
 * The files beside the identity: `<identity>.outbox.json` and `<identity>.received.json`.
 *
 * @example
 * ```ts
 * // const store = new FileClientStore("/home/me/.config/p2p-client/identity.key");
 * ```
 */
export class FileClientStore implements ClientStore {
  readonly #outboxPath: string;
  readonly #receivedPath: string;

  /** @param identityPath The identity file; the store's files sit beside it. */
  constructor(identityPath: string) {
    this.#outboxPath = `${identityPath}.outbox.json`;
    this.#receivedPath = `${identityPath}.received.json`;
  }

  /** Reads both files (missing or damaged files count as empty). */
  load(): StoredState {
    return parseStoredState(readOrEmpty(this.#outboxPath), readOrEmpty(this.#receivedPath));
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
  }
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
