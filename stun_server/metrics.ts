/**
 * The server's counters and gauges, in one place every part writes to with plain additions (no
 * allocation, no library call on the hot path). The Prometheus exporter (`metrics_http.ts`)
 * and the status page read them at scrape time; SIGHUP and shutdown log them.
 *
 * Why plain numbers: the relay forwards hundreds of thousands of frames per second; a counter
 * bump there must cost no more than the `relayedFrames++` it replaces.
 *
 * @module
 */

/**
 * A counter split by one label (a reason, an outcome). Labels are a small fixed set chosen by
 * the server, never taken from client input.
 *
 * @example
 * ```ts
 * const refused = new LabeledCounter();
 * refused.inc("relay-quota");
 * refused.inc("relay-quota", 2);
 * console.log(refused.get("relay-quota"), refused.total); // 3 3
 * ```
 */
export class LabeledCounter {
  readonly #values = new Map<string, number>();

  /** Adds `by` (default 1) to `label`. */
  inc(label: string, by = 1): void {
    this.#values.set(label, (this.#values.get(label) ?? 0) + by);
  }

  /** Sets `label` to an absolute value (for counters kept elsewhere and copied at scrape). */
  set(label: string, value: number): void {
    this.#values.set(label, value);
  }

  /** The count of `label` (0 if never counted). */
  get(label: string): number {
    return this.#values.get(label) ?? 0;
  }

  /** The sum over all labels. */
  get total(): number {
    let sum = 0;
    for (const value of this.#values.values()) sum += value;
    return sum;
  }

  /** Every label and its count. */
  entries(): [string, number][] {
    return [...this.#values.entries()];
  }

  /** The counts as a plain object (for logs and JSON). */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#values);
  }
}

/** Live values the metrics read from the server when asked (gauges). */
export interface GaugeSources {
  /** Open signaling connections. */
  connected(): number;
  /** Registered clients. */
  registered(): number;
  /** Bytes queued for writing to clients (relay frames and control messages). */
  queuedBytes(): number;
}

/** A snapshot of every metric, as the status page and SIGHUP show it. */
export interface MetricsSnapshot {
  /** Server version. */
  version: string;
  /** Seconds since the server started. */
  uptimeSeconds: number;
  /** Open signaling connections now. */
  connected: number;
  /** Registered clients now. */
  registered: number;
  /** Bytes queued for clients now. */
  queuedBytes: number;
  /** Connections by outcome: `accepted`, or the refusal reason. */
  connections: Record<string, number>;
  /** Registrations by outcome: `accepted`, or the refusal reason. */
  registrations: Record<string, number>;
  /** Introductions (one per `connect` brokered). */
  introductions: number;
  /** `candidates` updates sent to already introduced peers. */
  candidateUpdates: number;
  /** Relay frames forwarded. */
  relayFrames: number;
  /** Relay payload bytes forwarded. */
  relayBytes: number;
  /** Relay frames refused, by reason. */
  relayRefused: Record<string, number>;
  /** Registered clients dropped for heartbeat silence. */
  heartbeatTimeouts: number;
  /** Protocol errors by code. */
  protocolErrors: Record<string, number>;
  /** Closed connections by reason. */
  closes: Record<string, number>;
  /** STUN requests answered, by outcome (`success`, `error`). */
  stunAnswered: Record<string, number>;
  /** STUN datagrams dropped, by reason. */
  stunDropped: Record<string, number>;
  /** TURN allocations now. */
  turnAllocations: number;
  /** TURN requests answered, by outcome (`success`, or the error code). */
  turnRequests: Record<string, number>;
  /** TURN packets relayed, by direction (`to-peer`, `to-client`). */
  turnRelayedPackets: Record<string, number>;
  /** TURN payload bytes relayed, by direction. */
  turnRelayedBytes: Record<string, number>;
  /** TURN packets dropped, by reason. */
  turnDropped: Record<string, number>;
  /** Log lines dropped because the log destination failed or was too slow. */
  logLinesDropped: number;
}

/**
 * Every counter of a running server. The parts of the server increment the fields directly;
 * gauges come from {@linkcode GaugeSources} given by the server.
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics("0.1.0", () => 0);
 * metrics.registrations.inc("accepted");
 * metrics.relayFrames++;
 * console.log(metrics.snapshot().registrations); // { accepted: 1 }
 * ```
 */
export class ServerMetrics {
  /** Server version (shown on the status page, `p2p_build_info`). */
  readonly version: string;
  readonly #clock: () => number;
  readonly #startedAt: number;
  #gauges: GaugeSources = { connected: () => 0, registered: () => 0, queuedBytes: () => 0 };
  readonly #collectors: (() => void)[] = [];

  /** Connections by outcome (`accepted`, `server-full`, `too-many-connections`). */
  readonly connections = new LabeledCounter();
  /** Registrations by outcome (`accepted`, `auth-failed`, `server-full`, ...). */
  readonly registrations = new LabeledCounter();
  /** Introductions brokered. */
  introductions = 0;
  /** `candidates` updates sent. */
  candidateUpdates = 0;
  /** Relay frames forwarded. */
  relayFrames = 0;
  /** Of those, frames sent on to a client on another cluster node (or sibling worker). */
  relayFramesToNodes = 0;
  /** Relay payload bytes forwarded. */
  relayBytes = 0;
  /** Relay refusals by reason. */
  readonly relayRefused = new LabeledCounter();
  /** Heartbeat timeouts. */
  heartbeatTimeouts = 0;
  /** Protocol errors by code. */
  readonly protocolErrors = new LabeledCounter();
  /** Closed connections by reason. */
  readonly closes = new LabeledCounter();
  /** STUN requests answered by outcome (`success`, `error`): the STUN service's counter API. */
  readonly stunAnswered = new LabeledCounter();
  /** STUN datagrams dropped by reason: the STUN service's counter API. */
  readonly stunDropped = new LabeledCounter();
  /** TURN allocations now (copied from the TURN server at every read). */
  turnAllocations = 0;
  /** TURN requests by outcome (`success`, or the error code). */
  readonly turnRequests = new LabeledCounter();
  /** TURN packets relayed by direction (`to-peer`, `to-client`). */
  readonly turnRelayedPackets = new LabeledCounter();
  /** TURN payload bytes relayed by direction. */
  readonly turnRelayedBytes = new LabeledCounter();
  /** TURN packets dropped by reason. */
  readonly turnDropped = new LabeledCounter();
  /** Log lines dropped. */
  logLinesDropped = 0;

  /**
   * @param version The server's version.
   * @param clock Monotonic milliseconds (the runtime's `now`), for the uptime.
   */
  constructor(version: string, clock: () => number) {
    this.version = version;
    this.#clock = clock;
    this.#startedAt = clock();
  }

  /** Connects the gauges to the running server. */
  setGauges(sources: GaugeSources): void {
    this.#gauges = sources;
  }

  /**
   * Registers a function run before every read of the metrics (to copy counters kept
   * elsewhere, such as the STUN service's, into these).
   */
  addCollector(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** Runs the collectors (called by {@linkcode ServerMetrics.snapshot} and the exporter). */
  collect(): void {
    for (const collect of this.#collectors) {
      try {
        collect();
      } catch {
        // a broken collector must not break a scrape
      }
    }
  }

  /** Seconds since start. */
  get uptimeSeconds(): number {
    return (this.#clock() - this.#startedAt) / 1000;
  }

  /** The gauges now. */
  get gauges(): GaugeSources {
    return this.#gauges;
  }

  /** Every metric now. */
  snapshot(): MetricsSnapshot {
    this.collect();
    return {
      version: this.version,
      uptimeSeconds: Math.round(this.uptimeSeconds * 1000) / 1000,
      connected: this.#gauges.connected(),
      registered: this.#gauges.registered(),
      queuedBytes: this.#gauges.queuedBytes(),
      connections: this.connections.toJSON(),
      registrations: this.registrations.toJSON(),
      introductions: this.introductions,
      candidateUpdates: this.candidateUpdates,
      relayFrames: this.relayFrames,
      relayBytes: this.relayBytes,
      relayRefused: this.relayRefused.toJSON(),
      heartbeatTimeouts: this.heartbeatTimeouts,
      protocolErrors: this.protocolErrors.toJSON(),
      closes: this.closes.toJSON(),
      stunAnswered: this.stunAnswered.toJSON(),
      stunDropped: this.stunDropped.toJSON(),
      turnAllocations: this.turnAllocations,
      turnRequests: this.turnRequests.toJSON(),
      turnRelayedPackets: this.turnRelayedPackets.toJSON(),
      turnRelayedBytes: this.turnRelayedBytes.toJSON(),
      turnDropped: this.turnDropped.toJSON(),
      logLinesDropped: this.logLinesDropped,
    };
  }
}
