/**
 * The client's version string.
 *
 * @module
 */

/**
 * The client version (`--version`).
 *
 * @example
 * ```ts
 * console.log(CLIENT_VERSION);
 * ```
 */
export const CLIENT_VERSION = "0.1.0";
