/**
 * The registry of live sessions: by peer ID for brokering and relaying, and by STUN username so
 * that authenticated STUN Bindings reveal each client's public endpoint. It implements the STUN
 * service's `StunUserDirectory`. It is never listed to clients.
 *
 * @module
 */

const encoder = new TextEncoder();

/** A UDP endpoint as the STUN service reports it. */
export interface StunEndpoint {
  /** Source address of the Binding request. */
  hostname: string;
  /** Source port of the Binding request. */
  port: number;
}

/** What the registry needs of a session. */
export interface RegistryEntry {
  /** The peer ID (40 hex digits). */
  readonly id: string;
  /** The STUN username issued at registration. */
  readonly stunUsername: string;
  /** The issued STUN password (its UTF-8 bytes are the short-term key). */
  readonly stunPassword: string;
  /** Called when an authenticated Binding arrived for this session. */
  onStunBinding(endpoint: StunEndpoint): void;
}

/**
 * Live sessions by ID and by STUN username. A newer session with an existing ID replaces the
 * older one (returned by {@linkcode Registry.add} so the caller can tell it).
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const session = {
 *   id: "00".repeat(20),
 *   stunUsername: "u1",
 *   stunPassword: "p1",
 *   onStunBinding: (e: StunEndpoint) => console.log(e),
 * };
 * registry.add(session);
 * console.log(registry.get("00".repeat(20)) === session); // true
 * registry.onAuthenticatedBinding("u1", { hostname: "198.18.0.1", port: 5000 });
 * ```
 */
export class Registry<S extends RegistryEntry = RegistryEntry> {
  readonly #byId = new Map<string, S>();
  readonly #byStunUsername = new Map<string, S>();

  /** Number of live registered sessions. */
  get size(): number {
    return this.#byId.size;
  }

  /**
   * The live session holding `id`, if any.
   *
   * @example
   * ```ts
   * console.log(new Registry().get("00".repeat(20))); // undefined
   * ```
   */
  get(id: string): S | undefined {
    return this.#byId.get(id);
  }

  /**
   * Adds `session`; returns the older session it replaced (same ID), which is removed.
   *
   * @example
   * ```ts
   * const registry = new Registry();
   * const make = (u: string) => ({
   *   id: "11".repeat(20),
   *   stunUsername: u,
   *   stunPassword: "p",
   *   onStunBinding() {},
   * });
   * const older = make("a");
   * registry.add(older);
   * console.log(registry.add(make("b")) === older); // true
   * ```
   */
  add(session: S): S | undefined {
    const older = this.#byId.get(session.id);
    if (older !== undefined) this.#byStunUsername.delete(older.stunUsername);
    this.#byId.set(session.id, session);
    this.#byStunUsername.set(session.stunUsername, session);
    return older;
  }

  /**
   * Removes `session` if it is still the live one for its ID; returns whether it was.
   *
   * @example
   * ```ts
   * const registry = new Registry();
   * const s = { id: "22".repeat(20), stunUsername: "x", stunPassword: "p", onStunBinding() {} };
   * registry.add(s);
   * console.log(registry.remove(s)); // true
   * console.log(registry.remove(s)); // false
   * ```
   */
  remove(session: S): boolean {
    if (this.#byId.get(session.id) !== session) return false;
    this.#byId.delete(session.id);
    this.#byStunUsername.delete(session.stunUsername);
    return true;
  }

  /**
   * The STUN short-term key of `username` (UTF-8 of its password), if it is live.
   *
   * @example
   * ```ts
   * console.log(new Registry().keyFor("nobody")); // undefined
   * ```
   */
  keyFor(username: string): Uint8Array | undefined {
    const session = this.#byStunUsername.get(username);
    return session === undefined ? undefined : encoder.encode(session.stunPassword);
  }

  /**
   * Records that an authenticated Binding from `username` came from `address`.
   *
   * @example
   * ```ts
   * new Registry().onAuthenticatedBinding("nobody", { hostname: "127.0.0.1", port: 1 }); // ignored
   * ```
   */
  onAuthenticatedBinding(username: string, address: StunEndpoint): void {
    this.#byStunUsername.get(username)?.onStunBinding(address);
  }
}
