/**
 * Storage of the client's identity key: a small JSON file written with owner-only permissions.
 *
 * File format: `{"version": 1, "privateKey": "<base64 PKCS#8 Ed25519 key>"}`.
 *
 * @module
 */
import { Identity } from "../shared/identity/mod.ts";

/**
 * The typed error for an identity file that cannot be read, parsed or written.
 *
 * @example
 * ```ts
 * const error = new IdentityStoreError("/tmp/id.json", "not valid JSON");
 * console.log(error.message); // "/tmp/id.json: not valid JSON"
 * ```
 */
export class IdentityStoreError extends Error {
  /** The identity file at fault. */
  readonly path: string;

  /**
   * Creates an identity store error.
   *
   * @example
   * ```ts
   * throw new IdentityStoreError("/tmp/id.json", "not valid JSON");
   * ```
   */
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "IdentityStoreError";
    this.path = path;
  }
}

/** Where the environment says per-user configuration lives. */
export interface ConfigEnvironment {
  /** `$XDG_CONFIG_HOME`, if set. */
  xdgConfigHome?: string;
  /** The user's home directory, if known. */
  home?: string;
  /** `%APPDATA%` on Windows, if set. */
  appData?: string;
}

/**
 * The default identity file: `$XDG_CONFIG_HOME/p2p/identity.json`, else
 * `~/.config/p2p/identity.json` (`%APPDATA%\p2p\identity.json` on Windows when `APPDATA` is set).
 * Returns undefined when no location is known.
 *
 * @example
 * ```ts
 * defaultIdentityPath({ home: "/home/ann" }); // "/home/ann/.config/p2p/identity.json"
 * ```
 */
export function defaultIdentityPath(env: ConfigEnvironment): string | undefined {
  if (env.xdgConfigHome) return `${env.xdgConfigHome}/p2p/identity.json`;
  if (env.appData) return `${env.appData}\\p2p\\identity.json`;
  if (env.home) return `${env.home}/.config/p2p/identity.json`;
  return undefined;
}

/**
 * Reads the identity stored at `path`, or creates and stores a new one when the file does not
 * exist (directories created as needed, the file mode 0600). A file that group or others may
 * read or write is refused (POSIX), as OpenSSH refuses such private keys.
 *
 * @throws {IdentityStoreError} when the file exists but is unreadable, too open or invalid, or
 * cannot be written.
 *
 * @example
 * ```ts
 * const me = await loadOrCreateIdentity("/tmp/p2p-example-identity.json");
 * console.log(me.id);
 * ```
 */
export async function loadOrCreateIdentity(path: string): Promise<Identity> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw readError(path, error as Error);
  }
  if (text !== undefined) {
    await checkPrivate(path);
    return await parseIdentityFile(text, path);
  }
  const identity = await Identity.generate();
  await saveIdentity(identity, path);
  return identity;
}

function readError(path: string, error: Error): IdentityStoreError {
  if (error instanceof Deno.errors.NotCapable) {
    // Deno guards some system paths (/proc, /dev, /etc) even with --allow-read.
    return new IdentityStoreError(
      path,
      "cannot be used for an identity (a protected system path): choose a file in your own directory with --identity PATH",
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new IdentityStoreError(
      path,
      "permission denied: choose a file you own with --identity PATH, or use --ephemeral",
    );
  }
  return new IdentityStoreError(
    path,
    `cannot read (${error.message}): choose another file with --identity PATH, or use --ephemeral`,
  );
}

/**
 * Refuses a private key that others can read or write, as OpenSSH does ("UNPROTECTED PRIVATE KEY
 * FILE"): any group or other permission bit. POSIX only (Windows has no such modes).
 */
async function checkPrivate(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const mode = (await Deno.stat(path)).mode;
  if (mode === null || (mode & 0o077) === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  throw new IdentityStoreError(
    path,
    `permissions ${octal} are too open (others may read the private key): run "chmod 600 ${path}"`,
  );
}

async function parseIdentityFile(text: string, path: string): Promise<Identity> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new IdentityStoreError(path, "not valid JSON");
  }
  const record = value as { version?: unknown; privateKey?: unknown } | null;
  if (typeof record !== "object" || record === null || record.version !== 1) {
    throw new IdentityStoreError(path, 'expected {"version": 1, "privateKey": "..."}');
  }
  if (typeof record.privateKey !== "string") {
    throw new IdentityStoreError(path, "privateKey: expected a base64 string");
  }
  try {
    return await Identity.fromPkcs8(Uint8Array.fromBase64(record.privateKey));
  } catch {
    throw new IdentityStoreError(path, "privateKey: not a PKCS#8 Ed25519 private key");
  }
}

/**
 * Writes `identity` to `path` with mode 0600, creating parent directories (mode 0700).
 *
 * @example
 * ```ts
 * import { Identity } from "../shared/identity/mod.ts";
 * await saveIdentity(await Identity.generate(), "/tmp/p2p-example-identity.json");
 * ```
 */
export async function saveIdentity(identity: Identity, path: string): Promise<void> {
  const json = JSON.stringify({
    version: 1,
    privateKey: (await identity.exportPrivateKey()).toBase64(),
  });
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  try {
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(path, json + "\n", { mode: 0o600, createNew: true });
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw readError(path, error);
    }
    throw new IdentityStoreError(
      path,
      `cannot write (${
        (error as Error).message
      }): choose another file with --identity PATH, or use --ephemeral`,
    );
  }
}
