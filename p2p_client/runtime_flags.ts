/**
 * The runtime flags (Deno permissions) the client program runs with: the `client` task, the compiled binaries and
 * the tests all use this list. Sockets; the interface list (local candidates); files (config and
 * identity, at paths the user chooses); the environment variables that locate the identity file
 * or colour the command-line parser's output; and FFI, for the system's libcrypto (sealing) and
 * libc (`setsockopt`: UDP buffers), each with a fallback when absent.
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
  // The system's libcrypto for packet sealing and setsockopt for larger UDP buffers (issue 14):
  // 3–5× less CPU per packet, no buffer per packet, 2× the file rate on loopback.
  "--allow-ffi",
];
