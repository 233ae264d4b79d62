/**
 * The cluster's {@linkcode BusTransport} over NATS, with the npm client `@nats-io/transport-node`
 * (the maintained successor of `nats` v2, which runs unchanged under Deno through `node:net`).
 *
 * Why NATS: subject-addressed publish/subscribe with per-publisher ordering is all the cluster
 * needs; nats-server is one static binary (Debian's `nats-server`), clusters itself, and the
 * client reconnects to any server of the list by itself. Core NATS (no JetStream): presence is
 * soft state re-published after every reconnect, and a relay frame lost in an outage is a lost
 * datagram to the peers' reliable channel, which retransmits.
 *
 * The transport connects in the background and keeps trying forever (every 250-750 ms); while it
 * is not connected, `publish` refuses (returns false) instead of buffering, so the server can
 * answer `cluster-unavailable` at once.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Runtime, TimerId } from "../../shared/runtime/mod.ts";
import type { BusTransport } from "./bus.ts";

/** Options of {@linkcode NatsTransport.start}. */
export interface NatsTransportOptions {
  /** NATS server URLs (`nats://host:port`); the client picks any and fails over to the others. */
  servers: string[];
  /** Connection name shown by the NATS server (default `p2p-stun-server`). */
  name?: string;
  /** Timers for the retries of the first connection. */
  runtime: Runtime;
  /** Logger (default category `["stun-server", "cluster", "nats"]`). */
  logger?: Logger;
}

/**
 * Parses `--cluster` URLs: comma-separated `nats://host:port` (also `tls://`); a bare `host:port`
 * gets `nats://`. Throws a `RangeError` naming the bad entry.
 *
 * @example
 * ```ts
 * console.log(parseNatsServers("nats://10.0.0.1:4222, n2:4222"));
 * // ["nats://10.0.0.1:4222", "nats://n2:4222"]
 * ```
 */
export function parseNatsServers(text: string): string[] {
  const servers = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (servers.length === 0) throw new RangeError("--cluster needs at least one nats:// URL");
  return servers.map((server) => {
    const url = /^[a-z]+:\/\//.test(server) ? server : `nats://${server}`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new RangeError(`bad NATS URL ${JSON.stringify(server)}`);
    }
    if (!["nats:", "tls:"].includes(parsed.protocol) || parsed.hostname === "") {
      throw new RangeError(`bad NATS URL ${JSON.stringify(server)} (want nats://host:port)`);
    }
    return url;
  });
}

/**
 * A NATS connection as a {@linkcode BusTransport}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 *
 * const transport = NatsTransport.start({
 *   servers: ["nats://127.0.0.1:4222"],
 *   runtime: systemRuntime,
 * });
 * transport.subscribe("p2p.lease", (payload) => console.log(payload.length));
 * transport.onStatus((up) => console.log(up ? "connected" : "lost"));
 * await transport.close();
 * ```
 */
export class NatsTransport implements BusTransport {
  readonly #options: NatsTransportOptions;
  readonly #log: Logger;
  readonly #subscriptions: Array<[string, (payload: Uint8Array) => void]> = [];
  readonly #statusListeners: Array<(connected: boolean) => void> = [];
  #nc: NatsConnection | null = null;
  #connected = false;
  #closed = false;
  #retryTimer: TimerId | undefined;
  #attempts = 0;

  private constructor(options: NatsTransportOptions) {
    this.#options = options;
    this.#log = options.logger ?? getLogger(["stun-server", "cluster", "nats"]);
    this.#connect();
  }

  /** Starts connecting (in the background, retrying until it succeeds or is closed). */
  static start(options: NatsTransportOptions): NatsTransport {
    return new NatsTransport(options);
  }

  get connected(): boolean {
    return this.#connected;
  }

  publish(subject: string, payload: Uint8Array): boolean {
    if (!this.#connected || this.#nc === null) return false;
    try {
      this.#nc.publish(subject, payload);
      return true;
    } catch {
      return false;
    }
  }

  subscribe(subject: string, onMessage: (payload: Uint8Array) => void): void {
    this.#subscriptions.push([subject, onMessage]);
    if (this.#nc !== null) this.#subscribeOn(this.#nc, subject, onMessage);
  }

  onStatus(listener: (connected: boolean) => void): void {
    this.#statusListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    this.#options.runtime.clearTimer(this.#retryTimer);
    const nc = this.#nc;
    if (nc === null) return;
    try {
      await Promise.race([
        nc.drain(),
        new Promise((resolve) => nc.closed().then(resolve)),
      ]);
    } catch {
      // already closed
    }
    try {
      await nc.close();
    } catch {
      // already closed
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#options.servers,
        name: this.#options.name ?? "p2p-stun-server",
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        reconnectJitter: 250,
        pingInterval: 5000,
        maxPingOut: 2,
        noEcho: true,
        timeout: 2000,
      });
    } catch (error) {
      if (this.#closed) return;
      // Not reachable yet: keep serving local clients, and try again (logged every 20th time).
      if (this.#attempts++ % 20 === 0) {
        this.#log.warn("NATS {servers} not reachable ({error}); retrying", {
          servers: this.#options.servers.join(","),
          error: String(error),
        });
      }
      const delay = 250 + this.#options.runtime.random() * 500;
      this.#retryTimer = this.#options.runtime.setTimer(() => this.#connect(), delay);
      return;
    }
    if (this.#closed) {
      await nc.close().catch(() => {});
      return;
    }
    this.#nc = nc;
    for (const [subject, onMessage] of this.#subscriptions) {
      this.#subscribeOn(nc, subject, onMessage);
    }
    this.#watchStatus(nc);
    this.#setConnected(true);
    this.#log.info("connected to NATS {server}", { server: nc.getServer() });
  }

  #subscribeOn(nc: NatsConnection, subject: string, onMessage: (payload: Uint8Array) => void) {
    nc.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) {
          this.#log.warn("NATS subscription {subject} failed: {error}", {
            subject,
            error: String(error),
          });
          return;
        }
        // A plain Uint8Array view (the Node transport hands out Buffers).
        const data = message.data;
        onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      },
    });
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const status of nc.status()) {
        if (this.#closed) return;
        if (status.type === "disconnect") {
          this.#log.warn("lost NATS {server}", { server: String(status.server) });
          this.#setConnected(false);
        } else if (status.type === "reconnect") {
          this.#log.info("reconnected to NATS {server}", { server: String(status.server) });
          this.#setConnected(true);
        }
      }
    } catch (error) {
      this.#log.warn("NATS status stream ended: {error}", { error: String(error) });
    }
    if (!this.#closed) this.#setConnected(false);
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    for (const listener of this.#statusListeners) {
      try {
        listener(connected);
      } catch (error) {
        this.#log.error("NATS status listener failed: {error}", { error: String(error) });
      }
    }
  }
}
