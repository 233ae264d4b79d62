/**
 * The client's version string.
 *
 * @module
 */

/** The client version (`--version`). */
export const CLIENT_VERSION = "0.1.0";
