/**
 * Ed25519 identities: the long-lived key pair a client proves possession of when it registers,
 * and signs its handshakes with.
 *
 * @module
 */
import { createPublicKey, KeyObject, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import { type PeerId, peerIdFromPublicKey } from "./peer_id.ts";

/** An Ed25519 key pair with the peer ID it is bound to. */
export class Identity {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The peer ID derived from {@linkcode Identity.publicKey}. */
  readonly id: PeerId;
  readonly #privateKey: CryptoKey;
  /** The same key for node:crypto, which signs synchronously (WebCrypto's Ed25519 runs on a
   * host thread pool: not deterministic on virtual time). */
  readonly #signingKey: KeyObject;

  private constructor(privateKey: CryptoKey, publicKey: Uint8Array, id: PeerId) {
    this.#privateKey = privateKey;
    this.#signingKey = KeyObject.from(privateKey);
    this.publicKey = publicKey;
    this.id = id;
  }

  /**
   * Generates a fresh identity.
   *
   * @example
   * ```ts
   * const me = await Identity.generate();
   * console.log(me.id);
   * ```
   */
  static async generate(): Promise<Identity> {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    return await Identity.#fromPair(pair.privateKey, pair.publicKey);
  }

  /**
   * Restores an identity from its PKCS#8-encoded private key (as written by
   * {@linkcode Identity.exportPrivateKey}).
   *
   * @example
   * ```ts
   * const me = await Identity.generate();
   * const again = await Identity.fromPkcs8(await me.exportPrivateKey());
   * console.log(again.id === me.id); // true
   * ```
   */
  static async fromPkcs8(pkcs8: Uint8Array): Promise<Identity> {
    const privateKey = await crypto.subtle.importKey(
      "pkcs8",
      pkcs8 as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      true,
      ["sign"],
    );
    // WebCrypto cannot derive a public key from a private one directly; the JWK form carries both.
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    if (typeof jwk.x !== "string") throw new TypeError("Ed25519 private key has no public part");
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", x: jwk.x },
      { name: "Ed25519" },
      true,
      ["verify"],
    );
    return await Identity.#fromPair(privateKey, publicKey);
  }

  static async #fromPair(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Identity> {
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
    return new Identity(privateKey, raw, await peerIdFromPublicKey(raw));
  }

  /**
   * Signs `data` with the private key (64-byte Ed25519 signature).
   *
   * @example
   * ```ts
   * const me = await Identity.generate();
   * const signature = await me.sign(new TextEncoder().encode("hello"));
   * console.log(await verifySignature(me.publicKey, new TextEncoder().encode("hello"), signature));
   * ```
   */
  sign(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.signSync(data));
  }

  /**
   * {@linkcode Identity.sign}, synchronously.
   *
   * @example
   * ```ts
   * const me = await Identity.generate();
   * console.log(me.signSync(new Uint8Array([1])).length); // 64
   * ```
   */
  signSync(data: Uint8Array): Uint8Array {
    return new Uint8Array(nodeSign(null, data, this.#signingKey));
  }

  /**
   * Exports the private key as PKCS#8 bytes, for storage with owner-only permissions.
   *
   * @example
   * ```ts
   * const me = await Identity.generate();
   * const pkcs8 = await me.exportPrivateKey();
   * ```
   */
  async exportPrivateKey(): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.exportKey("pkcs8", this.#privateKey));
  }
}

/**
 * Verifies an Ed25519 signature made by the holder of `publicKey`. Returns false, never throws,
 * for malformed keys or signatures.
 *
 * @example
 * ```ts
 * const me = await Identity.generate();
 * const data = new TextEncoder().encode("x");
 * console.log(await verifySignature(me.publicKey, data, await me.sign(data))); // true
 * ```
 */
export function verifySignature(
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return Promise.resolve(verifySignatureSync(publicKey, data, signature));
}

/**
 * {@linkcode verifySignature}, synchronously (node:crypto).
 *
 * @example
 * ```ts
 * const me = await Identity.generate();
 * const data = new TextEncoder().encode("x");
 * console.log(verifySignatureSync(me.publicKey, data, me.signSync(data))); // true
 * ```
 */
export function verifySignatureSync(
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        x: publicKey.toBase64({ alphabet: "base64url", omitPadding: true }),
      },
      format: "jwk",
    });
    return nodeVerify(null, data, key, signature);
  } catch {
    return false;
  }
}
