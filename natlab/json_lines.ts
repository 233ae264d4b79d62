/**
 * Line-oriented JSON streams: the probe tool, the client (`--json`) and the lab's own drivers all
 * speak one JSON object per line. This module splits a byte stream into bounded lines and keeps
 * the parsed events so a test can wait for one with a deadline.
 *
 * @module
 */

export { MAX_LINE_LENGTH, readLines } from "../testing/read_lines.ts";
import { readLines } from "../testing/read_lines.ts";

/** A JSON object read from one line. */
export type JsonEvent = Record<string, unknown>;

/** Thrown when an awaited event does not arrive before its deadline, or the stream ends first. */
export class EventTimeoutError extends Error {
  /**
   * @param description What was awaited.
   * @param timeoutMs The deadline that passed.
   * @param ended True when the stream ended before the deadline.
   */
  constructor(
    readonly description: string,
    readonly timeoutMs: number,
    readonly ended: boolean,
  ) {
    super(
      ended
        ? `stream ended while waiting for ${description}`
        : `no ${description} within ${timeoutMs} ms`,
    );
    this.name = "EventTimeoutError";
  }
}

/** Parses one line as a JSON object; anything else gives `undefined`. */
function parseObject(line: string): JsonEvent | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return value as JsonEvent;
    }
  } catch {
    // Not JSON: the caller keeps it as a raw line.
  }
  return undefined;
}

interface Waiter {
  predicate: (event: JsonEvent) => boolean;
  resolve: (event: JsonEvent) => void;
  reject: (error: Error) => void;
  description: string;
  timeoutMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The events a child process printed, kept in order with the time each arrived, and a way to
 * wait for the next one that matches.
 *
 * @example
 * ```ts
 * const log = new EventLog(new Blob(['{"type":"ready"}\n']).stream());
 * const ready = await log.waitFor((e) => e.type === "ready", 1000, "ready");
 * console.log(ready.type); // "ready"
 * ```
 */
export class EventLog {
  /** Every JSON event, in arrival order. */
  readonly events: JsonEvent[] = [];
  /** Arrival time of each event (same index as {@linkcode events}), from `now`. */
  readonly times: number[] = [];
  /** Lines that were not JSON objects (kept for diagnostics, at most 1000). */
  readonly rawLines: string[] = [];
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;
  #ended = false;
  #waiters = new Set<Waiter>();
  #now: () => number;
  #maxEvents: number;

  /**
   * @param stream The byte stream to read (a child's stdout).
   * @param now Clock in milliseconds, used to stamp events.
   * @param maxEvents Events kept at most; later ones are still matched against waiters.
   */
  constructor(
    stream: ReadableStream<Uint8Array>,
    now: () => number = () => performance.now(),
    maxEvents = 100_000,
  ) {
    this.#now = now;
    this.#maxEvents = maxEvents;
    this.done = this.#pump(stream);
  }

  /** True once the stream has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const line of readLines(stream)) {
        const event = parseObject(line);
        if (event === undefined) {
          if (this.rawLines.length < 1000 && line.trim() !== "") this.rawLines.push(line);
          continue;
        }
        if (this.events.length < this.#maxEvents) {
          this.events.push(event);
          this.times.push(this.#now());
        }
        for (const waiter of [...this.#waiters]) {
          if (waiter.predicate(event)) {
            this.#settle(waiter);
            waiter.resolve(event);
          }
        }
      }
    } catch {
      // A stream torn down under us ends like a closed one.
    } finally {
      this.#ended = true;
      for (const waiter of [...this.#waiters]) {
        this.#settle(waiter);
        waiter.reject(new EventTimeoutError(waiter.description, waiter.timeoutMs, true));
      }
    }
  }

  #settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiters.delete(waiter);
  }

  /**
   * The first event (already seen or still to come) that matches, or an
   * {@linkcode EventTimeoutError} after `timeoutMs`.
   *
   * @example
   * ```ts
   * const log = new EventLog(new Blob(['{"n":1}\n{"n":2}\n']).stream());
   * const two = await log.waitFor((e) => e.n === 2, 1000, "n=2");
   * ```
   */
  waitFor(
    predicate: (event: JsonEvent) => boolean,
    timeoutMs: number,
    description: string,
  ): Promise<JsonEvent> {
    const seen = this.events.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return this.waitForNext(predicate, timeoutMs, description);
  }

  /**
   * The next event still to come that matches (events already seen are ignored).
   *
   * @example
   * ```ts
   * const log = new EventLog(new Blob([]).stream());
   * await log.waitForNext(() => true, 10, "anything").catch((e) => console.log(e.ended));
   * ```
   */
  waitForNext(
    predicate: (event: JsonEvent) => boolean,
    timeoutMs: number,
    description: string,
  ): Promise<JsonEvent> {
    if (this.#ended) {
      return Promise.reject(new EventTimeoutError(description, timeoutMs, true));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        description,
        timeoutMs,
        timer: undefined,
      };
      // Registered before the timer is armed: arming a timer may run pending stream work.
      this.#waiters.add(waiter);
      const timer = setTimeout(() => {
        this.#settle(waiter);
        reject(new EventTimeoutError(description, timeoutMs, false));
      }, timeoutMs);
      if (this.#waiters.has(waiter)) waiter.timer = timer;
      else clearTimeout(timer);
    });
  }

  /** The arrival time of the first event that matches, or `undefined`. */
  timeOf(predicate: (event: JsonEvent) => boolean): number | undefined {
    const index = this.events.findIndex(predicate);
    return index < 0 ? undefined : this.times[index];
  }
}
