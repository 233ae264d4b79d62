/**
 * One client per identity. Two clients registering with the same key evict each other at the
 * server (the newer session replaces the older, which then shows a prompt that no longer works),
 * so the second one is refused before it registers.
 *
 * The lock is an exclusive advisory lock (`flock`) on a file beside the identity file
 * (`identity.json.lock`) that holds the owner's PID. The operating system releases the lock when
 * its holder exits or crashes, so a lock file left behind by a dead process is stale by
 * construction: the next client takes it over (liveness is the kernel's, not a guess from the
 * PID). Where the file system has no advisory locks, the lock falls back to an exclusive create of
 * the file, and a file whose PID is no longer alive (`/proc/PID` gone, on Linux) is taken over.
 *
 * @module
 */

/**
 * Raised when another live process holds the identity.
 *
 * @example
 * ```ts
 * const error = new IdentityLockedError("/home/ann/.config/p2p/identity.json", 4242);
 * console.log(error.message.includes("--ephemeral")); // true
 * ```
 */
export class IdentityLockedError extends Error {
  /** The identity file. */
  readonly path: string;
  /** The holder's PID, when the lock file names one. */
  readonly pid: number | undefined;

  /**
   * Creates the error; the message says what to do.
   *
   * @example
   * ```ts
   * throw new IdentityLockedError("/tmp/id.json", undefined);
   * ```
   */
  constructor(path: string, pid: number | undefined) {
    super(
      `identity ${path} is in use by another client${pid ? ` (PID ${pid})` : ""}: ` +
        "run this one with --ephemeral (a throw-away ID) or --identity PATH (a second identity)",
    );
    this.name = "IdentityLockedError";
    this.path = path;
    this.pid = pid;
  }
}

/** A held identity lock; release it at exit (the OS also releases it when the process dies). */
export interface IdentityLock {
  /** The lock file. */
  readonly lockPath: string;
  /** Releases the lock (the OS does it too when the process ends). */
  release(): void;
}

/** What {@linkcode acquireIdentityLock} needs from the system (injectable for tests). */
export interface LockSystem {
  /** This process's PID. */
  pid: number;
  /** Whether a process with this PID is alive (for the fallback without advisory locks). */
  isAlive(pid: number): boolean;
  /** False to use the fallback (exclusive create + PID liveness) even where `flock` works. */
  advisoryLocks?: boolean;
}

/**
 * The running process, with liveness from `/proc` (Linux); elsewhere every PID counts as alive,
 * so the fallback never takes over a lock it cannot prove stale.
 *
 * @example
 * ```ts
 * systemLockSystem().isAlive(Deno.pid); // true
 * ```
 */
export function systemLockSystem(): LockSystem {
  return {
    pid: Deno.pid,
    isAlive(pid: number): boolean {
      if (Deno.build.os !== "linux") return true;
      try {
        Deno.statSync(`/proc/${pid}`);
        return true;
      } catch (error) {
        return !(error instanceof Deno.errors.NotFound);
      }
    },
  };
}

function readPid(path: string): number | undefined {
  try {
    const text = Deno.readTextFileSync(path).trim();
    const match = /^([0-9]{1,10})\b/.exec(text);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of the identity file at `identityPath` (the lock file is `identityPath + ".lock"`).
 *
 * @throws {IdentityLockedError} when another live client holds it.
 *
 * @example
 * ```ts
 * const lock = acquireIdentityLock("/tmp/p2p-example-identity.json");
 * try {
 *   // ... run the client ...
 * } finally {
 *   lock.release();
 * }
 * ```
 */
export function acquireIdentityLock(
  identityPath: string,
  system: LockSystem = systemLockSystem(),
): IdentityLock {
  const lockPath = `${identityPath}.lock`;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    throw new Error(
      `cannot create the lock file ${lockPath} (${(error as Error).message}): ` +
        "check the directory's permissions, or use --ephemeral",
    );
  }
  if (system.advisoryLocks === false) {
    file.close();
    return acquireByCreate(identityPath, lockPath, system);
  }
  let locked: boolean;
  try {
    locked = file.tryLockSync(true);
  } catch {
    file.close();
    return acquireByCreate(identityPath, lockPath, system);
  }
  if (!locked) {
    file.close();
    throw new IdentityLockedError(identityPath, readPid(lockPath));
  }
  // Ours now: a PID left in the file by a process that died is overwritten.
  file.truncateSync(0);
  file.writeSync(new TextEncoder().encode(`${system.pid}\n`));
  let released = false;
  return {
    lockPath,
    release() {
      if (released) return;
      released = true;
      // The file stays (empty): removing it could let a process that opened it just before
      // lock an unlinked file while a third creates a new one.
      try {
        file.truncateSync(0);
      } catch {
        // nothing to clear
      }
      try {
        file.close();
      } catch {
        // closed
      }
    },
  };
}

/** The fallback without advisory locks: exclusive create, stale when the PID is dead. */
function acquireByCreate(identityPath: string, lockPath: string, system: LockSystem): IdentityLock {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      Deno.writeTextFileSync(lockPath, `${system.pid}\n`, { createNew: true, mode: 0o600 });
      return {
        lockPath,
        release() {
          if (readPid(lockPath) !== system.pid) return;
          try {
            Deno.removeSync(lockPath);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      const pid = readPid(lockPath);
      if (pid !== undefined && pid !== system.pid && system.isAlive(pid)) {
        throw new IdentityLockedError(identityPath, pid);
      }
      // Stale (its process is gone) or unreadable: take it over.
      try {
        Deno.removeSync(lockPath);
      } catch {
        // raced with another remover
      }
    }
  }
  throw new IdentityLockedError(identityPath, readPid(lockPath));
}
