/**
 * Presence of contacts: the server never announces who is online (it must not tell a stranger
 * whether an ID is online), so a client learns that a contact came online by asking the server to
 * introduce it, quietly: an `unknown-peer` answer means offline and is not shown; an introduction
 * means online, and the client connects (and announces it, `alice is online`).
 *
 * This module only decides *when* to ask, on the clock it is given: every offline contact right
 * after registration (a contact that starts later asks us, so both sides see each other at once),
 * then again after {@linkcode PresenceOptions.firstRetryMs}, doubling up to
 * {@linkcode PresenceOptions.maxRetryMs}; at most one question per
 * {@linkcode PresenceOptions.minGapMs} overall, so 1,000 contacts cost the server at most a few
 * requests per second. A contact seen online starts over when it goes offline.
 *
 * @module
 */

/** Settings of a {@linkcode PresenceWatcher}. */
export interface PresenceOptions {
  /** Asks the server about one peer (a quiet connect). */
  probe: (peer: string) => void;
  /** First retry after an offline answer, ms (default 30 s). */
  firstRetryMs?: number;
  /** Longest retry interval, ms (default 5 min). */
  maxRetryMs?: number;
  /** Least time between two questions overall, ms (default 250). */
  minGapMs?: number;
}

interface Schedule {
  dueAt: number;
  intervalMs: number;
}

/**
 * Decides which offline contacts to ask about, and when.
 *
 * @example
 * ```ts
 * const asked: string[] = [];
 * const watcher = new PresenceWatcher({ probe: (peer) => asked.push(peer) });
 * watcher.tick(0, ["ab".repeat(20)], new Set());
 * asked.length; // 1
 * ```
 */
export class PresenceWatcher {
  readonly #probe: (peer: string) => void;
  readonly #firstRetryMs: number;
  readonly #maxRetryMs: number;
  readonly #minGapMs: number;
  readonly #schedules = new Map<string, Schedule>();
  #lastProbeAt = -Infinity;

  /**
   * Creates a watcher.
   *
   * @example
   * ```ts
   * new PresenceWatcher({ probe: () => {}, firstRetryMs: 10_000 });
   * ```
   */
  constructor(options: PresenceOptions) {
    this.#probe = options.probe;
    this.#firstRetryMs = options.firstRetryMs ?? 30_000;
    this.#maxRetryMs = options.maxRetryMs ?? 300_000;
    this.#minGapMs = options.minGapMs ?? 250;
  }

  /**
   * Call periodically while registered: asks about (at most) the contacts due, paced.
   * `contacts` are the contact IDs, `online` those connected (or connecting) now.
   *
   * @example
   * ```ts
   * const watcher = new PresenceWatcher({ probe: console.log });
   * watcher.tick(1000, ["ab".repeat(20)], new Set());
   * ```
   */
  tick(now: number, contacts: Iterable<string>, online: ReadonlySet<string>): void {
    const current = new Set(contacts);
    for (const peer of this.#schedules.keys()) {
      if (!current.has(peer) || online.has(peer)) this.#schedules.delete(peer);
    }
    for (const peer of current) {
      if (online.has(peer)) continue;
      const schedule = this.#schedules.get(peer);
      if (!schedule) {
        this.#schedules.set(peer, { dueAt: now, intervalMs: this.#firstRetryMs });
      }
    }
    for (const [peer, schedule] of this.#schedules) {
      if (schedule.dueAt > now) continue;
      if (now - this.#lastProbeAt < this.#minGapMs) return;
      this.#lastProbeAt = now;
      schedule.dueAt = now + schedule.intervalMs;
      schedule.intervalMs = Math.min(this.#maxRetryMs, schedule.intervalMs * 2);
      // Move it to the end, so contacts take turns.
      this.#schedules.delete(peer);
      this.#schedules.set(peer, schedule);
      this.#probe(peer);
    }
  }

  /**
   * Forgets every schedule (after losing the server: the next registration asks again at once).
   *
   * @example
   * ```ts
   * new PresenceWatcher({ probe: () => {} }).reset();
   * ```
   */
  reset(): void {
    this.#schedules.clear();
  }
}
