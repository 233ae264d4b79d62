/**
 * In-memory files for tests of the file transfer logic: a source whose bytes are computed from
 * their offset (a 1 GiB file costs no memory), and a downloads store whose "disk" outlives the
 * {@linkcode FileTransfers} using it (a restart keeps the partial files and their records).
 *
 * @module
 */
import { freeName, safeBaseName } from "../shared/files/safe_name.ts";
import type {
  DownloadStore,
  FileSource,
  PartialFile,
  PartialRecord,
} from "../p2p_client/files/types.ts";

/** The byte at `offset` of pattern file `seed`. */
export function patternByte(seed: number, offset: number): number {
  return ((offset * 2654435761 + seed * 40503) >>> 13) & 0xff;
}

/** Fills `into` with the pattern bytes from `offset`. */
export function fillPattern(seed: number, offset: number, into: Uint8Array): void {
  for (let i = 0; i < into.length; i++) into[i] = patternByte(seed, offset + i);
}

/**
 * A source of `size` pattern bytes.
 *
 * @example
 * ```ts
 * const source = patternSource("a.bin", 1 << 20, 7);
 * ```
 */
export function patternSource(
  name: string,
  size: number,
  seed: number,
  mtimeMs = 1_700_000_000_000,
): FileSource & { reads: number; closed: boolean } {
  const source = {
    name,
    size,
    mtimeMs,
    reads: 0,
    closed: false,
    read(offset: number, into: Uint8Array): Promise<number> {
      source.reads++;
      const n = Math.max(0, Math.min(into.length, size - offset));
      fillPattern(seed, offset, into.subarray(0, n));
      return Promise.resolve(n);
    },
    close() {
      source.closed = true;
    },
  };
  return source;
}

interface Stored {
  record: PartialRecord;
  chunks: Uint8Array[];
  length: number;
  /** Bytes at or beyond this were written but not flushed (lost by a crash). */
  flushed: number;
}

/** A downloads folder in memory: partial files with their records, and finished files. */
export class MemoryDownloadStore implements DownloadStore {
  /** Finished files by name. */
  readonly files = new Map<string, Uint8Array>();
  /** Partial downloads by peer and ID. */
  readonly partials = new Map<string, Stored>();
  /** Writes made to partial files. */
  writes = 0;

  /**
   * Forgets what was written and not flushed, as a crash does.
   *
   * @example
   * ```ts
   * store.crash();
   * ```
   */
  crash(): void {
    for (const stored of this.partials.values()) {
      const data = join(stored.chunks, stored.length).subarray(0, stored.flushed);
      stored.chunks = [data.slice()];
      stored.length = stored.flushed;
    }
  }

  findPartial(
    peer: string,
    id: string,
    name: string,
    size: number,
    mtimeMs: number,
  ): Promise<PartialFile | undefined> {
    for (const [key, stored] of this.partials) {
      const r = stored.record;
      if (r.peer !== peer) continue;
      if (r.id === id || (r.name === name && r.size === size && r.mtimeMs === mtimeMs)) {
        return Promise.resolve(this.#open(key, stored));
      }
    }
    return Promise.resolve(undefined);
  }

  create(record: PartialRecord): Promise<PartialFile> {
    const key = `${record.peer}/${record.id}`;
    const stored: Stored = { record: { ...record }, chunks: [], length: 0, flushed: 0 };
    this.partials.set(key, stored);
    return Promise.resolve(this.#open(key, stored));
  }

  #open(key: string, stored: Stored): PartialFile {
    const files = this.files;
    const partials = this.partials;
    const countWrite = () => this.writes++;
    return {
      record: stored.record,
      write(offset: number, bytes: Uint8Array): Promise<void> {
        if (offset !== stored.length) {
          return Promise.reject(new Error(`write at ${offset}, file length ${stored.length}`));
        }
        stored.chunks.push(bytes.slice());
        stored.length += bytes.length;
        countWrite();
        return Promise.resolve();
      },
      checkpoint(offset: number): Promise<void> {
        stored.flushed = stored.length;
        stored.record.offset = Math.min(offset, stored.length);
        return Promise.resolve();
      },
      truncate(offset: number): Promise<void> {
        const data = join(stored.chunks, stored.length).subarray(0, offset);
        stored.chunks = [data.slice()];
        stored.length = data.length;
        return Promise.resolve();
      },
      read(offset: number, into: Uint8Array): Promise<number> {
        const data = join(stored.chunks, stored.length);
        stored.chunks = [data];
        const n = Math.max(0, Math.min(into.length, data.length - offset));
        into.set(data.subarray(offset, offset + n));
        return Promise.resolve(n);
      },
      finish(): Promise<string> {
        const name = freeName(safeBaseName(stored.record.name), (n) => files.has(n));
        files.set(name, join(stored.chunks, stored.length));
        partials.delete(key);
        return Promise.resolve(`/downloads/${name}`);
      },
      discard(): Promise<void> {
        partials.delete(key);
        return Promise.resolve();
      },
      close(): void {},
    };
  }
}

function join(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1 && chunks[0].length === length) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
