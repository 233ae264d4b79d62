/**
 * A deterministic simulated network for testing {@linkcode ReliableChannel}: a fake clock, an
 * event queue, and two directions with seeded loss, duplication, delay and jitter (which
 * reorders), whose conditions can change mid-run (a path switch).
 *
 * @module
 */
import type { ReliableChannel } from "./reliable_channel.ts";

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence in [0, 1).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./simulated_network.ts";
 * const random = seededRandom(42);
 * console.log(random() === seededRandom(42)()); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How one direction of the simulated path treats frames. */
export interface LinkConditions {
  /** One-way delay in ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) per frame (reorders frames). */
  jitterMs: number;
  /** Probability a frame is lost. */
  loss: number;
  /** Probability a frame is delivered twice. */
  duplicate: number;
}

interface SimEvent {
  at: number;
  order: number;
  run: () => void;
}

/** The two ends of a simulated path. */
export type End = "a" | "b";

/**
 * Two endpoints joined by a simulated path, on a fake clock.
 *
 * @example
 * ```ts
 * import { ReliableChannel } from "./reliable_channel.ts";
 * import { SimulatedNetwork } from "./simulated_network.ts";
 * const net = new SimulatedNetwork(1, { delayMs: 20, jitterMs: 0, loss: 0, duplicate: 0 });
 * const a = new ReliableChannel({ now: net.now, send: net.sender("a"), deliver: () => {} });
 * ```
 */
export class SimulatedNetwork {
  /** The fake clock (ms); pass it as the channels' `now`. */
  readonly now: () => number;
  readonly #random: () => number;
  readonly #events: SimEvent[] = [];
  readonly #conditions: Record<End, LinkConditions>;
  readonly #receivers: Partial<Record<End, (frame: Uint8Array) => void>> = {};
  readonly #pathEpoch: Record<End, number> = { a: 0, b: 0 };
  #time = 0;
  #order = 0;
  /** Frames put on the wire per sending end. */
  readonly sent: Record<End, number> = { a: 0, b: 0 };

  /**
   * Creates a network whose two directions start with the same conditions.
   *
   * @param seed PRNG seed.
   * @param conditions Conditions of both directions (copied).
   */
  constructor(seed: number, conditions: LinkConditions) {
    this.#random = seededRandom(seed);
    this.#conditions = { a: { ...conditions }, b: { ...conditions } };
    this.now = () => this.#time;
  }

  /**
   * The `send` hook for the channel at `end`: frames go to the other end.
   *
   * @example
   * ```ts
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * const send = net.sender("a");
   * ```
   */
  sender(end: End): (frame: Uint8Array) => void {
    return (frame) => {
      this.sent[end]++;
      const to: End = end === "a" ? "b" : "a";
      const conditions = this.#conditions[end];
      if (this.#random() < conditions.loss) return;
      const copies = this.#random() < conditions.duplicate ? 2 : 1;
      const epoch = this.#pathEpoch[end];
      for (let i = 0; i < copies; i++) {
        const at = this.#time + conditions.delayMs + this.#random() * conditions.jitterMs;
        this.schedule(at, () => {
          if (this.#pathEpoch[end] === epoch) this.#receivers[to]?.(frame.slice());
        });
      }
    };
  }

  /**
   * Sets what happens to frames arriving at `end`.
   *
   * @example
   * ```ts
   * import type { ReliableChannel } from "./reliable_channel.ts";
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * declare const channelB: ReliableChannel;
   * net.attach("b", (frame) => channelB.receive(frame));
   * ```
   */
  attach(end: End, receive: (frame: Uint8Array) => void): void {
    this.#receivers[end] = receive;
  }

  /**
   * Changes the conditions of frames sent from `from` (both directions when omitted). With
   * `dropInFlight`, frames already on the old path are lost (the old path died).
   *
   * @example
   * ```ts
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * net.setConditions({ delayMs: 150, jitterMs: 10, loss: 0, duplicate: 0 }, { dropInFlight: true });
   * ```
   */
  setConditions(
    conditions: LinkConditions,
    options: { from?: End; dropInFlight?: boolean } = {},
  ): void {
    for (const end of options.from ? [options.from] : (["a", "b"] as const)) {
      this.#conditions[end] = { ...conditions };
      if (options.dropInFlight) this.#pathEpoch[end]++;
    }
  }

  /**
   * Runs `action` at time `at`.
   *
   * @example
   * ```ts
   * import type { ReliableChannel } from "./reliable_channel.ts";
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * declare const channel: ReliableChannel;
   * declare const bytes: Uint8Array;
   * net.schedule(1000, () => channel.sendMessage(bytes));
   * ```
   */
  schedule(at: number, run: () => void): void {
    const event = { at: Math.max(at, this.#time), order: this.#order++, run };
    const events = this.#events;
    events.push(event);
    let i = events.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(events[parent], event)) break;
      events[i] = events[parent];
      i = parent;
    }
    events[i] = event;
  }

  /**
   * Advances the clock event by event, ticking the channels at their deadlines, until `done()`
   * holds, nothing is left to do, or `maxTimeMs` / `maxSteps` is reached. Calls `check` after
   * every step. Returns whether `done()` held.
   *
   * @example
   * ```ts
   * import type { ReliableChannel } from "./reliable_channel.ts";
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * declare const a: ReliableChannel;
   * declare const b: ReliableChannel;
   * declare const received: Uint8Array[];
   * const finished = net.run([a, b], () => received.length === 10, { maxTimeMs: 60_000 });
   * ```
   */
  run(
    channels: ReliableChannel[],
    done: () => boolean,
    options: { maxTimeMs: number; maxSteps?: number; check?: () => void },
  ): boolean {
    const maxSteps = options.maxSteps ?? 2_000_000;
    for (let step = 0; step < maxSteps; step++) {
      if (done()) return true;
      if (!this.step(channels, options.maxTimeMs)) return done();
      options.check?.();
    }
    return done();
  }

  /**
   * Advances to the next event or channel deadline (not beyond `maxTimeMs`) and runs it.
   * Returns false when there is nothing left to do before `maxTimeMs`.
   *
   * @example
   * ```ts
   * import type { ReliableChannel } from "./reliable_channel.ts";
   * import type { SimulatedNetwork } from "./simulated_network.ts";
   * declare const net: SimulatedNetwork;
   * declare const a: ReliableChannel;
   * declare const b: ReliableChannel;
   * declare let done: boolean;
   * declare function flushCrypto(): Promise<void>;
   * while (!done && net.step([a, b], 60_000)) await flushCrypto();
   * ```
   */
  step(channels: ReliableChannel[], maxTimeMs: number): boolean {
    let next = this.#events[0]?.at;
    for (const channel of channels) {
      const deadline = channel.nextDeadline();
      if (deadline !== undefined && (next === undefined || deadline < next)) next = deadline;
    }
    if (next === undefined || next > maxTimeMs) return false;
    this.#time = Math.max(this.#time, next);
    const event = this.#events[0];
    if (event !== undefined && event.at <= this.#time) {
      this.#popEvent();
      event.run();
    } else {
      for (const channel of channels) {
        const deadline = channel.nextDeadline();
        if (deadline !== undefined && deadline <= this.#time) channel.tick();
      }
    }
    return true;
  }

  #popEvent(): void {
    const events = this.#events;
    const last = events.pop() as SimEvent;
    if (events.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= events.length) break;
      const right = left + 1;
      const child = right < events.length && before(events[right], events[left]) ? right : left;
      if (before(last, events[child])) break;
      events[i] = events[child];
      i = child;
    }
    events[i] = last;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.at < y.at || (x.at === y.at && x.order < y.order);
}
