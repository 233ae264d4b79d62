/**
 * An in-memory publish/subscribe broker for cluster tests on virtual time: what NATS does for the
 * cluster (subjects, delivery in publish order, echo to the publisher's own subscriptions), with
 * a latency on the runtime's timers, and a switch that takes the broker down and brings it back
 * (every transport sees `onStatus(false)`, publishes fail, then `onStatus(true)`).
 *
 * @module
 */
import type { Runtime } from "../shared/runtime/mod.ts";
import type { BusTransport } from "../stun_server/cluster/bus.ts";

/**
 * The broker.
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "./virtual_runtime.ts";
 *
 * const runtime = new VirtualRuntime();
 * const hub = new MemoryBusHub(runtime);
 * const a = hub.connect();
 * const b = hub.connect();
 * const got: number[] = [];
 * b.subscribe("x", (payload) => got.push(payload[0]));
 * a.publish("x", new Uint8Array([7]));
 * await runtime.advance(1);
 * console.log(got); // [7]
 * ```
 */
export class MemoryBusHub {
  readonly #runtime: Runtime;
  readonly #latencyMs: number;
  readonly #transports = new Set<MemoryBusTransport>();
  #up = true;
  /** Payloads delivered so far. */
  delivered = 0;

  /** @param latencyMs Delivery delay (default 0.5 ms). */
  constructor(runtime: Runtime, latencyMs = 0.5) {
    this.#runtime = runtime;
    this.#latencyMs = latencyMs;
  }

  /** Whether the broker is up. */
  get up(): boolean {
    return this.#up;
  }

  /** A new client of the broker. */
  connect(): MemoryBusTransport {
    const transport = new MemoryBusTransport(this);
    this.#transports.add(transport);
    return transport;
  }

  /** Takes the broker down (`false`) or brings it back (`true`); transports are told. */
  setUp(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    for (const transport of this.#transports) transport.notify(up);
  }

  /**
   * Silently loses everything `transport` publishes while `muted` (a frozen or partitioned
   * process: it believes it is connected, nobody hears it).
   */
  mute(transport: MemoryBusTransport, muted: boolean): void {
    transport.muted = muted;
  }

  /** @internal */
  deliver(subject: string, payload: Uint8Array): void {
    const copy = payload.slice();
    this.#runtime.setTimer(() => {
      if (!this.#up) return; // in flight when the broker went down: lost, as with NATS
      for (const transport of this.#transports) {
        const listeners = transport.listeners.get(subject);
        if (listeners === undefined) continue;
        for (const listener of listeners) {
          this.delivered++;
          listener(copy);
        }
      }
    }, this.#latencyMs);
  }

  /** @internal */
  remove(transport: MemoryBusTransport): void {
    this.#transports.delete(transport);
  }
}

/** One client of a {@linkcode MemoryBusHub}. */
export class MemoryBusTransport implements BusTransport {
  readonly #hub: MemoryBusHub;
  readonly #statusListeners: Array<(connected: boolean) => void> = [];
  /** @internal */
  readonly listeners = new Map<string, Array<(payload: Uint8Array) => void>>();
  #closed = false;
  /** @internal */
  muted = false;

  /** Use {@linkcode MemoryBusHub.connect}. */
  constructor(hub: MemoryBusHub) {
    this.#hub = hub;
  }

  get connected(): boolean {
    return !this.#closed && this.#hub.up;
  }

  publish(subject: string, payload: Uint8Array): boolean {
    if (!this.connected) return false;
    if (this.muted) return true;
    this.#hub.deliver(subject, payload);
    return true;
  }

  subscribe(subject: string, onMessage: (payload: Uint8Array) => void): void {
    const list = this.listeners.get(subject) ?? [];
    list.push(onMessage);
    this.listeners.set(subject, list);
  }

  onStatus(listener: (connected: boolean) => void): void {
    this.#statusListeners.push(listener);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.listeners.clear();
    this.#hub.remove(this);
    return Promise.resolve();
  }

  /** @internal */
  notify(up: boolean): void {
    if (this.#closed) return;
    for (const listener of this.#statusListeners) listener(up);
  }
}
