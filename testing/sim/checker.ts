/**
 * The invariant checker: what every client must guarantee whatever the network does (issue 9,
 * §2). It reads a stream of observations — sends, outcomes, printed messages, process deaths,
 * probes and path states at check times — and reports every violation with its virtual time.
 *
 * 1. Every `send` ends with exactly one outcome at the sender — `delivered` (the peer has it),
 *    `failed` (it certainly never left), `unconfirmed` — and never `failed` for a message the
 *    peer printed; `delivered` means the peer printed it. A send whose process was killed before
 *    its outcome may end with none (its process is gone), never with two.
 * 2. The receiver prints each message at most once and in send order, across re-handshakes,
 *    path switches and restarts of either side, and only messages that were sent.
 * 3. Once the world is clear of faults, a message sent after `settleMs` is printed within
 *    `checkMs` (the link is usable again without any command).
 * 4. At that moment a direct-capable pair is `direct` on both sides.
 *
 * Messages are identified by their text, `"<from>><to>#<seq>"`, which the workload makes unique
 * and whose sequence number gives the send order of each ordered pair.
 *
 * @module
 */

/** What a send may end with. */
export type Outcome = "delivered" | "failed" | "unconfirmed";

/** A peer's path state (issue 9 §3: typed, not a display string). */
export type PathState = "direct" | "relayed" | "mixed" | "none";

/** One invariant violation. */
export interface Violation {
  /** Which invariant: `outcome`, `order`, `usable`, `direct`. */
  invariant: "outcome" | "order" | "usable" | "direct";
  /** Virtual time it was detected, ms. */
  at: number;
  /** What happened. */
  detail: string;
}

interface SendRecord {
  tag: string;
  from: string;
  to: string;
  seq: number;
  incarnation: number;
  messageId: number | undefined;
  at: number;
  outcome: Outcome | undefined;
  outcomeAt: number;
  probeDeadline: number | undefined;
}

/**
 * Builds the text of the `seq`-th message from `from` to `to`.
 *
 * @example
 * ```ts
 * console.log(messageText("a", "b", 7)); // "a>b#7"
 * ```
 */
export function messageText(from: string, to: string, seq: number): string {
  return `${from}>${to}#${seq}`;
}

function ms(time: number): string {
  return `${time.toFixed(1)} ms`;
}

function parseText(text: string): { from: string; to: string; seq: number } | undefined {
  const match = /^([a-z]+)>([a-z]+)#(\d+)$/.exec(text);
  return match ? { from: match[1], to: match[2], seq: Number(match[3]) } : undefined;
}

/**
 * Collects observations and checks the invariants.
 *
 * @example
 * ```ts
 * const checker = new InvariantChecker();
 * checker.sent(0, "a", 1, "b", messageText("a", "b", 1), 1);
 * checker.printed(20, "b", "a", messageText("a", "b", 1));
 * checker.outcome(40, "a", 1, 1, "failed"); // but b printed it
 * checker.finish(60_000, (node) => node === "a" ? 1 : 1);
 * console.log(checker.violations[0].invariant); // "outcome"
 * ```
 */
export class InvariantChecker {
  /** Every violation found, in order. */
  readonly violations: Violation[] = [];
  readonly #sends = new Map<string, SendRecord>();
  readonly #byId = new Map<string, SendRecord>();
  readonly #printed = new Map<string, number>(); // tag → time first printed
  readonly #lastSeq = new Map<string, number>(); // "from>to" → last printed seq
  readonly #killedAt = new Map<string, number>(); // "node#incarnation" → time
  // Outcomes reported before `send` returned their ID (an error emitted inside `send`).
  readonly #early = new Map<string, Array<{ at: number; outcome: Outcome }>>();
  /** Counts for reports. */
  readonly counts = { sent: 0, delivered: 0, failed: 0, unconfirmed: 0, printed: 0 };

  /** Records a send (`messageId` undefined: refused at once, an implied `failed`). */
  sent(
    at: number,
    from: string,
    incarnation: number,
    to: string,
    text: string,
    messageId: number | undefined,
    probeDeadline?: number,
  ): void {
    const parsed = parseText(text);
    if (!parsed) throw new Error(`workload text ${text} is not a message tag`);
    const record: SendRecord = {
      tag: text,
      from,
      to,
      seq: parsed.seq,
      incarnation,
      messageId,
      at,
      outcome: undefined,
      outcomeAt: 0,
      probeDeadline,
    };
    this.#sends.set(text, record);
    this.counts.sent++;
    if (messageId === undefined) {
      this.#setOutcome(record, at, "failed");
      return;
    }
    const key = `${from}#${incarnation}#${messageId}`;
    if (this.#byId.has(key)) {
      this.#violate("outcome", at, `${from} reused message ID ${messageId} for ${text}`);
    }
    this.#byId.set(key, record);
    const early = this.#early.get(key);
    this.#early.delete(key);
    for (const { at: when, outcome } of early ?? []) this.#setOutcome(record, when, outcome);
  }

  /** Records an outcome reported by `node`'s process `incarnation`. */
  outcome(
    at: number,
    node: string,
    incarnation: number,
    messageId: number,
    outcome: Outcome,
  ): void {
    const key = `${node}#${incarnation}#${messageId}`;
    const record = this.#byId.get(key);
    if (record) {
      this.#setOutcome(record, at, outcome);
      return;
    }
    // Either `send` has not returned this ID yet (an outcome emitted inside `send`), or it is a
    // message of an earlier incarnation (a restored outbox), which is checked through printing
    // only. Keep a few for the former.
    const early = this.#early.get(key) ?? [];
    if (early.length < 4) early.push({ at, outcome });
    this.#early.set(key, early);
  }

  /** Records a message printed by `node`, from the node `from`. */
  printed(at: number, node: string, from: string, text: string): void {
    this.counts.printed++;
    const parsed = parseText(text);
    const record = this.#sends.get(text);
    if (!parsed || !record) {
      this.#violate("order", at, `${node} printed ${JSON.stringify(text)}, which nobody sent`);
      return;
    }
    if (parsed.to !== node || parsed.from !== from) {
      this.#violate("order", at, `${node} printed ${text} as coming from ${from}`);
      return;
    }
    const pair = `${parsed.from}>${parsed.to}`;
    const last = this.#lastSeq.get(pair) ?? 0;
    if (this.#printed.has(text)) {
      this.#violate("order", at, `${node} printed ${text} twice`);
    } else if (parsed.seq <= last) {
      this.#violate("order", at, `${node} printed ${text} after #${last} (out of order)`);
    }
    if (!this.#printed.has(text)) this.#printed.set(text, at);
    this.#lastSeq.set(pair, Math.max(last, parsed.seq));
    if (record.outcome === "failed") {
      this.#violate("outcome", at, `${text} was reported failed, yet ${node} printed it`);
    }
    if (record.probeDeadline !== undefined && at > record.probeDeadline) {
      this.#violate(
        "usable",
        at,
        `probe ${text} sent at ${ms(record.at)} printed only at ${ms(at)} (deadline ${
          ms(record.probeDeadline)
        })`,
      );
    }
  }

  /** Records that `node`'s process `incarnation` was killed. */
  killed(at: number, node: string, incarnation: number): void {
    this.#killedAt.set(`${node}#${incarnation}`, at);
  }

  /** Checks a probe's deadline (call at the deadline). */
  checkProbe(at: number, text: string): void {
    const record = this.#sends.get(text);
    if (!record || this.#printed.has(text)) return;
    this.#violate(
      "usable",
      at,
      `link ${record.from}>${record.to} not usable: probe ${text} sent at ${
        ms(record.at)
      } not printed by ${ms(at)}`,
    );
  }

  /** Checks path states of a direct-capable pair at a check time. */
  checkDirect(at: number, a: string, b: string, stateAB: PathState, stateBA: PathState): void {
    if (stateAB === "direct" && stateBA === "direct") return;
    this.#violate(
      "direct",
      at,
      `direct-capable pair ${a}-${b} not direct after the impairment ended: ${a} sees ${stateAB}, ${b} sees ${stateBA}`,
    );
  }

  /**
   * Final checks at the end of the run: every send of a process still alive has an outcome,
   * and every `delivered` message was printed.
   */
  finish(at: number, incarnationOf: (node: string) => number): void {
    for (const record of this.#sends.values()) {
      if (record.outcome === "delivered" && !this.#printed.has(record.tag)) {
        this.#violate("outcome", at, `${record.tag} reported delivered but never printed`);
      }
      if (record.outcome !== undefined) continue;
      if (this.#killedAt.has(`${record.from}#${record.incarnation}`)) continue;
      if (incarnationOf(record.from) !== record.incarnation) continue;
      this.#violate(
        "outcome",
        at,
        `${record.tag} (message ${record.messageId} sent at ${ms(record.at)}) has no outcome`,
      );
    }
  }

  #setOutcome(record: SendRecord, at: number, outcome: Outcome): void {
    this.counts[outcome]++;
    if (record.outcome !== undefined) {
      this.#violate(
        "outcome",
        at,
        `${record.tag} got a second outcome ${outcome} (first ${record.outcome} at ${record.outcomeAt} ms)`,
      );
      return;
    }
    record.outcome = outcome;
    record.outcomeAt = at;
    if (outcome === "failed" && this.#printed.has(record.tag)) {
      this.#violate("outcome", at, `${record.tag} reported failed, yet it was printed`);
    }
  }

  #violate(invariant: Violation["invariant"], at: number, detail: string): void {
    this.violations.push({ invariant, at, detail });
  }
}
