/**
 * The Deno permissions the server program runs with: the `server` task, the compiled binaries and
 * the tests all use this list (least privilege: sockets, and the colour variables the command-line
 * parser reads).
 *
 * @module
 */

/**
 * Permission flags of `stun_server/main.ts`.
 *
 * @example
 * ```ts
 * const args = ["run", "--no-prompt", ...SERVER_PERMISSIONS, "stun_server/main.ts"];
 * ```
 */
export const SERVER_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-env=NO_COLOR,FORCE_COLOR,CLICOLOR_FORCE",
];
