/**
 * What the file transfer logic (`transfers.ts`) needs from the world, as interfaces: a file to
 * read, a downloads folder that keeps partial files and their state across restarts, and the
 * events it reports. `fs_store.ts` implements them with Deno's file system; tests use the
 * in-memory ones of `testing/memory_files.ts`.
 *
 * @module
 */

/** A file being sent: read sequentially, in chunks. */
export interface FileSource {
  /** The name offered (the last path component). */
  readonly name: string;
  /** Size in bytes (as when opened). */
  readonly size: number;
  /** Last modification, ms since the epoch (identifies the same file again after a restart). */
  readonly mtimeMs: number;
  /** Reads up to `into.length` bytes at `offset`; resolves with the count (0 at the end). */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** Releases the file. */
  close(): void;
}

/** What the receiver remembers of a partial download (its sidecar). */
export interface PartialRecord {
  /** The sending peer. */
  peer: string;
  /** Transfer ID (hex). */
  id: string;
  /** The name the sender offered (as given; the saved name is made safe). */
  name: string;
  /** Announced size. */
  size: number;
  /** Announced modification time. */
  mtimeMs: number;
  /** Bytes written and flushed to disk: a resume starts here. */
  offset: number;
}

/** A partial download on disk. */
export interface PartialFile {
  /** Its record (offset as last saved). */
  readonly record: PartialRecord;
  /** Writes `bytes` at `offset` (the caller writes sequentially, one write at a time). */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Flushes written data to disk, then records `offset` as the resume point. */
  checkpoint(offset: number): Promise<void>;
  /** Drops bytes at and after `offset` (a resume from an earlier point). */
  truncate(offset: number): Promise<void>;
  /** Reads back up to `into.length` bytes at `offset` (to re-hash the prefix after a restart). */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** Moves the complete file to its final, never-overwriting name; resolves with its path. */
  finish(): Promise<string>;
  /** Deletes the partial file and its sidecar. */
  discard(): Promise<void>;
  /** Closes the file, keeping it and its sidecar (at exit). */
  close(): void;
}

/** The downloads folder. */
export interface DownloadStore {
  /**
   * A partial download of `peer` to resume: the one with transfer `id`, else one with the same
   * name, size and modification time (the sender restarted and offers the file again).
   */
  findPartial(
    peer: string,
    id: string,
    name: string,
    size: number,
    mtimeMs: number,
  ): Promise<PartialFile | undefined>;
  /** Starts a new partial download. */
  create(record: PartialRecord): Promise<PartialFile>;
}

/** Which way a transfer goes, seen from this client. */
export type FileDirection = "send" | "receive";

/** States of a transfer as reported (the `state` of a `file` event). */
export type FileEventState = "offered" | "progress" | "sent" | "received" | "failed";

/** The `file` event of `--json` and the prompt. */
export interface FileEvent {
  /** Always `"file"`. */
  type: "file";
  /** Transfer ID (32 hex digits). */
  id: string;
  /** The other peer. */
  peer: string;
  /** `send` or `receive`. */
  direction: FileDirection;
  /** The file name (the sender's name on both sides). */
  name: string;
  /** Bytes transferred so far (sent and acknowledged by credit, or written). */
  bytes: number;
  /** File size. */
  size: number;
  /** What happened. */
  state: FileEventState;
  /** `progress`: bytes per second over the last seconds. */
  rate?: number;
  /** `progress`: seconds left at that rate. */
  etaSeconds?: number;
  /** `received`: where the file was saved. */
  path?: string;
  /** `received` and `sent`: SHA-256 of the file (hex). */
  sha256?: string;
  /** `failed`: why. */
  reason?: string;
}

/** A transfer as `files` lists it. */
export interface TransferSummary {
  /** Transfer ID. */
  id: string;
  /** The other peer. */
  peer: string;
  /** `send` or `receive`. */
  direction: FileDirection;
  /** File name. */
  name: string;
  /** Bytes so far. */
  bytes: number;
  /** Size. */
  size: number;
  /** Internal state: `offering`, `waiting-accept`, `sending`, `receiving`, `paused`, `done`, `failed`. */
  state: string;
  /** Bytes per second recently. */
  rate: number;
}
