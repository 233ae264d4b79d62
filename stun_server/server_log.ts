/**
 * The server's log front: the story of each connection at INFO, and refusals at WARNING with a
 * rate limit per kind, so a flood of bad registrations writes a handful of lines and a count of
 * what was suppressed instead of 72,000 lines in 20 s.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";

/** Refusal lines of one kind allowed per window. */
export const REFUSALS_PER_WINDOW = 5;
/** The rate-limit window, in milliseconds. */
export const REFUSAL_WINDOW_MS = 10_000;

interface KindState {
  windowStart: number;
  count: number;
  suppressed: number;
}

/**
 * Decides whether a line of some kind may be written now: at most `perWindow` per `windowMs`
 * for each kind. The first line after suppression learns how many were suppressed.
 *
 * @example
 * ```ts
 * let now = 0;
 * const limiter = new LogLimiter(() => now, 2, 1000);
 * console.log(limiter.admit("x"), limiter.admit("x"), limiter.admit("x")); // 0 0 null
 * now = 1000;
 * console.log(limiter.admit("x")); // 1 (one was suppressed before this one)
 * ```
 */
export class LogLimiter {
  readonly #clock: () => number;
  readonly #perWindow: number;
  readonly #windowMs: number;
  readonly #kinds = new Map<string, KindState>();

  /**
   * @param clock Milliseconds (monotonic).
   * @param perWindow Lines allowed per window and kind.
   * @param windowMs Window length.
   */
  constructor(clock: () => number, perWindow = REFUSALS_PER_WINDOW, windowMs = REFUSAL_WINDOW_MS) {
    this.#clock = clock;
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  /** Null when this line is suppressed; else how many of its kind were suppressed before it. */
  admit(kind: string): number | null {
    const now = this.#clock();
    let state = this.#kinds.get(kind);
    if (state === undefined) {
      state = { windowStart: now, count: 0, suppressed: 0 };
      this.#kinds.set(kind, state);
    }
    if (now - state.windowStart >= this.#windowMs) {
      state.windowStart = now;
      state.count = 0;
    }
    if (state.count >= this.#perWindow) {
      state.suppressed++;
      return null;
    }
    state.count++;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    return suppressed;
  }

  /** Lines suppressed and not yet reported, by kind. */
  pending(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [kind, state] of this.#kinds) if (state.suppressed > 0) out[kind] = state.suppressed;
    return out;
  }
}

/** Properties of a log line. */
export type LogProperties = Record<string, unknown>;

/**
 * The server's logger: plain levels, plus {@linkcode ServerLog.refusal} for rate-limited
 * WARNING lines.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * const log = new ServerLog(getLogger(["stun-server"]), () => 0);
 * log.refusal("server-full", "refused {host}: the server is full", { host: "192.0.2.1" });
 * ```
 */
export class ServerLog {
  readonly #logger: Logger;
  readonly #limiter: LogLimiter;

  /**
   * @param logger Where lines go.
   * @param clock Milliseconds (the runtime's `now`), for the rate limit.
   */
  constructor(logger: Logger, clock: () => number) {
    this.#logger = logger;
    this.#limiter = new LogLimiter(clock);
  }

  /** The underlying logger. */
  get logger(): Logger {
    return this.#logger;
  }

  /** A DEBUG line. */
  debug(message: string, properties: LogProperties = {}): void {
    this.#logger.debug(message, properties);
  }

  /** An INFO line: the story of a connection. */
  info(message: string, properties: LogProperties = {}): void {
    this.#logger.info(message, properties);
  }

  /** A WARNING line that is not rate limited (rare events: accept failures, STUN socket errors). */
  warn(message: string, properties: LogProperties = {}): void {
    this.#logger.warn(message, properties);
  }

  /** An ERROR line (a bug). */
  error(message: string, properties: LogProperties = {}): void {
    this.#logger.error(message, properties);
  }

  /**
   * A refusal at WARNING, at most {@linkcode REFUSALS_PER_WINDOW} per kind per
   * {@linkcode REFUSAL_WINDOW_MS}; the first line after a suppression says how many of its kind
   * were suppressed.
   */
  refusal(kind: string, message: string, properties: LogProperties = {}): void {
    const suppressed = this.#limiter.admit(kind);
    if (suppressed === null) return;
    if (suppressed > 0) {
      this.#logger.warn(`${message} ({suppressed} similar suppressed)`, {
        ...properties,
        kind,
        suppressed,
      });
    } else {
      this.#logger.warn(message, { ...properties, kind });
    }
  }

  /** Refusal lines suppressed and not yet reported, by kind. */
  suppressed(): Record<string, number> {
    return this.#limiter.pending();
  }
}
