/**
 * Logging setup: @logtape/logtape records to stderr only (stdout is reserved for events).
 *
 * @module
 */
import { configure, defaultTextFormatter, type LogRecord } from "@logtape/logtape";
import type { LogLevel } from "./cli.ts";

const encoder = new TextEncoder();

/**
 * Sends log records at or above `level` to stderr as text lines.
 *
 * @example
 * ```ts
 * await configureClientLogging("warning");
 * ```
 */
export async function configureClientLogging(level: LogLevel): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        try {
          Deno.stderr.writeSync(encoder.encode(defaultTextFormatter(record)));
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
