/**
 * Stateless NONCEs for long-term credentials (RFC 8489 section 9.2): each nonce carries its
 * expiry and an HMAC over it and the client's address under a per-process random key, so the
 * server keeps no per-client state, a nonce cannot be moved to another client, and an old one
 * is recognized as stale (438) rather than forged (401). The RFC 8489 nonce cookie announces
 * PASSWORD-ALGORITHMS support.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { nonceCookie } from "../../shared/stun/mod.ts";

/** What {@linkcode NonceIssuer.check} found. */
export type NonceVerdict = "valid" | "stale" | "invalid";

const COOKIE = nonceCookie({ passwordAlgorithms: true, usernameAnonymity: false });

/**
 * Issues and checks nonces.
 *
 * @example
 * ```ts
 * import { NonceIssuer } from "./nonce.ts";
 * let now = 0;
 * const nonces = new NonceIssuer(new Uint8Array(32), 60_000, () => now);
 * const nonce = nonces.issue("192.0.2.1");
 * console.log(nonces.check(nonce, "192.0.2.1")); // "valid"
 * now = 61_000;
 * console.log(nonces.check(nonce, "192.0.2.1")); // "stale"
 * ```
 */
export class NonceIssuer {
  readonly #key: Uint8Array;
  readonly #lifetimeMs: number;
  readonly #now: () => number;

  /**
   * Creates an issuer with a random `key`, nonces valid `lifetimeMs` on the clock `now`.
   *
   * @example
   * ```ts
   * import { NonceIssuer } from "./nonce.ts";
   * new NonceIssuer(crypto.getRandomValues(new Uint8Array(32)), 600_000, () => 0);
   * ```
   */
  constructor(key: Uint8Array, lifetimeMs: number, now: () => number) {
    this.#key = key;
    this.#lifetimeMs = lifetimeMs;
    this.#now = now;
  }

  #mac(expiry: string, client: string): string {
    return createHmac("sha256", this.#key).update(`${expiry} ${client}`).digest("hex").slice(
      0,
      24,
    );
  }

  /**
   * A fresh nonce for a client address.
   *
   * @example
   * ```ts
   * import { NonceIssuer } from "./nonce.ts";
   * console.log(new NonceIssuer(new Uint8Array(8), 1000, () => 0).issue("::1").startsWith("obMatJos2")); // true
   * ```
   */
  issue(client: string): string {
    const expiry = Math.floor(this.#now() + this.#lifetimeMs).toString(16);
    return `${COOKIE}${expiry}.${this.#mac(expiry, client)}`;
  }

  /**
   * Checks a nonce a client sent back.
   *
   * @example
   * ```ts
   * import { NonceIssuer } from "./nonce.ts";
   * console.log(new NonceIssuer(new Uint8Array(8), 1000, () => 0).check("forged", "::1")); // "invalid"
   * ```
   */
  check(nonce: string, client: string): NonceVerdict {
    if (!nonce.startsWith(COOKIE)) return "invalid";
    const dot = nonce.indexOf(".", COOKIE.length);
    if (dot < 0) return "invalid";
    const expiry = nonce.slice(COOKIE.length, dot);
    if (!/^[0-9a-f]{1,13}$/.test(expiry)) return "invalid";
    const mac = new TextEncoder().encode(nonce.slice(dot + 1));
    const expected = new TextEncoder().encode(this.#mac(expiry, client));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return "invalid";
    return parseInt(expiry, 16) < this.#now() ? "stale" : "valid";
  }
}
