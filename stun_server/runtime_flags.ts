/**
 * The runtime flags the server program runs with: the `server` task, the compiled binaries and
 * the tests all use this list (least privilege: sockets, the list of network interfaces (one STUN
 * socket per local address), reading files (`--turn-user-file`), and the colour variables the
 * command-line parser reads), plus its V8 memory settings: a 1 MiB semi-space (a young generation of a few MiB
 * instead of up to 32 MiB, so a burst of registrations does not leave tens of MiB of young pages
 * resident) and a 20% old-generation growing step (full collections come sooner as the heap grows,
 * so an idle server holds little garbage). With 10,000 idle clients this takes the RSS per client
 * measured 1.5-3 s after the burst from about 13 KiB to about 7.6 KiB.
 *
 * @module
 */

/**
 * Permission and V8 flags of `stun_server/main.ts`.
 *
 * @example
 * ```ts
 * const args = ["run", "--no-prompt", ...SERVER_RUNTIME_FLAGS, "stun_server/main.ts"];
 * ```
 */
export const SERVER_RUNTIME_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-sys=networkInterfaces",
  "--allow-read",
  "--allow-env=NO_COLOR,FORCE_COLOR,CLICOLOR_FORCE",
  // --workers: the supervisor starts the worker processes with the `deno` on the PATH.
  "--allow-run=deno",
  "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=20",
];
