/**
 * ChaCha20-Poly1305 (RFC 8439) and AES-256-GCM from the system's OpenSSL (`libcrypto.so.3`)
 * through Deno's FFI, sealing and opening in place in buffers the caller owns: no cipher object
 * and no output buffer per packet, so a bulk transfer makes no garbage here.
 *
 * Why: through `node:crypto` every packet costs a cipher object and a fresh output buffer (and a
 * 64 KiB packet a second one for the packet itself); on the bench machine that is about 110 µs
 * per 64 KiB to seal or open with ChaCha20-Poly1305 and tens of MiB of short-lived external
 * memory that V8 collects late (peak RSS 85–95 MiB moving a file). OpenSSL's assembly runs the
 * same cipher at 1.5–2 GB/s per core (`deno task bench --only bulk`). The packets are the same
 * bytes either way: this is an accelerator, used only when `--allow-ffi` is granted and
 * libcrypto is found, with `node:crypto` as the fallback ({@linkcode nativeAead} returns
 * `undefined`).
 *
 * @module
 */

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const;

type Libcrypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const TAG_BYTES = 16;

let library: Libcrypto | null | undefined;

function load(): Libcrypto | null {
  if (library !== undefined) return library;
  library = null;
  if (Deno.build.os !== "linux") return null;
  try {
    // Ask without prompting: FFI is used only when it was granted.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  } catch {
    return null;
  }
  for (const name of ["libcrypto.so.3", "libcrypto.so"]) {
    try {
      library = Deno.dlopen(name, SYMBOLS).symbols;
      break;
    } catch {
      // try the next name
    }
  }
  return library;
}

/** The two AEADs of the session's packets. */
export type NativeAeadAlgorithm = "chacha20-poly1305" | "aes-256-gcm";

/**
 * One direction's cipher under one key, reused for every packet (the key is set once; each packet
 * only sets its nonce). Not safe to share between concurrent users (there are none: JavaScript).
 *
 * @example
 * ```ts
 * import { nativeAead } from "./native_aead.ts";
 * const key = new Uint8Array(32);
 * const sealer = nativeAead("chacha20-poly1305", key, true);
 * if (sealer !== undefined) {
 *   const packet = new Uint8Array(13 + 5 + 16);
 *   packet.set(new TextEncoder().encode("hello"), 13);
 *   sealer.seal(new Uint8Array(12), packet.subarray(0, 13), packet.subarray(13, 18), packet.subarray(18));
 * }
 * ```
 */
export class NativeAead {
  readonly #lib: Libcrypto;
  #ctx: Deno.PointerValue;
  readonly #encrypt: number;
  readonly #length = new Int32Array(1);
  readonly #scratch = new Uint8Array(TAG_BYTES);

  /** Use {@linkcode nativeAead}. */
  constructor(lib: Libcrypto, algorithm: NativeAeadAlgorithm, key: Uint8Array, encrypt: boolean) {
    if (key.length !== 32) throw new RangeError("the key is 32 bytes");
    this.#lib = lib;
    this.#encrypt = encrypt ? 1 : 0;
    const ctx = lib.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed");
    this.#ctx = ctx;
    const cipher = algorithm === "chacha20-poly1305"
      ? lib.EVP_chacha20_poly1305()
      : lib.EVP_aes_256_gcm();
    if (lib.EVP_CipherInit_ex(ctx, cipher, null, key, null, this.#encrypt) !== 1) {
      lib.EVP_CIPHER_CTX_free(ctx);
      throw new Error("EVP_CipherInit_ex failed");
    }
  }

  /**
   * Seals `head ‖ tail` (either may be empty) into `out` (at least as long as both: it may be the
   * same memory, for sealing in place) and writes the 16-byte tag into `tag`.
   *
   * @example
   * ```ts
   * import { nativeAead } from "./native_aead.ts";
   * const aead = nativeAead("aes-256-gcm", new Uint8Array(32), true);
   * const out = new Uint8Array(3);
   * const tag = new Uint8Array(16);
   * aead?.seal(new Uint8Array(12), new Uint8Array(0), new Uint8Array([1, 2, 3]), tag, undefined, out);
   * ```
   */
  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    head: Uint8Array,
    tag: Uint8Array,
    tail?: Uint8Array,
    out: Uint8Array = head,
  ): void {
    const lib = this.#lib;
    const ctx = this.#ctx;
    if (ctx === null) throw new Error("the cipher is closed");
    const length = this.#length;
    if (
      lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, 1) !== 1 ||
      lib.EVP_CipherUpdate(ctx, null, length, aad, aad.length) !== 1 ||
      (head.length > 0 && lib.EVP_CipherUpdate(ctx, out, length, head, head.length) !== 1) ||
      (tail !== undefined && tail.length > 0 &&
        lib.EVP_CipherUpdate(ctx, out.subarray(head.length), length, tail, tail.length) !== 1) ||
      lib.EVP_CipherFinal_ex(ctx, this.#scratch, length) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) !== 1
    ) {
      throw new Error("sealing failed");
    }
  }

  /**
   * Opens `body` in place (or into `out`) if `tag` authenticates it with `aad` under `nonce`;
   * false when it does not (the bytes written are then garbage).
   *
   * @example
   * ```ts
   * import { nativeAead } from "./native_aead.ts";
   * const aead = nativeAead("chacha20-poly1305", new Uint8Array(32), false);
   * console.log(aead?.open(new Uint8Array(12), new Uint8Array(0), new Uint8Array(3), new Uint8Array(16))); // false
   * ```
   */
  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    body: Uint8Array,
    tag: Uint8Array,
    out: Uint8Array = body,
  ): boolean {
    const lib = this.#lib;
    const ctx = this.#ctx;
    if (ctx === null) return false;
    const length = this.#length;
    this.#scratch.set(tag);
    return lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, 0) === 1 &&
      lib.EVP_CipherUpdate(ctx, null, length, aad, aad.length) === 1 &&
      (body.length === 0 || lib.EVP_CipherUpdate(ctx, out, length, body, body.length) === 1) &&
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, this.#scratch) === 1 &&
      lib.EVP_CipherFinal_ex(ctx, this.#scratch, length) === 1;
  }

  /**
   * Frees the cipher (its copy of the key included).
   *
   * @example
   * ```ts
   * import { nativeAead } from "./native_aead.ts";
   * nativeAead("aes-256-gcm", new Uint8Array(32), true)?.close();
   * ```
   */
  close(): void {
    if (this.#ctx === null) return;
    this.#lib.EVP_CIPHER_CTX_free(this.#ctx);
    this.#ctx = null;
  }
}

/**
 * A native cipher for one direction and key, or `undefined` when FFI is not granted, not on
 * Linux, or libcrypto is missing (then use `node:crypto`). Set `P2P_NATIVE_AEAD=0` in the
 * environment (when env access is granted) to turn it off.
 *
 * @example
 * ```ts
 * import { nativeAead } from "./native_aead.ts";
 * const sealer = nativeAead("chacha20-poly1305", new Uint8Array(32), true);
 * console.log(sealer === undefined ? "node:crypto" : "libcrypto");
 * ```
 */
export function nativeAead(
  algorithm: NativeAeadAlgorithm,
  key: Uint8Array,
  encrypt: boolean,
): NativeAead | undefined {
  if (disabledByEnv()) return undefined;
  const lib = load();
  if (lib === null) return undefined;
  try {
    return new NativeAead(lib, algorithm, key, encrypt);
  } catch {
    return undefined;
  }
}

let disabled: boolean | undefined;
function disabledByEnv(): boolean {
  if (disabled !== undefined) return disabled;
  disabled = false;
  try {
    if (
      Deno.permissions.querySync({ name: "env", variable: "P2P_NATIVE_AEAD" }).state === "granted"
    ) {
      disabled = Deno.env.get("P2P_NATIVE_AEAD") === "0";
    }
  } catch {
    // no env access: keep it on
  }
  return disabled;
}
