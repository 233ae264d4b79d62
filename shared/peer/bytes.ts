/**
 * Big-endian integer helpers for the peer packet and frame codecs. The caller checks lengths.
 *
 * @module
 */

/**
 * Reads a big-endian u32 at `offset`.
 *
 * @example
 * ```ts
 * readU32(new Uint8Array([0, 0, 1, 0]), 0); // 256
 * ```
 */
export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/**
 * Writes a big-endian u32 at `offset`.
 *
 * @example
 * ```ts
 * const bytes = new Uint8Array(4);
 * writeU32(bytes, 0, 256); // bytes = 00 00 01 00
 * ```
 */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/**
 * Reads a big-endian u48 at `offset`.
 *
 * @example
 * ```ts
 * readU48(new Uint8Array([0, 1, 0, 0, 0, 0]), 0); // 2 ** 32
 * ```
 */
export function readU48(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 8) | bytes[offset + 1]) * 0x1_0000_0000 + readU32(bytes, offset + 2);
}

/**
 * Writes a big-endian u48 (0 to 2^48 - 1) at `offset`.
 *
 * @example
 * ```ts
 * const bytes = new Uint8Array(6);
 * writeU48(bytes, 0, 2 ** 32); // bytes = 00 01 00 00 00 00
 * ```
 */
export function writeU48(bytes: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / 0x1_0000_0000);
  bytes[offset] = high >>> 8;
  bytes[offset + 1] = high;
  writeU32(bytes, offset + 2, value >>> 0);
}

/**
 * Reads a big-endian u64 at `offset`; `undefined` when it exceeds `Number.MAX_SAFE_INTEGER`.
 *
 * @example
 * ```ts
 * readU64(new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0]), 0); // 2 ** 32
 * ```
 */
export function readU64(bytes: Uint8Array, offset: number): number | undefined {
  const high = readU32(bytes, offset);
  if (high > 0x1fffff) return undefined;
  return high * 0x1_0000_0000 + readU32(bytes, offset + 4);
}

/**
 * Writes a big-endian u64 (a safe, non-negative integer) at `offset`.
 *
 * @example
 * ```ts
 * const bytes = new Uint8Array(8);
 * writeU64(bytes, 0, 2 ** 32); // bytes = 00 00 00 01 00 00 00 00
 * ```
 */
export function writeU64(bytes: Uint8Array, offset: number, value: number): void {
  writeU32(bytes, offset, Math.floor(value / 0x1_0000_0000));
  writeU32(bytes, offset + 4, value >>> 0);
}

/**
 * Constant-shape byte comparison (not timing-sensitive data: used for retransmission checks).
 *
 * @example
 * ```ts
 * bytesEqual(new Uint8Array([1]), new Uint8Array([1])); // true
 * ```
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
