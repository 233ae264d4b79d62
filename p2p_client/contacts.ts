/**
 * The contact list: peer IDs the user named (`name <id> <name>`), kept beside the identity file in
 * `contacts.json`, so names and known peers survive restarts. It is also the list the consent
 * policy `--accept contacts` admits: {@linkcode ContactBook.has} is that predicate, and only
 * explicit user action (`name`) adds an entry — seeing a peer never does.
 *
 * File format (version 1), written atomically (temporary file + rename, mode 0600):
 *
 * ```json
 * {"version": 1, "contacts": {"<40 hex digits>": {"name": "alice", "lastSeen": 1764500000000}}}
 * ```
 *
 * `lastSeen` (ms since the epoch, optional) is when the peer was last connected. Bounds: at most
 * {@linkcode MAX_CONTACTS} entries and {@linkcode MAX_CONTACTS_FILE_BYTES} bytes; names are 1 to
 * {@linkcode MAX_NAME_LENGTH} letters, digits, `_`, `.` or `-`, starting with a letter, unique
 * regardless of case, and never 40 hex digits (so a name can never be mistaken for an ID).
 *
 * Name resolution ({@linkcode resolvePeer}): a full ID as is; else an exact name (any case); else
 * the one ID or name that starts with the text; several matches are an error listing them.
 *
 * @module
 */

/** At most this many contacts. */
export const MAX_CONTACTS = 1000;
/** The contacts file is refused above this size. */
export const MAX_CONTACTS_FILE_BYTES = 256 * 1024;
/** Longest name, in characters. */
export const MAX_NAME_LENGTH = 32;

const ID_PATTERN = /^[0-9a-f]{40}$/;
const NAME_PATTERN = /^\p{L}[\p{L}\p{N}_.\-]*$/u;

/** One contact. */
export interface Contact {
  /** The peer ID (40 lowercase hex digits). */
  id: string;
  /** The user's name for it. */
  name: string;
  /** When it was last connected (ms since the epoch), if ever. */
  lastSeen?: number;
}

/**
 * A contacts file that cannot be read or is invalid; the message says what to do.
 *
 * @example
 * ```ts
 * console.log(new ContactsError("/tmp/contacts.json", "not valid JSON").message);
 * ```
 */
export class ContactsError extends Error {
  /**
   * Creates the error.
   *
   * @example
   * ```ts
   * throw new ContactsError("/tmp/contacts.json", "not valid JSON");
   * ```
   */
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "ContactsError";
  }
}

/**
 * Checks a name; returns an error text, or undefined when valid.
 *
 * @example
 * ```ts
 * validateName("alice"); // undefined
 * validateName("9lives"); // "a name starts with a letter ..."
 * ```
 */
export function validateName(name: string): string | undefined {
  if (ID_PATTERN.test(name.toLowerCase())) return "a name cannot look like a peer ID";
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    return `a name has 1 to ${MAX_NAME_LENGTH} characters`;
  }
  if (!NAME_PATTERN.test(name)) {
    return "a name starts with a letter and holds only letters, digits, _ . -";
  }
  return undefined;
}

/** The outcome of {@linkcode resolvePeer}. */
export type ResolveResult =
  | { ok: true; id: string }
  | { ok: false; error: string; candidates: string[] };

/**
 * Resolves what the user typed for a peer: a full ID, a name (any case), or a unique prefix of a
 * known ID or a name. An ambiguous prefix lists its candidates.
 *
 * @example
 * ```ts
 * const names = new Map([["ab".repeat(20), "alice"]]);
 * resolvePeer("ali", ["ab".repeat(20)], names); // { ok: true, id: "abab…" }
 * ```
 */
export function resolvePeer(
  text: string,
  knownIds: Iterable<string>,
  names: ReadonlyMap<string, string>,
): ResolveResult {
  const lower = text.toLowerCase();
  if (ID_PATTERN.test(lower)) return { ok: true, id: lower };
  const ids = new Set(knownIds);
  for (const id of names.keys()) ids.add(id);
  for (const [id, name] of names) {
    if (name.toLowerCase() === lower) return { ok: true, id };
  }
  const matches = new Set<string>();
  if (/^[0-9a-f]+$/.test(lower)) {
    for (const id of ids) if (id.startsWith(lower)) matches.add(id);
  }
  for (const [id, name] of names) if (name.toLowerCase().startsWith(lower)) matches.add(id);
  if (matches.size === 1) return { ok: true, id: [...matches][0] };
  if (matches.size === 0) {
    const what = /^[0-9a-f]+$/.test(lower)
      ? `no known peer ID or name starts with "${text}"`
      : `no contact is named "${text}"`;
    return {
      ok: false,
      error: `${what} (a peer ID is 40 hex digits; "list --all" shows the known ones)`,
      candidates: [],
    };
  }
  const candidates = [...matches].sort();
  const shown = candidates.slice(0, 8).map((id) => {
    const name = names.get(id);
    return name ? `${name} (${id.slice(0, 12)})` : id.slice(0, 12);
  });
  const more = candidates.length > 8 ? ` and ${candidates.length - 8} more` : "";
  return {
    ok: false,
    error: `"${text}" is ambiguous: ${shown.join(", ")}${more}; type more of it`,
    candidates,
  };
}

/**
 * The contact list, saved to a file (or kept in memory only, for `--ephemeral`).
 *
 * @example
 * ```ts
 * const book = ContactBook.inMemory();
 * book.setName("ab".repeat(20), "alice");
 * book.nameOf("ab".repeat(20)); // "alice"
 * ```
 */
export class ContactBook {
  readonly #path: string | undefined;
  readonly #contacts = new Map<string, Contact>();
  readonly #names = new Map<string, string>();
  readonly #savedSeen = new Map<string, number>();

  private constructor(path: string | undefined) {
    this.#path = path;
  }

  /**
   * A book that is never saved.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().size; // 0
   * ```
   */
  static inMemory(): ContactBook {
    return new ContactBook(undefined);
  }

  /**
   * Loads the book stored at `path` (an empty one when the file does not exist).
   *
   * @throws {ContactsError} when the file is unreadable, too large or invalid.
   *
   * @example
   * ```ts
   * const book = ContactBook.load("/tmp/p2p-example-contacts.json");
   * ```
   */
  static load(path: string): ContactBook {
    const book = new ContactBook(path);
    let bytes: Uint8Array;
    try {
      const info = Deno.statSync(path);
      if (info.size > MAX_CONTACTS_FILE_BYTES) {
        throw new ContactsError(
          path,
          `larger than ${MAX_CONTACTS_FILE_BYTES} bytes: not a contacts file? move it away`,
        );
      }
      bytes = Deno.readFileSync(path);
    } catch (error) {
      if (error instanceof ContactsError) throw error;
      if (error instanceof Deno.errors.NotFound) return book;
      throw new ContactsError(path, `cannot read (${(error as Error).message})`);
    }
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new ContactsError(path, "not valid JSON: fix it or move it away");
    }
    const record = value as { version?: unknown; contacts?: unknown } | null;
    if (
      typeof record !== "object" || record === null || record.version !== 1 ||
      typeof record.contacts !== "object" || record.contacts === null ||
      Array.isArray(record.contacts)
    ) {
      throw new ContactsError(path, 'expected {"version": 1, "contacts": {"<id>": {"name": ...}}}');
    }
    const entries = Object.entries(record.contacts as Record<string, unknown>);
    if (entries.length > MAX_CONTACTS) {
      throw new ContactsError(path, `more than ${MAX_CONTACTS} contacts`);
    }
    for (const [id, entry] of entries) {
      const fields = entry as { name?: unknown; lastSeen?: unknown } | null;
      if (!ID_PATTERN.test(id)) throw new ContactsError(path, `"${id}" is not a peer ID`);
      if (typeof fields !== "object" || fields === null || typeof fields.name !== "string") {
        throw new ContactsError(path, `${id}: expected {"name": "..."}`);
      }
      const problem = validateName(fields.name) ?? book.#nameTaken(fields.name, id);
      if (problem) throw new ContactsError(path, `${id}: ${problem}`);
      const lastSeen = typeof fields.lastSeen === "number" && Number.isFinite(fields.lastSeen)
        ? fields.lastSeen
        : undefined;
      book.#put({ id, name: fields.name, lastSeen });
      if (lastSeen !== undefined) book.#savedSeen.set(id, lastSeen);
    }
    return book;
  }

  /** Where the book is saved (undefined: memory only). */
  get path(): string | undefined {
    return this.#path;
  }

  /** Number of contacts. */
  get size(): number {
    return this.#contacts.size;
  }

  /** ID → name of every contact (for resolution and display). */
  get names(): ReadonlyMap<string, string> {
    return this.#names;
  }

  /**
   * Every contact, sorted by name.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().list(); // []
   * ```
   */
  list(): Contact[] {
    return [...this.#contacts.values()].map((c) => ({ ...c })).sort((a, b) =>
      a.name.localeCompare(b.name)
    );
  }

  /**
   * Whether `id` is a contact (the `--accept contacts` predicate).
   *
   * @example
   * ```ts
   * ContactBook.inMemory().has("ab".repeat(20)); // false
   * ```
   */
  has(id: string): boolean {
    return this.#contacts.has(id);
  }

  /**
   * The contact's name, if any.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().nameOf("ab".repeat(20)); // undefined
   * ```
   */
  nameOf(id: string): string | undefined {
    return this.#names.get(id);
  }

  /**
   * Names (or renames) a peer and saves the book. Returns an error text instead when the ID or
   * the name is invalid, the name is taken, or the book is full; the book is unchanged then.
   *
   * @throws {ContactsError} when the file cannot be written (the change is undone).
   *
   * @example
   * ```ts
   * ContactBook.inMemory().setName("ab".repeat(20), "alice"); // undefined (done)
   * ```
   */
  setName(id: string, name: string): string | undefined {
    if (!ID_PATTERN.test(id)) return `"${id}" is not a peer ID`;
    const problem = validateName(name) ?? this.#nameTaken(name, id);
    if (problem) return problem;
    const previous = this.#contacts.get(id);
    if (!previous && this.#contacts.size >= MAX_CONTACTS) {
      return `the contact list is full (${MAX_CONTACTS}): remove one with "forget <name>"`;
    }
    this.#put({ id, name, lastSeen: previous?.lastSeen });
    try {
      this.#save();
    } catch (error) {
      if (previous) this.#put(previous);
      else this.#delete(id);
      throw error;
    }
    return undefined;
  }

  /**
   * Removes a contact and saves; returns whether it was one.
   *
   * @throws {ContactsError} when the file cannot be written.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().remove("ab".repeat(20)); // false
   * ```
   */
  remove(id: string): boolean {
    const previous = this.#contacts.get(id);
    if (!previous) return false;
    this.#delete(id);
    try {
      this.#save();
    } catch (error) {
      this.#put(previous);
      throw error;
    }
    return true;
  }

  /**
   * Records that a contact is connected at `wallClockMs` (non-contacts are ignored). Saved when
   * the stored value is more than a minute older, so a busy peer does not rewrite the file.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().markSeen("ab".repeat(20), 1_764_500_000_000);
   * ```
   */
  markSeen(id: string, wallClockMs: number): void {
    const contact = this.#contacts.get(id);
    if (!contact) return;
    contact.lastSeen = wallClockMs;
    if (wallClockMs - (this.#savedSeen.get(id) ?? 0) < 60_000) return;
    try {
      this.#save();
    } catch {
      // lastSeen is a convenience: a failed write is retried at the next change
    }
  }

  /**
   * Resolves what the user typed (see {@linkcode resolvePeer}), over the contacts and `knownIds`.
   *
   * @example
   * ```ts
   * ContactBook.inMemory().resolve("ab".repeat(20), []); // { ok: true, id: "abab…" }
   * ```
   */
  resolve(text: string, knownIds: Iterable<string>): ResolveResult {
    return resolvePeer(text, knownIds, this.#names);
  }

  #nameTaken(name: string, forId: string): string | undefined {
    const lower = name.toLowerCase();
    for (const [id, other] of this.#names) {
      if (id !== forId && other.toLowerCase() === lower) {
        return `the name "${other}" is already used for ${id.slice(0, 12)}…`;
      }
    }
    return undefined;
  }

  #put(contact: Contact): void {
    this.#contacts.set(contact.id, contact);
    this.#names.set(contact.id, contact.name);
  }

  #delete(id: string): void {
    this.#contacts.delete(id);
    this.#names.delete(id);
    this.#savedSeen.delete(id);
  }

  #save(): void {
    const path = this.#path;
    if (path === undefined) return;
    const contacts: Record<string, { name: string; lastSeen?: number }> = {};
    for (const contact of this.list()) {
      contacts[contact.id] = contact.lastSeen === undefined
        ? { name: contact.name }
        : { name: contact.name, lastSeen: contact.lastSeen };
    }
    const text = JSON.stringify({ version: 1, contacts }, null, 2) + "\n";
    const temporary = `${path}.tmp-${Deno.pid}`;
    try {
      Deno.writeTextFileSync(temporary, text, { mode: 0o600 });
      Deno.renameSync(temporary, path);
    } catch (error) {
      try {
        Deno.removeSync(temporary);
      } catch {
        // not created
      }
      throw new ContactsError(path, `cannot write (${(error as Error).message})`);
    }
    for (const contact of this.#contacts.values()) {
      if (contact.lastSeen !== undefined) this.#savedSeen.set(contact.id, contact.lastSeen);
    }
  }
}

/**
 * The contacts file beside an identity file: `…/identity.json` → `…/contacts.json`.
 *
 * @example
 * ```ts
 * contactsPathFor("/home/ann/.config/p2p/identity.json"); // "/home/ann/.config/p2p/contacts.json"
 * ```
 */
export function contactsPathFor(identityPath: string): string {
  const slash = Math.max(identityPath.lastIndexOf("/"), identityPath.lastIndexOf("\\"));
  const dir = slash >= 0 ? identityPath.slice(0, slash + 1) : "";
  const base = identityPath.slice(slash + 1);
  // Several identities in one directory each get their own list: bob.json → bob.contacts.json.
  if (base === "identity.json") return `${dir}contacts.json`;
  const stem = base.endsWith(".json") ? base.slice(0, -5) : base;
  return `${dir}${stem}.contacts.json`;
}
