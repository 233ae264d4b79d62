/**
 * A {@linkcode Runtime} on virtual time, for tests and the simulator: timers fire only when the
 * test advances the clock, randomness is seeded, and the network is in memory
 * ({@linkcode MemoryNetwork}). The same seed and the same calls give the same run.
 *
 * Between two timer firings, `advance` lets every promise chain settle (a host macrotask turn),
 * so code awaiting a socket or a timer sees the world as it would in a real process, but without
 * waiting: a 35 s freeze takes microseconds.
 *
 * Real asynchronous host work (WebCrypto's thread-pool operations, file I/O) is not virtual:
 * code run on this runtime should keep its per-packet work synchronous, or the test should await
 * it explicitly with {@linkcode VirtualRuntime.settle}.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { NetworkRuntime, Runtime, TimerId } from "../shared/runtime/runtime.ts";
import { MemoryNetwork } from "./memory_network.ts";
import { seededRandom } from "../p2p_client/reliable/simulated_network.ts";
import { EventHeap, type HeapEvent } from "./sim/event_heap.ts";

interface Timer extends HeapEvent {
  id: TimerId;
  callback: () => void;
}

/** Options of a {@linkcode VirtualRuntime}. */
export interface VirtualRuntimeOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  /** Wall-clock time at virtual time 0, ms since the epoch (default 2026-01-01T00:00:00Z). */
  wallClockStart?: number;
  /** The network (default: a fresh {@linkcode MemoryNetwork} on this runtime's timers). */
  net?: NetworkRuntime;
}

/** Lets the host run every ready microtask and immediate (one macrotask turn). */
function hostTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Virtual clock, timers, seeded randomness and an in-memory network.
 *
 * @example
 * ```ts
 * const runtime = new VirtualRuntime({ seed: 7 });
 * let fired = 0;
 * runtime.setTimer(() => fired++, 35_000);
 * await runtime.advance(35_000);
 * console.log(fired, runtime.now()); // 1 35000
 * ```
 */
export class VirtualRuntime implements Runtime {
  readonly net: NetworkRuntime;
  readonly #random: () => number;
  readonly #wallClockStart: number;
  readonly #timers = new Map<TimerId, Timer>();
  readonly #heap = new EventHeap<Timer>();
  #deferred: Array<() => void> = [];
  #time = 0;
  #nextId = 1;

  /** @param options Seed, wall-clock start and network. */
  constructor(options: VirtualRuntimeOptions = {}) {
    this.#random = seededRandom(options.seed ?? 1);
    this.#wallClockStart = options.wallClockStart ?? Date.UTC(2026, 0, 1);
    this.net = options.net ?? new MemoryNetwork(this);
  }

  now(): number {
    return this.#time;
  }

  wallClock(): number {
    return this.#wallClockStart + this.#time;
  }

  setTimer(callback: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const delay = Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0;
    const timer = { id, at: this.#time + delay, order: 0, cancelled: false, callback };
    this.#timers.set(id, this.#heap.push(timer));
    return id;
  }

  clearTimer(id: TimerId | undefined): void {
    if (id === undefined) return;
    const timer = this.#timers.get(id);
    if (!timer) return;
    this.#timers.delete(id);
    this.#heap.cancel(timer);
  }

  defer(callback: () => void): void {
    this.#deferred.push(callback);
  }

  random(): number {
    return this.#random();
  }

  randomBytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(this.#random() * 256);
    return bytes;
  }

  /**
   * A runtime for one simulated host: this clock, timers and randomness, and the network as
   * seen from `address` (requires the default {@linkcode MemoryNetwork}).
   */
  forHost(address: string): Runtime {
    if (!(this.net instanceof MemoryNetwork)) throw new Error("forHost needs a MemoryNetwork");
    const net = this.net.host(address);
    return {
      now: () => this.now(),
      wallClock: () => this.wallClock(),
      setTimer: (callback, delayMs) => this.setTimer(callback, delayMs),
      clearTimer: (id) => this.clearTimer(id),
      defer: (callback) => this.defer(callback),
      random: () => this.random(),
      randomBytes: (length) => this.randomBytes(length),
      net,
    };
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** The virtual time of the earliest pending timer, or `Infinity`. */
  nextTimerAt(): number {
    return this.#heap.peek()?.at ?? Infinity;
  }

  /**
   * Runs deferred callbacks and lets promise chains settle, without moving the clock, until
   * nothing more is deferred (bounded by `maxTurns`).
   */
  async settle(maxTurns = 1000): Promise<void> {
    for (let turn = 0; turn < maxTurns; turn++) {
      await hostTurn();
      if (this.#deferred.length === 0) {
        await hostTurn();
        if (this.#deferred.length === 0) return;
      }
      const batch = this.#deferred;
      this.#deferred = [];
      for (const callback of batch) callback();
    }
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way in deadline
   * order (ties in the order they were set), settling after each.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#time + ms);
  }

  /** Moves the clock forward to `time` (no-op if in the past), as {@linkcode advance}. */
  async advanceTo(time: number): Promise<void> {
    await this.settle();
    for (;;) {
      const next = this.#popDue(time);
      if (!next) break;
      this.#time = Math.max(this.#time, next.at);
      next.callback();
      await this.settle();
    }
    this.#time = Math.max(this.#time, time);
  }

  /**
   * Advances in steps of `stepMs` until `condition()` holds or `limitMs` of virtual time pass;
   * returns whether it held.
   */
  async runUntil(condition: () => boolean, limitMs: number, stepMs = 10): Promise<boolean> {
    const end = this.#time + limitMs;
    await this.settle();
    while (!condition()) {
      if (this.#time >= end) return false;
      await this.advanceTo(Math.min(end, this.#time + stepMs));
    }
    return true;
  }

  /**
   * Awaits `promise` while moving the clock in `stepMs` steps with a real host turn between
   * steps, so work that is not virtual (WebCrypto signing and verifying) completes meanwhile.
   * Rejects when `limitMs` of virtual time pass first.
   *
   * @example
   * ```ts
   * const runtime = new VirtualRuntime();
   * const key = await runtime.drive(crypto.subtle.generateKey("Ed25519", false, ["sign"]));
   * console.log(runtime.now() < 1000, key !== undefined); // true true
   * ```
   */
  async drive<T>(promise: Promise<T>, limitMs = 60_000, stepMs = 1): Promise<T> {
    let settled = false;
    promise.then(() => settled = true, () => settled = true);
    const end = this.#time + limitMs;
    await this.settle();
    while (!settled) {
      if (this.#time >= end) throw new Error(`not settled within ${limitMs} ms of virtual time`);
      await new Promise((resolve) => setTimeout(resolve, 0));
      await this.advanceTo(this.#time + stepMs);
    }
    return await promise;
  }

  #popDue(limit: number): Timer | undefined {
    const top = this.#heap.peek();
    if (!top || top.at > limit) return undefined;
    this.#heap.pop();
    this.#timers.delete(top.id);
    return top;
  }
}
