/**
 * Where TURN long-term credentials (RFC 8489 section 9.2) come from: static users
 * (`--turn-user NAME:PASSWORD`, or a file of such lines) and time-limited credentials from a
 * shared secret, the "TURN REST API" scheme (draft-uberti-behave-turn-rest, coturn's
 * `use-auth-secret`): the username is `EXPIRY[:ANYTHING]` with EXPIRY in Unix seconds, the
 * password `base64(HMAC-SHA1(secret, username))`, valid until EXPIRY.
 *
 * @module
 */
import { createHmac } from "node:crypto";

/** Answers "what is the password of this username now?" for the TURN server. */
export interface TurnCredentialSource {
  /** The password of `username` at wall-clock time `nowMs`, or undefined (unknown, expired). */
  passwordFor(username: string, nowMs: number): string | undefined;
}

/**
 * Parses `NAME:PASSWORD` (the password may contain `:`).
 *
 * @throws {RangeError} without a colon or with an empty name.
 *
 * @example
 * ```ts
 * import { parseUserSpec } from "./credentials.ts";
 * console.log(parseUserSpec("alice:s3:cret")); // { name: "alice", password: "s3:cret" }
 * ```
 */
export function parseUserSpec(spec: string): { name: string; password: string } {
  const colon = spec.indexOf(":");
  if (colon <= 0) throw new RangeError(`expected NAME:PASSWORD, got "${spec.slice(0, 40)}"`);
  return { name: spec.slice(0, colon), password: spec.slice(colon + 1) };
}

/**
 * Parses a user file: one `NAME:PASSWORD` per line; blank lines and `#` comments ignored.
 *
 * @throws {RangeError} naming the first bad line.
 *
 * @example
 * ```ts
 * import { parseUserFile } from "./credentials.ts";
 * console.log(parseUserFile("# users\nalice:one\n\nbob:two\n").length); // 2
 * ```
 */
export function parseUserFile(text: string): { name: string; password: string }[] {
  const users = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      users.push(parseUserSpec(line));
    } catch {
      throw new RangeError(`user file line ${i + 1}: expected NAME:PASSWORD`);
    }
  }
  return users;
}

/**
 * Static users.
 *
 * @example
 * ```ts
 * import { StaticUsers } from "./credentials.ts";
 * const users = new StaticUsers([{ name: "alice", password: "pw" }]);
 * console.log(users.passwordFor("alice", 0)); // "pw"
 * ```
 */
export class StaticUsers implements TurnCredentialSource {
  readonly #passwords = new Map<string, string>();

  /**
   * Creates the directory (a later entry for a name replaces an earlier one).
   *
   * @example
   * ```ts
   * import { StaticUsers } from "./credentials.ts";
   * new StaticUsers([]);
   * ```
   */
  constructor(users: Iterable<{ name: string; password: string }>) {
    for (const user of users) this.#passwords.set(user.name, user.password);
  }

  /** How many users. */
  get size(): number {
    return this.#passwords.size;
  }

  /**
   * The user's password.
   *
   * @example
   * ```ts
   * import { StaticUsers } from "./credentials.ts";
   * console.log(new StaticUsers([]).passwordFor("x", 0)); // undefined
   * ```
   */
  passwordFor(username: string, _nowMs: number): string | undefined {
    return this.#passwords.get(username);
  }
}

/**
 * The REST API password for `username` under `secret`: base64(HMAC-SHA1(secret, username)).
 *
 * @example
 * ```ts
 * import { restPassword } from "./credentials.ts";
 * console.log(restPassword("secret", "1700000000:alice").length); // 28
 * ```
 */
export function restPassword(secret: string, username: string): string {
  return createHmac("sha1", secret).update(username).digest("base64");
}

/**
 * Time-limited credentials from a shared secret (TURN REST API).
 *
 * @example
 * ```ts
 * import { restPassword, SharedSecretCredentials } from "./credentials.ts";
 * const source = new SharedSecretCredentials(["s3cret"]);
 * const username = "2000000000:alice";
 * console.log(source.passwordFor(username, 1_900_000_000_000) === restPassword("s3cret", username)); // true
 * console.log(source.passwordFor(username, 2_000_000_001_000)); // undefined (expired)
 * ```
 */
export class SharedSecretCredentials implements TurnCredentialSource {
  readonly #secrets: readonly string[];

  /**
   * Creates the source; the first secret signs, all are accepted (rotation). Only the first is
   * used for the password (a client cannot say which one it was given).
   *
   * @example
   * ```ts
   * import { SharedSecretCredentials } from "./credentials.ts";
   * new SharedSecretCredentials(["one"]);
   * ```
   */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new RangeError("at least one secret");
    this.#secrets = secrets;
  }

  /**
   * The password, if `username` starts with an unexpired `EXPIRY` timestamp.
   *
   * @example
   * ```ts
   * import { SharedSecretCredentials } from "./credentials.ts";
   * console.log(new SharedSecretCredentials(["s"]).passwordFor("alice", 0)); // undefined
   * ```
   */
  passwordFor(username: string, nowMs: number): string | undefined {
    const match = /^(\d{1,12})(?::|$)/.exec(username);
    if (match === null) return undefined;
    if (Number(match[1]) * 1000 < nowMs) return undefined;
    return restPassword(this.#secrets[0], username);
  }
}

/**
 * Tries each source in turn.
 *
 * @example
 * ```ts
 * import { CombinedCredentials, StaticUsers } from "./credentials.ts";
 * const source = new CombinedCredentials([new StaticUsers([{ name: "a", password: "b" }])]);
 * console.log(source.passwordFor("a", 0)); // "b"
 * ```
 */
export class CombinedCredentials implements TurnCredentialSource {
  readonly #sources: readonly TurnCredentialSource[];

  /**
   * Combines `sources` (first match wins).
   *
   * @example
   * ```ts
   * import { CombinedCredentials } from "./credentials.ts";
   * new CombinedCredentials([]);
   * ```
   */
  constructor(sources: readonly TurnCredentialSource[]) {
    this.#sources = sources;
  }

  /**
   * The first source's answer that is defined.
   *
   * @example
   * ```ts
   * import { CombinedCredentials } from "./credentials.ts";
   * console.log(new CombinedCredentials([]).passwordFor("a", 0)); // undefined
   * ```
   */
  passwordFor(username: string, nowMs: number): string | undefined {
    for (const source of this.#sources) {
      const password = source.passwordFor(username, nowMs);
      if (password !== undefined) return password;
    }
    return undefined;
  }
}
