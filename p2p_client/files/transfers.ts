/**
 * File transfers with the peers: offers, acceptance by policy, streaming with flow control,
 * SHA-256 end to end, resumption and cancellation. One {@linkcode FileTransfers} per client; it
 * talks to peers through a `send` hook (file messages of `shared/files/codec.ts` on each peer's
 * reliable channel: control messages `normal`, file data `bulk`, so a chat line never waits behind
 * queued file data) and to disk through {@linkcode FileSource} and {@linkcode DownloadStore}.
 *
 * - **Flow control.** The receiver grants credit: the sender sends no byte at or beyond it. The
 *   receiver grants `windowBytes` (4 MiB) beyond what it has written to disk, so neither side holds
 *   more than about that much file data in memory, whatever the file size (with the channel's own
 *   bulk budget the sender holds at most one read chunk on top). On loopback 4 MiB is far above
 *   the bandwidth-delay product (under 1 MB at 1 GB/s and 1 ms); 8 MiB moved no faster. With a
 *   `chunkPool` the chunks are reused buffers, not garbage (issue 14: RSS bounded per side).
 * - **Integrity.** Both sides hash the bytes in file order as they stream (SHA-256); the sender's
 *   END carries its digest, the receiver saves the file only when its own digest matches, then
 *   answers DONE with it.
 * - **Resumption.** The receiver flushes and records the offset written (the sidecar of the
 *   partial file) every `checkpointBytes`. When the channel to the peer was reset, when nothing
 *   moves for `stallMs` (15 s), or after either side restarted (the sender's user sends the same
 *   file again), the sender offers the same file again; the receiver answers ACCEPT at the offset it
 *   has (in memory, or as recorded on disk after a restart, re-hashing that prefix), and the sender
 *   re-hashes its prefix and continues from there. After `giveUpMs` (10 min) without progress the
 *   transfer fails; a receiver keeps the partial file for a later offer of the same file.
 * - **Safety.** Offers are accepted by policy (`decide`); the store chooses safe, never
 *   overwriting names inside the downloads folder. A peer can only touch its own transfers, and
 *   a sender that sends beyond its credit or beyond the announced size is cut off.
 *
 * Time comes from the injected runtime (virtual in tests).
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import type { BufferPool } from "./buffer_pool.ts";
import {
  CHUNK_HEADER_BYTES,
  chunkInto,
  decodeFileMessage,
  encodeFileMessage,
  type FileMessage,
  FileMessageError,
  MAX_CHUNK_BYTES,
} from "../../shared/files/codec.ts";
import { MAX_LARGE_DATA_PAYLOAD_BYTES } from "../../shared/peer/frames.ts";
import type { Runtime, TimerId } from "../../shared/runtime/runtime.ts";
import type {
  DownloadStore,
  FileDirection,
  FileEvent,
  FileSource,
  PartialFile,
  TransferSummary,
} from "./types.ts";

/** What to do with an offer: take it, decline it, or ask the user. */
export type OfferDecision = "accept" | "reject" | "ask";

/** Hooks and settings of {@linkcode FileTransfers}. */
export interface FileTransfersOptions {
  /** Clock, timers and randomness. */
  runtime: Pick<Runtime, "now" | "setTimer" | "clearTimer" | "randomBytes">;
  /**
   * Sends a file message to `peer` on its reliable channel. A `bulk` message may be refused
   * (false: the channel's bulk budget is full); the caller then calls
   * {@linkcode FileTransfers.roomAvailable} once the peer acknowledged data. `normal` messages
   * are always taken (the caller holds them while the peer has no path).
   */
  send: (peer: string, message: Uint8Array, priority: "normal" | "bulk") => boolean;
  /** Reports a `file` event. */
  emit: (event: FileEvent) => void;
  /** Opens a file to send (throws with a clear message when it cannot). */
  openSource: (path: string) => Promise<FileSource>;
  /** The downloads folder. */
  store: DownloadStore;
  /** The accept policy for an offer. */
  decide: (peer: string, name: string, size: number) => OfferDecision;
  /**
   * File bytes per CHUNK (default 65,436: a CHUNK message then fills exactly one DATA fragment of
   * the largest TRANSPORT_LARGE packet, rather than one and a sliver; and a chat line waits at most
   * for the rest of one chunk).
   */
  chunkBytes?: number;
  /** Receiver's credit beyond what it has written (default 4 MiB). */
  windowBytes?: number;
  /**
   * Buffers for chunks (each at least `CHUNK_HEADER_BYTES + chunkBytes` bytes): the sender reads
   * each chunk into one and hands it to `send`, which owns it from then on (and may release it to
   * the pool once the bytes are no longer needed: copied, or acknowledged); the receiver copies
   * each chunk it queues for the disk into one and releases it once written. Without a pool
   * every chunk is a new array. See `buffer_pool.ts` for why.
   */
  chunkPool?: BufferPool;
  /**
   * Bytes put in front of every message given to `send` (the transport's envelope, e.g. the
   * outbox's 8-byte wire ID of file messages), so the transport need not copy a chunk into an
   * envelope of its own. Chunks are read in place behind it (the pool's buffers must hold it too).
   */
  messagePrefix?: Uint8Array;
  /** Bytes between checkpoints of a partial file (default 4 MiB). */
  checkpointBytes?: number;
  /** Least time between two `progress` events of a transfer (default 500 ms). */
  progressIntervalMs?: number;
  /** No progress for this long: offer again to resume (default 15 s). */
  stallMs?: number;
  /** No progress for this long: the transfer fails (default 10 min). */
  giveUpMs?: number;
  /** Most offers from one peer being asked about or received at once (default 8). */
  maxIncomingPerPeer?: number;
  /** Most offers being asked about or received at once, all peers (default 32). */
  maxIncoming?: number;
  /** Finished transfers kept for `files` (default 100; the oldest are forgotten). */
  keepFinished?: number;
  /** Debug logging. */
  log?: (message: string) => void;
}

interface Common {
  /** Transfer ID; a receiver re-keys a transfer its restarted sender offers again. */
  id: string;
  peer: string;
  name: string;
  size: number;
  mtimeMs: number;
  /** Bytes sent (sender) or written (receiver). */
  bytes: number;
  lastProgressAt: number;
  lastEventAt: number;
  lastEventBytes: number;
  rate: number;
  timer: TimerId | undefined;
}

interface Outgoing extends Common {
  direction: "send";
  state: "offering" | "rehashing" | "sending" | "finishing" | "done" | "failed";
  source: FileSource;
  credit: number;
  next: number;
  hash: Hash;
  pending: Uint8Array | undefined;
  reading: boolean;
  /** `pending` is the END message. */
  endQueued: boolean;
  /** Bumped on every restart: an async read of an older epoch is dropped. */
  epoch: number;
  lastOfferAt: number;
}

interface Incoming extends Common {
  direction: "receive";
  state: "asking" | "opening" | "receiving" | "finishing" | "done" | "failed";
  partial: PartialFile | undefined;
  expected: number;
  credit: number;
  hash: Hash;
  queue: { offset: number; bytes: Uint8Array }[];
  writing: boolean;
  endSha: string | undefined;
  checkpointed: number;
  lastCreditAt: number;
  lastCreditWritten: number;
  /** Failed in a way a later offer of the same file may resume (stall, not a cancel). */
  resumable: boolean;
}

type Transfer = Outgoing | Incoming;

const DEFAULTS = {
  chunkBytes: MAX_LARGE_DATA_PAYLOAD_BYTES - CHUNK_HEADER_BYTES,
  windowBytes: 4 << 20,
  checkpointBytes: 4 << 20,
  progressIntervalMs: 500,
  stallMs: 15_000,
  giveUpMs: 600_000,
  maxIncomingPerPeer: 8,
  maxIncoming: 32,
  keepFinished: 100,
};

/**
 * Every file transfer of one client.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/system.ts";
 * import { FsDownloadStore, openFileSource } from "./fs_store.ts";
 * declare const channelOf: (peer: string) => {
 *   hasRoomFor(length: number, priority: "normal" | "bulk"): boolean;
 *   sendMessage(message: Uint8Array, priority: "normal" | "bulk"): number;
 * };
 * declare const peerId: string;
 * const transfers = new FileTransfers({
 *   runtime: systemRuntime,
 *   send: (peer, message, priority) =>
 *     channelOf(peer).hasRoomFor(message.length, priority) &&
 *     channelOf(peer).sendMessage(message, priority) > 0,
 *   emit: (event) => console.log(JSON.stringify(event)),
 *   openSource: openFileSource,
 *   store: new FsDownloadStore("/home/me/Downloads/p2p"),
 *   decide: () => "accept",
 * });
 * const id = await transfers.sendFile(peerId, "/tmp/photo.jpg");
 * // every file message from a peer: transfers.onMessage(peer, bytes);
 * ```
 */
export class FileTransfers {
  readonly #o: FileTransfersOptions & typeof DEFAULTS;
  readonly #transfers = new Map<string, Transfer>();
  readonly #prefix: Uint8Array;
  #closed = false;

  /**
   * @example
   * ```ts
   * declare const options: FileTransfersOptions;
   * const transfers = new FileTransfers(options);
   * ```
   */
  constructor(options: FileTransfersOptions) {
    const o = { ...DEFAULTS, ...stripUndefined(options) } as FileTransfersOptions & typeof DEFAULTS;
    this.#prefix = options.messagePrefix ?? new Uint8Array(0);
    if (!(o.chunkBytes >= 1 && o.chunkBytes <= MAX_CHUNK_BYTES)) {
      throw new RangeError(`chunkBytes must be 1..${MAX_CHUNK_BYTES}`);
    }
    if (!(o.windowBytes >= o.chunkBytes)) throw new RangeError("windowBytes below chunkBytes");
    this.#o = o;
  }

  /**
   * Offers the file at `path` to `peer`; resolves with the transfer ID once offered. Rejects
   * (with the reason) when the file cannot be opened.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * declare const peer: string;
   * const id = await transfers.sendFile(peer, "notes.txt");
   * ```
   */
  async sendFile(peer: string, path: string): Promise<string> {
    const source = await this.#o.openSource(path);
    const id = this.#o.runtime.randomBytes(16).toHex();
    const now = this.#o.runtime.now();
    const t: Outgoing = {
      direction: "send",
      id,
      peer,
      name: source.name,
      size: source.size,
      mtimeMs: source.mtimeMs,
      bytes: 0,
      lastProgressAt: now,
      lastEventAt: -Infinity,
      lastEventBytes: 0,
      rate: 0,
      timer: undefined,
      state: "offering",
      source,
      credit: 0,
      next: 0,
      hash: createHash("sha256"),
      pending: undefined,
      reading: false,
      endQueued: false,
      epoch: 0,
      lastOfferAt: now,
    };
    this.#prune();
    this.#transfers.set(id, t);
    this.#sendOffer(t);
    this.#event(t, "offered");
    this.#armStall(t);
    return id;
  }

  /**
   * Accepts an offer waiting for the user (policy `ask`). False when there is no such offer.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * declare const id: string;
   * transfers.accept(id);
   * ```
   */
  accept(id: string): boolean {
    const t = this.#find(id);
    if (t === undefined || t.direction !== "receive" || t.state !== "asking") return false;
    void this.#openIncoming(t, undefined);
    return true;
  }

  /**
   * Declines an offer waiting for the user. False when there is no such offer.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * declare const id: string;
   * transfers.reject(id);
   * ```
   */
  reject(id: string): boolean {
    const t = this.#find(id);
    if (t === undefined || t.direction !== "receive" || t.state !== "asking") return false;
    this.#o.send(
      t.peer,
      this.#encode({ kind: "reject", id: t.id, reason: "declined" }),
      "normal",
    );
    this.#fail(t, "declined", false);
    return true;
  }

  /**
   * Cancels a transfer in either direction (a unique prefix of its ID will do); tells the peer.
   * A cancelled download's partial file is deleted. False when nothing matches or it has ended.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * transfers.cancel("3fa2");
   * ```
   */
  cancel(id: string, reason = "cancelled"): boolean {
    const t = this.#find(id);
    if (t === undefined || t.state === "done" || t.state === "failed") return false;
    this.#o.send(t.peer, this.#encode({ kind: "cancel", id: t.id, reason }), "normal");
    this.#fail(t, reason, true);
    return true;
  }

  /**
   * Every transfer, newest last.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * for (const t of transfers.list()) console.log(t.id, t.state, t.bytes, t.size);
   * ```
   */
  list(): TransferSummary[] {
    return [...this.#transfers.values()].map((t) => ({
      id: t.id,
      peer: t.peer,
      direction: t.direction as FileDirection,
      name: t.name,
      bytes: t.bytes,
      size: t.size,
      state: t.state,
      rate: t.rate,
    }));
  }

  /**
   * Whether any transfer is still running (for a clean exit).
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * if (transfers.active) console.log("transfers running");
   * ```
   */
  get active(): boolean {
    for (const t of this.#transfers.values()) {
      if (t.state !== "done" && t.state !== "failed") return true;
    }
    return false;
  }

  /**
   * Takes a file message (one starting with `0xFF`) from `peer`. Malformed messages and messages
   * about another peer's transfers are ignored.
   *
   * @example
   * ```ts
   * import { isFileMessage } from "../../shared/files/codec.ts";
   * declare const transfers: FileTransfers;
   * declare const peer: string;
   * declare const message: Uint8Array;
   * if (isFileMessage(message)) transfers.onMessage(peer, message);
   * ```
   */
  onMessage(peer: string, bytes: Uint8Array): void {
    if (this.#closed) return;
    let message: FileMessage;
    try {
      message = decodeFileMessage(bytes);
    } catch (error) {
      if (!(error instanceof FileMessageError)) throw error;
      this.#o.log?.(`file message from ${peer} dropped: ${error.message}`);
      return;
    }
    if (message.kind === "offer") {
      void this.#onOffer(peer, message);
      return;
    }
    const t = this.#transfers.get(message.id);
    if (t === undefined || t.peer !== peer) return;
    if (t.direction === "send") this.#onSenderMessage(t, message);
    else this.#onReceiverMessage(t, message);
  }

  /**
   * The peer's channel has room for bulk data again: sending transfers continue.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * declare const peer: string;
   * const onAcknowledged = () => transfers.roomAvailable(peer);
   * ```
   */
  roomAvailable(peer: string): void {
    for (const t of this.#transfers.values()) {
      if (t.peer === peer && t.direction === "send" && t.state === "sending") void this.#pump(t);
    }
  }

  /**
   * The peer's channel was reset (it failed, or the peer restarted and is back): what it held is
   * lost, so every sending transfer to it offers again and resumes where the receiver stands.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * declare const peer: string;
   * transfers.peerReset(peer);
   * ```
   */
  peerReset(peer: string): void {
    for (const t of this.#transfers.values()) {
      if (t.peer !== peer || t.direction !== "send") continue;
      if (t.state === "done" || t.state === "failed") continue;
      this.#reoffer(t);
    }
  }

  /**
   * Stops every timer and closes the files being sent (at exit). Transfers are not cancelled:
   * the partial downloads stay for a resume.
   *
   * @example
   * ```ts
   * declare const transfers: FileTransfers;
   * transfers.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    for (const t of this.#transfers.values()) {
      this.#o.runtime.clearTimer(t.timer);
      t.timer = undefined;
      if (t.state === "done" || t.state === "failed") continue;
      if (t.direction === "send") {
        t.epoch++;
        t.source.close();
      } else {
        t.queue = [];
        if (!t.writing) t.partial?.close();
      }
    }
  }

  // ---- sender ----

  #sendOffer(t: Outgoing): void {
    t.lastOfferAt = this.#o.runtime.now();
    this.#o.send(
      t.peer,
      this.#encode({
        kind: "offer",
        id: t.id,
        size: t.size,
        mtimeMs: t.mtimeMs,
        name: t.name,
      }),
      "normal",
    );
  }

  #reoffer(t: Outgoing): void {
    t.epoch++;
    t.state = "offering";
    t.pending = undefined;
    t.reading = false;
    t.endQueued = false;
    this.#sendOffer(t);
  }

  #onSenderMessage(t: Outgoing, message: FileMessage): void {
    if (t.state === "done" || t.state === "failed") return;
    const now = this.#o.runtime.now();
    switch (message.kind) {
      case "accept":
        if (message.offset > t.size) {
          this.cancel(t.id, "peer asked to resume beyond the end");
          return;
        }
        t.lastProgressAt = now;
        t.credit = Math.max(message.credit, message.offset);
        void this.#restartFrom(t, message.offset);
        return;
      case "credit":
        if (message.credit > t.credit) {
          t.credit = message.credit;
          t.lastProgressAt = now;
          if (t.state === "sending") void this.#pump(t);
        }
        return;
      case "reject":
        t.source.close();
        this.#fail(t, `declined by the peer${message.reason ? `: ${message.reason}` : ""}`, false);
        return;
      case "cancel":
        t.source.close();
        this.#fail(t, `cancelled by the peer${message.reason ? `: ${message.reason}` : ""}`, false);
        return;
      case "done": {
        if (t.state !== "finishing") return;
        const mine = t.hash.copy().digest("hex");
        t.source.close();
        if (message.sha256 !== mine) {
          this.#fail(t, "the peer saved a file with another SHA-256", false);
          return;
        }
        t.state = "done";
        t.bytes = t.size;
        this.#o.runtime.clearTimer(t.timer);
        this.#event(t, "sent", { sha256: mine });
        return;
      }
      default:
        return;
    }
  }

  /** Re-hashes the first `offset` bytes, then sends from there. */
  async #restartFrom(t: Outgoing, offset: number): Promise<void> {
    const epoch = ++t.epoch;
    t.state = "rehashing";
    t.pending = undefined;
    t.reading = false;
    t.endQueued = false;
    t.hash = createHash("sha256");
    const buffer = new Uint8Array(Math.min(1 << 20, Math.max(1, offset)));
    let at = 0;
    try {
      while (at < offset) {
        const n = await t.source.read(at, buffer.subarray(0, Math.min(buffer.length, offset - at)));
        if (epoch !== t.epoch) return;
        if (n <= 0) throw new Error("the file is shorter than when it was offered");
        t.hash.update(buffer.subarray(0, n));
        at += n;
      }
    } catch (error) {
      if (epoch === t.epoch) this.cancel(t.id, `cannot read the file: ${(error as Error).message}`);
      return;
    }
    t.next = offset;
    t.bytes = offset;
    t.state = "sending";
    await this.#pump(t);
  }

  async #pump(t: Outgoing): Promise<void> {
    while (t.state === "sending") {
      if (t.pending !== undefined) {
        if (!this.#o.send(t.peer, t.pending, "bulk")) return; // roomAvailable resumes
        t.pending = undefined;
        if (t.next >= t.size && t.endQueued) {
          t.state = "finishing";
          return;
        }
        this.#progress(t);
        continue;
      }
      if (t.next >= t.size) {
        // END goes as bulk too, so it follows the last chunk.
        t.endQueued = true;
        t.pending = this.#encode({
          kind: "end",
          id: t.id,
          size: t.size,
          sha256: t.hash.copy().digest("hex"),
        });
        continue;
      }
      if (t.next >= t.credit || t.reading) return;
      const length = Math.min(this.#o.chunkBytes, t.size - t.next, t.credit - t.next);
      const pool = this.#o.chunkPool;
      const room = this.#prefix.length + CHUNK_HEADER_BYTES + length;
      const buffer = pool !== undefined && pool.size >= room ? pool.take() : new Uint8Array(room);
      buffer.set(this.#prefix);
      const chunk = chunkInto(buffer.subarray(this.#prefix.length), t.id, t.next, length);
      const message = buffer.subarray(0, room);
      const epoch = t.epoch;
      t.reading = true;
      let got = 0;
      try {
        while (got < length) {
          const n = await t.source.read(t.next + got, chunk.subarray(CHUNK_HEADER_BYTES + got));
          if (n <= 0) break;
          got += n;
        }
      } catch (error) {
        if (epoch === t.epoch) {
          t.reading = false;
          this.cancel(t.id, `cannot read the file: ${(error as Error).message}`);
        }
        return;
      }
      if (epoch !== t.epoch) return;
      t.reading = false;
      if (got < length) {
        this.cancel(t.id, "the file shrank while it was being sent");
        return;
      }
      t.hash.update(chunk.subarray(CHUNK_HEADER_BYTES));
      t.next += length;
      t.bytes = t.next;
      t.pending = message;
    }
  }

  // ---- receiver ----

  async #onOffer(peer: string, offer: Extract<FileMessage, { kind: "offer" }>): Promise<void> {
    const known = this.#transfers.get(offer.id);
    if (known !== undefined) {
      if (known.peer !== peer || known.direction !== "receive") return;
      switch (known.state) {
        case "receiving":
        case "finishing":
          // The sender lost its channel: continue from what arrived.
          this.#sendAccept(known, known.expected);
          return;
        case "done":
          this.#o.send(
            peer,
            this.#encode({
              kind: "done",
              id: known.id,
              sha256: known.hash.copy().digest("hex"),
            }),
            "normal",
          );
          return;
        case "failed":
          if (!known.resumable) {
            this.#o.send(
              peer,
              this.#encode({ kind: "cancel", id: known.id, reason: "failed" }),
              "normal",
            );
            return;
          }
          this.#transfers.delete(known.id);
          break; // resume from the partial file on disk, below
        default:
          return; // asking or opening: nothing new
      }
    }
    // The same file from the same peer under a new ID: its sender restarted. A transfer still
    // alive here continues under the new ID from what arrived.
    for (const other of this.#transfers.values()) {
      if (
        other.direction !== "receive" || other.peer !== peer || other.name !== offer.name ||
        other.size !== offer.size || other.mtimeMs !== offer.mtimeMs
      ) continue;
      // "opening": its partial file is being made; the accept goes when it is open, under the
      // new ID (two transfers never share one partial file).
      if (
        other.state !== "receiving" && other.state !== "finishing" && other.state !== "asking" &&
        other.state !== "opening"
      ) continue;
      this.#transfers.delete(other.id);
      other.id = offer.id;
      if (other.partial !== undefined) other.partial.record.id = offer.id;
      this.#transfers.set(other.id, other);
      if (other.state === "receiving" || other.state === "finishing") {
        this.#sendAccept(other, other.expected);
      }
      return;
    }
    let fromPeer = 0;
    let incoming = 0;
    for (const other of this.#transfers.values()) {
      if (other.direction !== "receive" || other.state === "done" || other.state === "failed") {
        continue;
      }
      incoming++;
      if (other.peer === peer) fromPeer++;
    }
    if (fromPeer >= this.#o.maxIncomingPerPeer || incoming >= this.#o.maxIncoming) {
      this.#o.send(
        peer,
        this.#encode({ kind: "reject", id: offer.id, reason: "too many transfers at once" }),
        "normal",
      );
      return;
    }
    this.#prune();
    const now = this.#o.runtime.now();
    const t: Incoming = {
      direction: "receive",
      id: offer.id,
      peer,
      name: offer.name,
      size: offer.size,
      mtimeMs: offer.mtimeMs,
      bytes: 0,
      lastProgressAt: now,
      lastEventAt: -Infinity,
      lastEventBytes: 0,
      rate: 0,
      timer: undefined,
      state: "opening",
      partial: undefined,
      expected: 0,
      credit: 0,
      hash: createHash("sha256"),
      queue: [],
      writing: false,
      endSha: undefined,
      checkpointed: 0,
      lastCreditAt: now,
      lastCreditWritten: 0,
      resumable: false,
    };
    this.#transfers.set(t.id, t);
    let partial: PartialFile | undefined;
    try {
      partial = await this.#o.store.findPartial(
        peer,
        offer.id,
        offer.name,
        offer.size,
        offer.mtimeMs,
      );
    } catch (error) {
      this.#o.log?.(`looking for a partial download failed: ${(error as Error).message}`);
    }
    if (partial !== undefined) {
      // Accepted before (maybe before a restart): resume without asking again.
      await this.#openIncoming(t, partial);
      return;
    }
    const decision = this.#o.decide(peer, offer.name, offer.size);
    if (decision === "reject") {
      this.#o.send(
        peer,
        this.#encode({ kind: "reject", id: t.id, reason: "not accepted" }),
        "normal",
      );
      this.#fail(t, "not accepted (policy)", false);
      return;
    }
    if (decision === "ask") {
      t.state = "asking";
      this.#event(t, "offered");
      return;
    }
    this.#event(t, "offered");
    await this.#openIncoming(t, undefined);
  }

  async #openIncoming(t: Incoming, partial: PartialFile | undefined): Promise<void> {
    t.state = "opening";
    try {
      if (partial === undefined) {
        partial = await this.#o.store.create({
          peer: t.peer,
          id: t.id,
          name: t.name,
          size: t.size,
          mtimeMs: t.mtimeMs,
          offset: 0,
        });
      } else {
        partial.record.id = t.id;
        const offset = Math.min(partial.record.offset, t.size);
        await partial.truncate(offset);
        const buffer = new Uint8Array(Math.min(1 << 20, Math.max(1, offset)));
        let at = 0;
        while (at < offset) {
          const n = await partial.read(
            at,
            buffer.subarray(0, Math.min(buffer.length, offset - at)),
          );
          if (n <= 0) throw new Error("the partial file is shorter than its record");
          t.hash.update(buffer.subarray(0, n));
          at += n;
        }
        await partial.checkpoint(offset);
        t.expected = offset;
        t.bytes = offset;
        t.checkpointed = offset;
        t.lastCreditWritten = offset;
      }
    } catch (error) {
      const reason = `cannot write to the downloads folder: ${(error as Error).message}`;
      this.#o.send(t.peer, this.#encode({ kind: "cancel", id: t.id, reason }), "normal");
      this.#fail(t, reason, false);
      return;
    }
    if (this.#transfers.get(t.id) !== t || t.state !== "opening") {
      void partial.discard(); // cancelled meanwhile
      return;
    }
    partial.record.id = t.id; // taken over under a new ID while it opened
    t.partial = partial;
    t.state = "receiving";
    t.lastProgressAt = this.#o.runtime.now();
    this.#sendAccept(t, t.expected);
    this.#armStall(t);
    if (t.expected >= t.size && t.endSha !== undefined) void this.#finish(t);
  }

  #sendAccept(t: Incoming, offset: number): void {
    t.credit = Math.max(t.credit, t.bytes + this.#o.windowBytes);
    t.lastCreditAt = this.#o.runtime.now();
    this.#o.send(
      t.peer,
      this.#encode({ kind: "accept", id: t.id, offset, credit: t.credit }),
      "normal",
    );
  }

  #onReceiverMessage(t: Incoming, message: FileMessage): void {
    if (t.state === "done" || t.state === "failed") return;
    switch (message.kind) {
      case "chunk":
        this.#onChunk(t, message.offset, message.bytes);
        return;
      case "end":
        if (message.size !== t.size) {
          this.cancel(t.id, "the sender announced another size");
          return;
        }
        t.endSha = message.sha256;
        t.lastProgressAt = this.#o.runtime.now();
        if (t.bytes >= t.size && !t.writing && t.state === "receiving") void this.#finish(t);
        return;
      case "cancel":
        this.#fail(t, `cancelled by the peer${message.reason ? `: ${message.reason}` : ""}`, true);
        return;
      default:
        return;
    }
  }

  #onChunk(t: Incoming, offset: number, bytes: Uint8Array): void {
    if (t.state !== "receiving") return;
    if (offset > t.expected) {
      // A gap (data lost with a reset channel): ask for a resume from what we have.
      this.#sendAccept(t, t.expected);
      return;
    }
    let data = bytes;
    if (offset < t.expected) {
      const skip = t.expected - offset;
      if (skip >= bytes.length) return; // a repeat
      data = bytes.subarray(skip);
    }
    if (t.expected + data.length > t.size) {
      this.cancel(t.id, "the sender sent more than the announced size");
      return;
    }
    if (t.expected + data.length > t.credit) {
      this.cancel(t.id, "the sender ignored flow control");
      return;
    }
    t.hash.update(data);
    // Copied: `onMessage`'s bytes may be a view of a packet buffer the transport reuses.
    const pool = this.#o.chunkPool;
    const copy = pool !== undefined && pool.size >= data.length
      ? pool.take().subarray(0, data.length)
      : new Uint8Array(data.length);
    copy.set(data);
    t.queue.push({ offset: t.expected, bytes: copy });
    t.expected += data.length;
    t.lastProgressAt = this.#o.runtime.now();
    if (!t.writing) void this.#drain(t);
  }

  async #drain(t: Incoming): Promise<void> {
    t.writing = true;
    const partial = t.partial as PartialFile;
    try {
      while (t.queue.length > 0 && t.state === "receiving" && !this.#closed) {
        const { offset, bytes } = t.queue.shift() as { offset: number; bytes: Uint8Array };
        await partial.write(offset, bytes);
        this.#o.chunkPool?.release(bytes);
        if (this.#closed) {
          // At exit: record what is written, for a resume by the next run.
          await partial.checkpoint(offset + bytes.length).catch(() => {});
          partial.close();
          break;
        }
        if (t.state !== "receiving") break;
        t.bytes = offset + bytes.length;
        if (t.bytes - t.checkpointed >= this.#o.checkpointBytes) {
          await partial.checkpoint(t.bytes);
          t.checkpointed = t.bytes;
        }
        this.#maybeCredit(t);
        this.#progress(t);
      }
    } catch (error) {
      t.writing = false;
      if (t.state === "receiving") {
        t.resumable = true;
        const reason = `cannot write the file: ${(error as Error).message}`;
        this.#o.send(t.peer, this.#encode({ kind: "cancel", id: t.id, reason }), "normal");
        this.#fail(t, reason, false);
      }
      return;
    }
    t.writing = false;
    if (t.state === "receiving" && t.bytes >= t.size && t.endSha !== undefined) {
      await this.#finish(t);
    }
  }

  #maybeCredit(t: Incoming): void {
    const now = this.#o.runtime.now();
    const low = t.credit - t.bytes <= this.#o.windowBytes / 2;
    const due = now - t.lastCreditAt >= 1000 && t.bytes > t.lastCreditWritten;
    if (!low && !due) return;
    t.credit = Math.max(t.credit, t.bytes + this.#o.windowBytes);
    t.lastCreditAt = now;
    t.lastCreditWritten = t.bytes;
    this.#o.send(
      t.peer,
      this.#encode({ kind: "credit", id: t.id, credit: t.credit }),
      "normal",
    );
  }

  async #finish(t: Incoming): Promise<void> {
    t.state = "finishing";
    const digest = t.hash.copy().digest("hex");
    const partial = t.partial as PartialFile;
    if (digest !== t.endSha) {
      const reason = "SHA-256 mismatch: the file arrived damaged";
      this.#o.send(t.peer, this.#encode({ kind: "cancel", id: t.id, reason }), "normal");
      this.#fail(t, reason, true);
      return;
    }
    let path: string;
    try {
      await partial.checkpoint(t.size);
      path = await partial.finish();
    } catch (error) {
      const reason = `cannot save the file: ${(error as Error).message}`;
      this.#o.send(t.peer, this.#encode({ kind: "cancel", id: t.id, reason }), "normal");
      this.#fail(t, reason, false);
      return;
    }
    t.state = "done";
    t.bytes = t.size;
    this.#o.runtime.clearTimer(t.timer);
    this.#o.send(t.peer, this.#encode({ kind: "done", id: t.id, sha256: digest }), "normal");
    this.#event(t, "received", { path, sha256: digest });
  }

  // ---- common ----

  /** A file message with the transport's prefix in front. */
  #encode(message: FileMessage): Uint8Array {
    const bytes = encodeFileMessage(message);
    if (this.#prefix.length === 0) return bytes;
    const out = new Uint8Array(this.#prefix.length + bytes.length);
    out.set(this.#prefix);
    out.set(bytes, this.#prefix.length);
    return out;
  }

  #find(idOrPrefix: string): Transfer | undefined {
    const exact = this.#transfers.get(idOrPrefix);
    if (exact !== undefined) return exact;
    if (idOrPrefix.length < 4) return undefined;
    const matches = [...this.#transfers.values()].filter((t) => t.id.startsWith(idOrPrefix));
    return matches.length === 1 ? matches[0] : undefined;
  }

  #fail(t: Transfer, reason: string, discardPartial: boolean): void {
    if (t.state === "failed" || t.state === "done") return;
    t.state = "failed";
    this.#o.runtime.clearTimer(t.timer);
    t.timer = undefined;
    if (t.direction === "send") {
      t.epoch++;
      t.pending = undefined;
      t.source.close();
    } else {
      t.queue = [];
      if (discardPartial) {
        t.resumable = false;
        void t.partial?.discard().catch(() => {});
      } else if (t.partial !== undefined && t.bytes > t.checkpointed) {
        void t.partial.checkpoint(t.bytes).catch(() => {});
      }
    }
    this.#event(t, "failed", { reason });
  }

  #armStall(t: Transfer): void {
    this.#o.runtime.clearTimer(t.timer);
    t.timer = this.#o.runtime.setTimer(() => this.#onStallTimer(t), this.#o.stallMs);
  }

  #onStallTimer(t: Transfer): void {
    t.timer = undefined;
    if (t.state === "done" || t.state === "failed") return;
    const now = this.#o.runtime.now();
    const idle = now - t.lastProgressAt;
    if (idle >= this.#o.giveUpMs) {
      // Not told to the peer: its side keeps what it has (a receiver its partial file) so that
      // the same file offered later resumes.
      if (t.direction === "receive") t.resumable = true;
      this.#fail(t, `no progress for ${Math.round(idle / 1000)} s`, false);
      return;
    }
    if (
      t.direction === "send" && idle >= this.#o.stallMs && now - t.lastOfferAt >= this.#o.stallMs
    ) {
      this.#o.log?.(`transfer ${t.id} stalled for ${Math.round(idle)} ms: offering again`);
      this.#reoffer(t);
    }
    this.#armStall(t);
  }

  #progress(t: Transfer): void {
    const now = this.#o.runtime.now();
    t.lastProgressAt = now;
    if (now - t.lastEventAt < this.#o.progressIntervalMs) return;
    const elapsed = (now - t.lastEventAt) / 1000;
    if (Number.isFinite(elapsed) && elapsed > 0) {
      const instant = (t.bytes - t.lastEventBytes) / elapsed;
      t.rate = t.rate === 0 ? instant : 0.5 * t.rate + 0.5 * instant;
    }
    t.lastEventAt = now;
    t.lastEventBytes = t.bytes;
    const etaSeconds = t.rate > 0 ? Math.max(0, (t.size - t.bytes) / t.rate) : undefined;
    this.#event(t, "progress", {
      rate: Math.round(t.rate),
      ...(etaSeconds === undefined ? {} : { etaSeconds: Math.round(etaSeconds * 10) / 10 }),
    });
  }

  /** Forgets the oldest finished transfers beyond `keepFinished`. */
  #prune(): void {
    let finished = 0;
    for (const t of this.#transfers.values()) {
      if (t.state === "done" || t.state === "failed") finished++;
    }
    for (const [id, t] of this.#transfers) {
      if (finished <= this.#o.keepFinished) break;
      if (t.state !== "done" && t.state !== "failed") continue;
      if (t.direction === "receive" && t.resumable) continue; // a later offer may resume it
      this.#transfers.delete(id);
      finished--;
    }
  }

  #event(t: Transfer, state: FileEvent["state"], extra: Partial<FileEvent> = {}): void {
    this.#o.emit({
      type: "file",
      id: t.id,
      peer: t.peer,
      direction: t.direction,
      name: t.name,
      bytes: t.bytes,
      size: t.size,
      state,
      ...extra,
    });
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
