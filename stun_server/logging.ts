/**
 * Structured logging for the server: JSON lines on stderr through @logtape/logtape.
 *
 * @module
 */
import { configure, getStreamSink, jsonLinesFormatter, type LogLevel } from "@logtape/logtape";

/**
 * Sends every `["stun-server", ...]` log record at `level` or above to stderr as one JSON object
 * per line. Call `dispose()` from @logtape/logtape before exiting to flush.
 *
 * @example
 * ```ts
 * await configureServerLogging("info");
 * ```
 */
export async function configureServerLogging(level: LogLevel): Promise<void> {
  await configure({
    sinks: { stderr: getStreamSink(Deno.stderr.writable, { formatter: jsonLinesFormatter }) },
    loggers: [
      { category: ["stun-server"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
