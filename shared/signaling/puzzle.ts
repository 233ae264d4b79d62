/**
 * The admission puzzle (issue 11): under load, registration costs the client a hashcash-style
 * proof of work on SHA-256 bound to its challenge and key, so 10,000 throwaway registrations cost
 * an attacker about 10,000 × 2^bits hashes while the server checks each with one hash.
 *
 * `work` is 8 bytes such that `SHA-256("p2p-puzzle/v1" || nonce || publicKey || work)` starts
 * with at least `bits` zero bits. The nonce is the connection's 32-byte challenge nonce, so a
 * solution is good for one connection only. Measured: about 2 µs per hash on this project's CI
 * machines, so 16 bits (the most the server asks) take about 0.15 s on average.
 *
 * @module
 */
import { createHash } from "node:crypto";

const DOMAIN = new TextEncoder().encode("p2p-puzzle/v1");
/** Bytes of a puzzle solution. */
export const PUZZLE_WORK_BYTES = 8;
/** The most bits a server asks for. */
export const MAX_PUZZLE_BITS = 24;

function puzzleInput(nonce: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const input = new Uint8Array(DOMAIN.length + nonce.length + publicKey.length + PUZZLE_WORK_BYTES);
  input.set(DOMAIN, 0);
  input.set(nonce, DOMAIN.length);
  input.set(publicKey, DOMAIN.length + nonce.length);
  return input;
}

function leadingZeroBits(digest: Uint8Array, atLeast: number): boolean {
  let bits = atLeast;
  for (let i = 0; bits > 0; i++) {
    const byte = digest[i];
    if (bits >= 8) {
      if (byte !== 0) return false;
      bits -= 8;
    } else {
      return (byte >> (8 - bits)) === 0;
    }
  }
  return true;
}

/**
 * True when `work` solves the puzzle of `bits` bits for this nonce and key (one SHA-256).
 *
 * @example
 * ```ts
 * const nonce = new Uint8Array(32), key = new Uint8Array(32);
 * const work = solvePuzzle(nonce, key, 8);
 * console.log(verifyPuzzle(nonce, key, 8, work)); // true
 * ```
 */
export function verifyPuzzle(
  nonce: Uint8Array,
  publicKey: Uint8Array,
  bits: number,
  work: Uint8Array,
): boolean {
  if (bits <= 0) return true;
  if (work.length !== PUZZLE_WORK_BYTES) return false;
  const input = puzzleInput(nonce, publicKey);
  input.set(work, input.length - PUZZLE_WORK_BYTES);
  const digest = createHash("sha256").update(input).digest();
  return leadingZeroBits(digest, bits);
}

/**
 * Finds a solution (the client's side): tries counters from 0 until one fits. Throws a
 * `RangeError` for more than {@linkcode MAX_PUZZLE_BITS} bits, and gives up (throws) after
 * `maxAttempts` (default 2^(bits+6), a chance of about e^-64 of failing for a real puzzle).
 *
 * @example
 * ```ts
 * const work = solvePuzzle(new Uint8Array(32), new Uint8Array(32), 4);
 * console.log(work.length); // 8
 * ```
 */
export function solvePuzzle(
  nonce: Uint8Array,
  publicKey: Uint8Array,
  bits: number,
  maxAttempts = 2 ** (Math.min(bits, MAX_PUZZLE_BITS) + 6),
): Uint8Array {
  if (bits > MAX_PUZZLE_BITS) throw new RangeError(`puzzle of ${bits} bits is too hard`);
  const input = puzzleInput(nonce, publicKey);
  const at = input.length - PUZZLE_WORK_BYTES;
  const view = new DataView(input.buffer, at, PUZZLE_WORK_BYTES);
  for (let counter = 0; counter < maxAttempts; counter++) {
    view.setUint32(0, Math.floor(counter / 2 ** 32));
    view.setUint32(4, counter >>> 0);
    if (bits <= 0) return input.slice(at);
    const digest = createHash("sha256").update(input).digest();
    if (leadingZeroBits(digest, bits)) return input.slice(at);
  }
  throw new Error(`no solution to a ${bits}-bit puzzle in ${maxAttempts} attempts`);
}

/**
 * The difficulty a server asks for at `load` (0 = idle, 1 = full): none below half load, then 8
 * bits rising linearly to `maxBits` at full load.
 *
 * @example
 * ```ts
 * console.log(puzzleBitsForLoad(0.3), puzzleBitsForLoad(0.5), puzzleBitsForLoad(1, 16)); // 0 8 16
 * ```
 */
export function puzzleBitsForLoad(load: number, maxBits = 16): number {
  if (!(load >= 0.5) || maxBits <= 0) return 0;
  const low = Math.min(8, maxBits);
  const bits = low + Math.round((Math.min(load, 1) - 0.5) / 0.5 * (maxBits - low));
  return Math.min(bits, maxBits, MAX_PUZZLE_BITS);
}
