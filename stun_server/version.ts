/**
 * The server program's version, printed by `--version` and sent as STUN SOFTWARE.
 *
 * @module
 */

/** Version of the `stun_server` program. */
export const SERVER_VERSION = "0.1.0";
