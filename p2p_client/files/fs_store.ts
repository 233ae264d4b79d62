/**
 * The downloads folder on disk, and files to send: Deno's file system behind the interfaces of
 * `types.ts`.
 *
 * A download in progress is two hidden files named by its transfer ID only (hex, so nothing the
 * sender chose reaches a path): `.p2p-partial-<id>` (the data) and `.p2p-partial-<id>.json` (its
 * record: peer, ID, offered name, size, modification time, and the offset flushed to disk, written
 * to a temporary file and renamed, after `fdatasync` of the data). A complete file gets the
 * sender's name made safe (`shared/files/safe_name.ts`) and is hard-linked to it, which fails
 * rather than replaces when the name exists, so it takes `name (1).ext` and so on: an existing
 * file is never overwritten, and nothing is ever written outside the folder.
 *
 * @module
 */
import { basename, join, resolve, sep } from "node:path";
import { freeName, safeBaseName } from "../../shared/files/safe_name.ts";
import type { DownloadStore, FileSource, PartialFile, PartialRecord } from "./types.ts";

const PARTIAL_PREFIX = ".p2p-partial-";
const RECORD_SUFFIX = ".json";
const MAX_RECORD_BYTES = 4096;
let tempCounter = 0;

/**
 * The default downloads folder: `Downloads/p2p` in the user's home (`HOME`, or `USERPROFILE` on
 * Windows); `undefined` when neither is set.
 *
 * @example
 * ```ts
 * const dir = defaultDownloadsDir((name) => Deno.env.get(name));
 * ```
 */
export function defaultDownloadsDir(env: (name: string) => string | undefined): string | undefined {
  const home = env("HOME") ?? env("USERPROFILE");
  return home ? join(home, "Downloads", "p2p") : undefined;
}

/**
 * Opens a file to send. Throws an `Error` with a clear message for a missing file, a directory or
 * anything that is not a regular file.
 *
 * @example
 * ```ts
 * const source = await openFileSource("/tmp/report.pdf");
 * console.log(source.name, source.size);
 * ```
 */
export async function openFileSource(path: string): Promise<FileSource> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`no such file: ${path}`);
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  if (!info.isFile) throw new Error(`not a regular file: ${path}`);
  const file = await Deno.open(path, { read: true });
  let position = -1;
  const name = basename(resolve(path)) || "file";
  return {
    name,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
    // deno-lint-ignore require-await
    async read(offset: number, into: Uint8Array): Promise<number> {
      // Synchronous (a page-cache copy): Deno's asynchronous read goes through a blocking-pool
      // thread and a native buffer per call, which left the sender's RSS 10–20 MiB higher.
      if (position !== offset) {
        file.seekSync(offset, Deno.SeekMode.Start);
        position = offset;
      }
      const n = file.readSync(into);
      if (n === null) return 0;
      position += n;
      return n;
    },
    close() {
      try {
        file.close();
      } catch {
        // already closed
      }
    },
  };
}

function parseRecord(text: string): PartialRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const u53 = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (
    typeof r.peer !== "string" || typeof r.id !== "string" || !/^[0-9a-f]{32}$/.test(r.id) ||
    typeof r.name !== "string" || !u53(r.size) || !u53(r.mtimeMs) || !u53(r.offset)
  ) return undefined;
  return {
    peer: r.peer,
    id: r.id,
    name: r.name,
    size: r.size as number,
    mtimeMs: r.mtimeMs as number,
    offset: Math.min(r.offset as number, r.size as number),
  };
}

/**
 * The downloads folder `dir` (made, with its parents, at the first download).
 *
 * @example
 * ```ts
 * const store = new FsDownloadStore("/home/me/Downloads/p2p");
 * ```
 */
export class FsDownloadStore implements DownloadStore {
  /** The folder, as an absolute path. */
  readonly dir: string;

  /**
   * @example
   * ```ts
   * const store = new FsDownloadStore("downloads");
   * ```
   */
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  async findPartial(
    peer: string,
    id: string,
    name: string,
    size: number,
    mtimeMs: number,
  ): Promise<PartialFile | undefined> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    let byName: { base: string; record: PartialRecord } | undefined;
    for (const entry of entries) {
      const match = /^\.p2p-partial-([0-9a-f]{32})\.json$/.exec(entry.name);
      if (!entry.isFile || match === null) continue;
      const base = join(this.dir, `${PARTIAL_PREFIX}${match[1]}`);
      let text: string;
      try {
        const info = await Deno.stat(base + RECORD_SUFFIX);
        if (info.size > MAX_RECORD_BYTES) continue;
        text = await Deno.readTextFile(base + RECORD_SUFFIX);
        await Deno.stat(base);
      } catch {
        continue;
      }
      const record = parseRecord(text);
      if (record === undefined || record.peer !== peer) continue;
      if (record.id === id) return await this.#open(base, record, false);
      if (record.name === name && record.size === size && record.mtimeMs === mtimeMs) {
        byName ??= { base, record };
      }
    }
    return byName === undefined ? undefined : await this.#open(byName.base, byName.record, false);
  }

  async create(record: PartialRecord): Promise<PartialFile> {
    if (!/^[0-9a-f]{32}$/.test(record.id)) throw new Error("bad transfer ID");
    await Deno.mkdir(this.dir, { recursive: true });
    const base = join(this.dir, `${PARTIAL_PREFIX}${record.id}`);
    return await this.#open(base, { ...record, offset: 0 }, true);
  }

  async #open(base: string, record: PartialRecord, create: boolean): Promise<PartialFile> {
    const file = await Deno.open(base, {
      read: true,
      write: true,
      create,
      createNew: create,
    });
    const dir = this.dir;
    let closed = false;
    const close = () => {
      if (!closed) {
        closed = true;
        file.close();
      }
    };
    let gone = false; // finished or discarded: no record may come back
    const saveRecord = async () => {
      if (gone) return;
      const temp = `${base}${RECORD_SUFFIX}.${++tempCounter}.tmp`;
      await Deno.writeTextFile(temp, JSON.stringify(record));
      await Deno.rename(temp, base + RECORD_SUFFIX);
    };
    if (create) await saveRecord();
    return {
      record,
      // deno-lint-ignore require-await
      async write(offset: number, bytes: Uint8Array): Promise<void> {
        // Synchronous (a page-cache copy; `checkpoint` syncs every few MiB so dirty pages stay
        // few): the asynchronous write copies each chunk into a native buffer on a blocking-pool
        // thread, which kept the receiver's RSS 10–20 MiB higher.
        file.seekSync(offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      },
      async checkpoint(offset: number): Promise<void> {
        if (gone || closed) return;
        await file.syncData();
        record.offset = offset;
        await saveRecord();
      },
      async truncate(offset: number): Promise<void> {
        await file.truncate(offset);
      },
      async read(offset: number, into: Uint8Array): Promise<number> {
        await file.seek(offset, Deno.SeekMode.Start);
        return (await file.read(into)) ?? 0;
      },
      async finish(): Promise<string> {
        await file.syncData();
        close();
        gone = true;
        const safe = safeBaseName(record.name);
        for (let attempt = 0; attempt < 100; attempt++) {
          const name = freeName(safe, (candidate) => {
            try {
              Deno.lstatSync(join(dir, candidate));
              return true;
            } catch {
              return false;
            }
          });
          const target = join(dir, name);
          if (!target.startsWith(dir + sep)) throw new Error(`unsafe name ${name}`);
          try {
            await Deno.link(base, target); // fails if the name was taken meanwhile
          } catch (error) {
            if (error instanceof Deno.errors.AlreadyExists) continue;
            // No hard links here (some file systems): claim the name, then move onto it.
            try {
              (await Deno.open(target, { write: true, createNew: true })).close();
            } catch (claimError) {
              if (claimError instanceof Deno.errors.AlreadyExists) continue;
              throw claimError;
            }
            await Deno.rename(base, target);
          }
          await Deno.remove(base).catch(() => {});
          await Deno.remove(base + RECORD_SUFFIX).catch(() => {});
          return target;
        }
        throw new Error(`no free name for ${safe}`);
      },
      async discard(): Promise<void> {
        close();
        gone = true;
        await Deno.remove(base).catch(() => {});
        await Deno.remove(base + RECORD_SUFFIX).catch(() => {});
      },
      close,
    };
  }
}
