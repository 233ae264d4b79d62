/**
 * Driving the native signaling/relay load generator (`native/sig_load.c`) and reading its
 * results.
 *
 * @module
 */
import type { BenchContext } from "./context.ts";
import { ChildProcess } from "./process.ts";
import { readCpuSeconds } from "./proc.ts";

/** How the generator reaches the other end: our server, the native relay, or straight TCP. */
export type SigLoadMode = "ours" | "crelay" | "direct";

/** A relay measurement: bulk bytes or ping-pong messages, with refusals seen. */
export interface RelayLoadResult {
  /** Payload bytes received in the window (bulk). */
  bytes?: number;
  /** Messages received in the window (ping-pong). */
  messages?: number;
  /** Window length. */
  seconds: number;
  /** Bulk rate, MB/s (10^6 bytes). */
  mbPerSecond?: number;
  /** Ping-pong rate. */
  messagesPerSecond?: number;
  /** `relay-*` error replies. */
  relayErrors: number;
  /** Other error replies. */
  otherErrors: number;
  /** Frames the generator could not parse. */
  badFrames: number;
  /** The relay server's CPU seconds during the window, when a server PID was given. */
  serverCpuSeconds?: number;
}

/**
 * Parses the generator's `{"event":"result",...}` line for a relay test.
 *
 * @example
 * ```ts
 * const r = parseRelayResult(
 *   '{"event":"result","bytes":10,"seconds":1,"mbPerSecond":0.1,"relayErrors":0,"otherErrors":0,"badFrames":0}',
 * );
 * console.log(r.bytes); // 10
 * ```
 */
export function parseRelayResult(line: string): RelayLoadResult {
  const value = JSON.parse(line);
  if (value?.event !== "result") throw new SyntaxError("not a result line");
  for (const key of ["seconds", "relayErrors", "otherErrors", "badFrames"]) {
    if (typeof value[key] !== "number") throw new SyntaxError(`result lacks ${key}`);
  }
  if (typeof value.mbPerSecond !== "number" && typeof value.messagesPerSecond !== "number") {
    throw new SyntaxError("result has neither mbPerSecond nor messagesPerSecond");
  }
  return value as RelayLoadResult;
}

/**
 * Runs one relay test with the generator pinned to the load CPU and returns its result, with the
 * server's CPU time over the measured window when `serverPid` is given (a PID, or a function
 * reading the CPU seconds of whatever counts as the server, e.g. several processes).
 *
 * @example
 * ```ts
 * // const r = await runRelayLoad(context, "crelay", 40000, ["bulk", "300", "1000", "16384"]);
 * ```
 */
export async function runRelayLoad(
  context: BenchContext,
  mode: SigLoadMode,
  port: number,
  testArgs: string[],
  serverPid?: number | (() => Promise<number>),
): Promise<RelayLoadResult> {
  const cpu = serverPid === undefined
    ? () => Promise.resolve(0)
    : typeof serverPid === "number"
    ? () => readCpuSeconds(serverPid)
    : serverPid;
  const load = ChildProcess.start({
    command: context.bins.sig_load,
    args: [mode, "127.0.0.1", String(port), ...testArgs],
    cpu: context.loadCpu,
    label: `sig_load ${mode} ${testArgs[0]}`,
  });
  try {
    await load.waitForLine((l) => l.includes('"start"'), 60_000);
    const before = await cpu();
    const line = await load.waitForLine((l) => l.includes('"result"'), 60_000);
    const after = await cpu();
    const result = parseRelayResult(line);
    if (serverPid !== undefined) result.serverCpuSeconds = after - before;
    return result;
  } finally {
    await load.exited(5000);
  }
}
