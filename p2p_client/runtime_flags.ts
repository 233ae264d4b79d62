/**
 * The runtime flags (Deno permissions) the client program runs with: the `client` task, the compiled binaries and
 * the tests all use this list. Sockets; the interface list (local candidates); files (config and
 * identity, at paths the user chooses); and the environment variables that locate the identity file
 * or colour the command-line parser's output.
 *
 * @module
 */

/**
 * Permission flags of `p2p_client/main.ts`.
 *
 * @example
 * ```ts
 * const args = ["run", "--no-prompt", ...CLIENT_RUNTIME_FLAGS, "p2p_client/main.ts"];
 * ```
 */
export const CLIENT_RUNTIME_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-env=XDG_CONFIG_HOME,HOME,USERPROFILE,APPDATA,NO_COLOR,FORCE_COLOR,CLICOLOR_FORCE",
  "--allow-read",
  "--allow-write",
  "--allow-sys=networkInterfaces",
];
