/**
 * The server's log output: @logtape/logtape records written to stderr as human-readable lines
 * on a terminal or JSON lines (`--log-format json`, and by default when stderr is not a terminal,
 * so collectors and the test harness get structured lines).
 *
 * Why a sink of our own: a log destination that fails must never stop, slow or grow the server
 * (issue 10: with its stderr pipe closed the first version spun at 70-80% CPU and grew by 100 MB
 * in 4 s, and never exited). {@linkcode LogPipe} writes asynchronously from a bounded queue
 * (1 MiB): a reader that is too slow costs dropped lines, not memory or latency; a write that
 * fails (closed pipe, full disk) marks the destination failed once, and every later line is
 * dropped and counted without another write attempt.
 *
 * @module
 */
import {
  configure,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { type Runtime, systemRuntime } from "../shared/runtime/mod.ts";

/** How log lines look. */
export type LogFormat = "text" | "json";

/** Where a {@linkcode LogPipe} writes (`Deno.stderr` has this shape). */
export interface LogWriter {
  /** Writes some of `bytes`; resolves with the count written. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Bytes of log lines that may wait for the destination before new lines are dropped. */
export const MAX_QUEUED_LOG_BYTES = 1024 * 1024;

const encoder = new TextEncoder();

/**
 * A bounded, failure-tolerant, asynchronous line writer.
 *
 * @example
 * ```ts
 * const written: string[] = [];
 * const pipe = new LogPipe({
 *   write: (bytes) => {
 *     written.push(new TextDecoder().decode(bytes));
 *     return Promise.resolve(bytes.length);
 *   },
 * });
 * pipe.writeLine("hello\n");
 * await pipe.flush(1000);
 * console.log(written.join(""), pipe.dropped); // "hello\n" 0
 * ```
 */
export class LogPipe {
  readonly #writer: LogWriter;
  readonly #maxQueued: number;
  readonly #timers: Pick<Runtime, "setTimer" | "clearTimer">;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing: Promise<void> | null = null;
  #failure: string | null = null;
  #dropped = 0;

  /**
   * @param writer The destination.
   * @param maxQueuedBytes Bytes that may wait before lines are dropped.
   * @param timers Timers for the flush deadline (default `systemRuntime`).
   */
  constructor(
    writer: LogWriter,
    maxQueuedBytes = MAX_QUEUED_LOG_BYTES,
    timers: Pick<Runtime, "setTimer" | "clearTimer"> = systemRuntime,
  ) {
    this.#writer = writer;
    this.#maxQueued = maxQueuedBytes;
    this.#timers = timers;
  }

  /** Lines dropped (destination failed, or too slow). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Why the destination failed (null while it works). */
  get failure(): string | null {
    return this.#failure;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Queues one line (with its newline); never blocks, never throws. */
  writeLine(line: string): void {
    if (this.#failure !== null) {
      this.#dropped++;
      return;
    }
    const bytes = encoder.encode(line);
    if (this.#queued + bytes.length > this.#maxQueued) {
      this.#dropped++;
      return;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#writing ??= this.#drain();
  }

  /** Resolves once everything queued is written, the destination fails, or `timeoutMs` pass. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.#writing === null) return;
    let timer: number | undefined;
    await Promise.race([
      this.#writing,
      new Promise<void>((resolve) => timer = this.#timers.setTimer(resolve, timeoutMs)),
    ]);
    this.#timers.clearTimer(timer);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failure === null) {
        // Batch what is queued into one write.
        const parts = this.#queue;
        this.#queue = [];
        let total = 0;
        for (const part of parts) total += part.length;
        const batch = parts.length === 1 ? parts[0] : new Uint8Array(total);
        if (parts.length > 1) {
          let offset = 0;
          for (const part of parts) {
            batch.set(part, offset);
            offset += part.length;
          }
        }
        let written = 0;
        while (written < batch.length) {
          written += await this.#writer.write(written === 0 ? batch : batch.subarray(written));
        }
        this.#queued -= total;
      }
    } catch (error) {
      this.#failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.#dropped += this.#queue.length + 1;
      this.#queue = [];
      this.#queued = 0;
    } finally {
      this.#writing = null;
    }
  }
}

const textFormatter = getTextFormatter({ timestamp: "date-time-tz", value: (v) => formatValue(v) });

function formatValue(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
}

/**
 * A logtape sink writing formatted records to a {@linkcode LogPipe}.
 *
 * @example
 * ```ts
 * const pipe = new LogPipe({ write: (b) => Promise.resolve(b.length) });
 * const sink = pipeSink(pipe, "json");
 * ```
 */
export function pipeSink(pipe: LogPipe, format: LogFormat): Sink {
  const formatter = format === "json" ? jsonLinesFormatter : textFormatter;
  return (record: LogRecord) => {
    try {
      pipe.writeLine(formatter(record));
    } catch {
      // a record that cannot be formatted is not worth stopping for
    }
  };
}

/**
 * Sends every `["stun-server", ...]` record at `level` or above to `writer` (default stderr)
 * through a {@linkcode LogPipe}, which it returns (flush it before exiting; its `dropped` is the
 * `p2p_log_lines_dropped_total` metric).
 *
 * @example
 * ```ts
 * const pipe = await configureServerLogging("info", "json");
 * await pipe.flush(1000);
 * ```
 */
export async function configureServerLogging(
  level: LogLevel,
  format: LogFormat,
  writer: LogWriter = Deno.stderr,
): Promise<LogPipe> {
  const pipe = new LogPipe(writer);
  await configure({
    reset: true,
    sinks: { stderr: pipeSink(pipe, format) },
    loggers: [
      { category: ["stun-server"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
  return pipe;
}
