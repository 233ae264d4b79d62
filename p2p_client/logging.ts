/**
 * Logging setup: @logtape/logtape records to stderr only (stdout is reserved for events).
 *
 * @module
 */
import { configure, defaultTextFormatter, type LogRecord } from "@logtape/logtape";
import type { LogLevel } from "./cli.ts";

const encoder = new TextEncoder();

/**
 * Where log lines go: stderr, unless `write` is set (the interactive prompt sets it, so a log
 * line is printed above the line being typed instead of through it).
 */
export interface LogRoute {
  /** Receives each formatted log line (with its newline); undefined: stderr. */
  write?: (line: string) => void;
}

/**
 * Sends log records at or above `level` to stderr (or `route.write`) as text lines.
 *
 * @example
 * ```ts
 * const route = {};
 * await configureClientLogging("warning", route);
 * ```
 */
export async function configureClientLogging(
  level: LogLevel,
  route: LogRoute = {},
): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        const line = defaultTextFormatter(record);
        if (route.write) {
          route.write(line);
          return;
        }
        try {
          Deno.stderr.writeSync(encoder.encode(line));
        } catch {
          // stderr closed: nothing sensible to do
        }
      },
    },
    loggers: [
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["stderr"] },
      { category: ["p2p-client"], lowestLevel: level, sinks: ["stderr"] },
    ],
  });
}
