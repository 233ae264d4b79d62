/**
 * Liveness: one sweep timer for every connection (an idle connection has no timer of its own).
 * Each sweep pings registered clients whose heartbeat is due (one shared `ping` frame per sweep),
 * drops those silent for 2.5 heartbeat intervals (`bye timeout`, their peers get
 * `peer-left timeout`), closes connections that did not register in time, and releases closing
 * connections whose linger deadline has passed.
 *
 * A client is dead when it was silent for 2.5 heartbeat intervals *of time the server could
 * listen*: when the sweep timer itself fires late (the process was starved of CPU, or paused by a
 * long collection), the pongs of that time may be sitting unread in the socket buffers, so the
 * lateness of the sweeps within the last dead period is added to the allowance. Measured: three
 * nodes holding 50,000 idle clients on two cores shared with a load of 15-20 dropped 12,125 of one
 * node's 16,667 clients as "silent" while another node registered its share.
 *
 * @module
 */
import { encodeControlFrame, HEARTBEAT_DEAD_FACTOR } from "../../shared/signaling/mod.ts";
import type { ClientConnection } from "./connection.ts";
import type { SignalingContext } from "./context.ts";

/** Bytes a receiver may have queued beyond its relay queue before it is cut off. */
export const CONTROL_SLACK_BYTES = 256 * 1024;

/**
 * The heartbeat sweep.
 *
 * @example
 * ```ts
 * import type { SignalingContext } from "./context.ts";
 * import type { ClientConnection } from "./connection.ts";
 * declare const context: SignalingContext;
 * const connections = new Set<ClientConnection>();
 * const sweep = new LivenessSweep(context, connections, () => {});
 * sweep.start();
 * sweep.stop();
 * ```
 */
export class LivenessSweep {
  readonly #context: SignalingContext;
  readonly #connections: Iterable<ClientConnection>;
  readonly #release: (connection: ClientConnection) => void;
  readonly #intervalMs: number;
  #timer: number | undefined;
  #running = false;
  /** When the last sweep ran (-1: none yet). */
  #lastSweepAt = -1;
  /** Recent sweeps' lateness beyond their interval: [when, ms late], oldest first. */
  #lateness: [number, number][] = [];

  /**
   * @param context The service's shared context.
   * @param connections The open connections.
   * @param release Releases a connection whose linger deadline passed.
   */
  constructor(
    context: SignalingContext,
    connections: Iterable<ClientConnection>,
    release: (connection: ClientConnection) => void,
  ) {
    this.#context = context;
    this.#connections = connections;
    this.#release = release;
    this.#intervalMs = Math.max(10, Math.min(1000, Math.floor(context.limits.heartbeatMs / 4)));
  }

  /** Starts sweeping every `min(1 s, heartbeat / 4)`. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops sweeping. */
  stop(): void {
    this.#running = false;
    this.#context.runtime.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#context.runtime.setTimer(() => {
      if (!this.#running) return;
      this.sweep();
      this.#schedule();
    }, this.#intervalMs);
  }

  /**
   * Records how late this sweep runs and returns the sum of the sweeps' lateness within the last
   * dead period: after a stall, clients get one more dead period of listening before they count
   * as silent; a server that is only ever a little late still times clients out.
   */
  #lateAllowance(now: number): number {
    const deadPeriod = this.#context.limits.heartbeatMs * HEARTBEAT_DEAD_FACTOR;
    if (this.#lastSweepAt >= 0) {
      const late = now - this.#lastSweepAt - this.#intervalMs;
      // Timer jitter of a few ms is not starvation.
      if (late > Math.max(20, this.#intervalMs / 4)) this.#lateness.push([now, late]);
    }
    this.#lastSweepAt = now;
    while (this.#lateness.length > 0 && now - this.#lateness[0][0] > deadPeriod) {
      this.#lateness.shift();
    }
    let sum = 0;
    for (const [, late] of this.#lateness) sum += late;
    return sum;
  }

  /** One sweep over every connection (public for tests). */
  sweep(): void {
    const context = this.#context;
    const { limits, runtime } = context;
    try {
      const now = runtime.now();
      const deadAfter = limits.heartbeatMs * HEARTBEAT_DEAD_FACTOR + this.#lateAllowance(now);
      let ping: Uint8Array | null = null;
      for (const connection of this.#connections) {
        const phase = connection.phase;
        if (phase.name === "closing") {
          if (phase.lingerUntil > 0 && now > phase.lingerUntil) this.#release(connection);
          continue;
        }
        if (phase.name === "closed") continue;
        if (phase.name !== "registered") {
          if (now - connection.connectedAt > limits.registrationTimeoutMs) {
            context.metrics.registrations.inc("timeout");
            context.log.refusal("registration-timeout", "{client} did not register in time", {
              client: connection.label,
            });
            context.close(connection, {
              reason: "registration-timeout",
              error: ["timeout", "registration was not completed in time"],
              bye: "timeout",
              peerLeft: "disconnected",
            });
          }
          continue;
        }
        const client = phase.client;
        if (now - connection.lastSeen > deadAfter) {
          context.metrics.heartbeatTimeouts++;
          context.log.refusal("heartbeat-timeout", "{client} timed out: silent for {silent} ms", {
            client: connection.label,
            silent: Math.round(now - connection.lastSeen),
          });
          context.close(connection, {
            reason: "heartbeat-timeout",
            bye: "timeout",
            peerLeft: "timeout",
          });
        } else if (now - client.lastPingAt >= limits.heartbeatMs) {
          client.lastPingAt = now;
          if (connection.queue.queuedBytes > limits.relayQueueBytes + CONTROL_SLACK_BYTES) {
            context.sendBounded(connection, { type: "ping", t: now }); // cuts it off
          } else {
            connection.queue.pushOwned(ping ??= encodeControlFrame({ type: "ping", t: now }));
          }
        }
      }
    } catch (error) {
      context.log.error("heartbeat sweep failed: {error}", { error: String(error) });
    }
  }
}
