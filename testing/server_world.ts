/**
 * A whole server on virtual time with clients on their own simulated hosts (the harness of
 * `stun_server/server_test.ts`, shared by the abuse tests of issue 11): every client records what
 * it receives and answers pings.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import type { Runtime } from "../shared/runtime/mod.ts";
import {
  type ServerMessage,
  type ServerMessageOf,
  SignalingConnection,
} from "../shared/signaling/mod.ts";
import { type RunningServer, type ServerOptions, startServer } from "../stun_server/server.ts";
import type { MemoryNetwork } from "./memory_network.ts";
import { VirtualRuntime } from "./virtual_runtime.ts";

/** The server's host in a {@linkcode ServerWorld}. */
export const WORLD_SERVER = "10.0.0.1";
/** The server's TCP port in a {@linkcode ServerWorld}. */
export const WORLD_TCP_PORT = 3478;

/** A registered client that records every event and answers pings. */
export class WorldClient {
  /** Its host's runtime. */
  readonly runtime: Runtime;
  /** Its signaling connection. */
  readonly conn: SignalingConnection;
  /** Its identity. */
  readonly me: Identity;
  /** Control messages received after registration. */
  readonly messages: ServerMessage[] = [];
  /** Relayed payloads received, with the virtual time of arrival. */
  readonly relayed: { peer: string; payload: Uint8Array; at: number }[] = [];
  /** Control messages with the virtual time of arrival. */
  readonly arrivals: { message: ServerMessage; at: number }[] = [];
  /** Answer `ping`s (false: freeze). */
  answerPings = true;
  /** Answer `introduce-request`s with this (undefined: do not answer). */
  consentAnswer: boolean | undefined = true;
  /** The `registered` message. */
  registered: ServerMessageOf<"registered"> | undefined;
  /** The event pump. */
  readonly done: Promise<void>;
  readonly #started = Promise.withResolvers<void>();

  /** @param runtime Host runtime. @param conn Connection. @param me Identity. */
  constructor(runtime: Runtime, conn: SignalingConnection, me: Identity) {
    this.runtime = runtime;
    this.conn = conn;
    this.me = me;
    this.done = this.#pump();
  }

  async #pump(): Promise<void> {
    await this.#started.promise;
    for await (const event of this.conn) {
      if (event.kind === "relay") {
        this.relayed.push({ ...event, at: this.runtime.now() });
        continue;
      }
      this.messages.push(event.message);
      this.arrivals.push({ message: event.message, at: this.runtime.now() });
      const m = event.message;
      if (m.type === "ping" && this.answerPings) this.conn.send({ type: "pong", t: m.t });
      if (m.type === "introduce-request" && this.consentAnswer !== undefined) {
        this.conn.send({ type: "introduce-answer", peer: m.peer, accept: this.consentAnswer });
      }
    }
  }

  /** Starts reading events (after registration). */
  startPump(): void {
    this.#started.resolve();
  }

  /** The messages of one type received so far. */
  of<T extends ServerMessage["type"]>(type: T): ServerMessageOf<T>[] {
    return this.messages.filter((m) => m.type === type) as ServerMessageOf<T>[];
  }

  /** The connection is closed. */
  get closed(): boolean {
    return this.conn.isClosed;
  }
}

/** Options of {@linkcode ServerWorld.register}. */
export interface WorldRegisterOptions {
  /** Identity (default: a new one). */
  identity?: Identity;
  /** Host address (default: the next 10.0.0.x) or a runtime already made. */
  host?: string;
  /** A runtime already made for the host. */
  runtime?: Runtime;
  /** Declare `consent`. */
  consent?: boolean;
  /** Declare `relay-credit` (default true; false: a client from before relay credit). */
  relayCredit?: boolean;
  /** Registration nonce. */
  nonce?: string;
  /** The port of the client's local candidate (default 40000). */
  localPort?: number;
}

/**
 * The server on 10.0.0.1 and clients on other hosts, all on one virtual clock.
 *
 * @example
 * ```ts ignore
 * const world = new ServerWorld({ maxClients: 10 });
 * const a = await world.register();
 * await world.close();
 * ```
 */
export class ServerWorld {
  /** The virtual runtime. */
  readonly runtime: VirtualRuntime = new VirtualRuntime({ seed: 42 });
  /** The server. */
  readonly server: RunningServer;
  /** Every client registered through {@linkcode ServerWorld.register}. */
  readonly clients: WorldClient[] = [];
  #nextHost = 2;

  /**
   * @param options Server options.
   * @param wrapServerRuntime Wraps the server's runtime (to shape its sockets).
   */
  constructor(options: ServerOptions = {}, wrapServerRuntime?: (runtime: Runtime) => Runtime) {
    const serverRuntime = this.runtime.forHost(WORLD_SERVER);
    this.server = startServer({
      runtime: wrapServerRuntime?.(serverRuntime) ?? serverRuntime,
      tcpPort: WORLD_TCP_PORT,
      stunPort: 54321,
      ...options,
    });
  }

  /** The in-memory network. */
  get network(): MemoryNetwork {
    return this.runtime.net as MemoryNetwork;
  }

  /** A runtime for `host` (default: the next 10.0.0.x). */
  hostRuntime(host?: string): Runtime {
    return this.runtime.forHost(host ?? `10.0.0.${this.#nextHost++}`);
  }

  /** A signaling connection from `runtime` (default: a new host). */
  async connect(runtime?: Runtime): Promise<SignalingConnection> {
    return await this.runtime.drive(
      SignalingConnection.connect({
        hostname: WORLD_SERVER,
        port: WORLD_TCP_PORT,
        runtime: runtime ?? this.hostRuntime(),
      }),
    );
  }

  /** Connects and registers a client. */
  async register(options: WorldRegisterOptions = {}): Promise<WorldClient> {
    const runtime = options.runtime ?? this.hostRuntime(options.host);
    const me = options.identity ?? await Identity.generate();
    const conn = await this.connect(runtime);
    const client = new WorldClient(runtime, conn, me);
    try {
      client.registered = await this.runtime.drive(
        conn.register(
          me,
          [{ host: "192.168.1.2", port: options.localPort ?? 40_000 }],
          10_000,
          options.nonce,
          {
            consent: options.consent,
            relayCredit: options.relayCredit,
          },
        ),
      );
    } catch (error) {
      conn.close();
      throw error;
    }
    client.startPump();
    this.clients.push(client);
    return client;
  }

  /** Runs virtual time until `condition` holds (fails the test after `limitMs`). */
  async until(condition: () => boolean, what: string, limitMs = 30_000): Promise<void> {
    const ok = await this.runtime.runUntil(condition, limitMs, 5);
    assert.ok(ok, `timed out (virtual ${limitMs} ms) waiting for ${what}`);
  }

  /** Stops the server and every client. */
  async close(): Promise<void> {
    await this.runtime.drive(this.server.close(), 30_000, 10);
    for (const client of this.clients) client.conn.close();
    await this.runtime.drive(Promise.all(this.clients.map((c) => c.done)), 10_000, 10);
  }
}

/**
 * The honest pair of issue 11: two new clients on fresh hosts register, one connects to the
 * other, and a message goes each way over the relay, all within `limitMs` of virtual time.
 * Returns the virtual time it took.
 */
export async function honestPairServed(
  world: ServerWorld,
  hosts: [string, string],
  limitMs = 5000,
): Promise<number> {
  const start = world.runtime.now();
  const a = await world.register({ host: hosts[0] });
  const b = await world.register({ host: hosts[1] });
  a.conn.send({ type: "connect", peer: b.me.id, requestId: "honest" });
  await world.until(
    () =>
      a.of("introduce").some((m) => m.peer === b.me.id) &&
      b.of("introduce").some((m) => m.peer === a.me.id),
    "the honest pair's introductions",
    limitMs,
  );
  a.conn.sendRelay(b.me.id, new TextEncoder().encode("hello b"));
  b.conn.sendRelay(a.me.id, new TextEncoder().encode("hello a"));
  await world.until(
    () => a.relayed.some((r) => r.peer === b.me.id) && b.relayed.some((r) => r.peer === a.me.id),
    "the honest pair's messages",
    limitMs,
  );
  const took = world.runtime.now() - start;
  assert.ok(took <= limitMs, `the honest pair took ${took} ms (virtual)`);
  return took;
}

/**
 * Relay latencies (virtual ms) of `count` 64-byte probes from `from` to `to`, one at a time,
 * 50 ms apart: each carries its send time, and is timed when `to` has it. `onSent` runs after
 * each probe is queued (a flood can be stopped there); a probe not there within `limitMs` fails.
 */
export async function relayProbeLatencies(
  world: ServerWorld,
  from: WorldClient,
  to: WorldClient,
  count: number,
  options: { limitMs?: number; onSent?: () => void; mark?: number } = {},
): Promise<number[]> {
  const fromHere = () => to.relayed.filter((r) => r.peer === from.me.id);
  const result: number[] = [];
  for (let i = 0; i < count; i++) {
    const payload = new Uint8Array(64);
    new DataView(payload.buffer).setFloat64(0, world.runtime.now());
    if (options.mark !== undefined) payload[8] = options.mark;
    const before = fromHere().length;
    from.conn.sendRelay(to.me.id, payload);
    options.onSent?.();
    await world.until(() => fromHere().length > before, "an honest probe", options.limitMs);
    const got = fromHere().at(-1)!;
    result.push(got.at - new DataView(got.payload.buffer, got.payload.byteOffset).getFloat64(0));
    await world.runtime.runUntil(() => false, 50, 5);
  }
  return result;
}

/** The median of `values` (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Starts a relay flood: every 5 ms (virtual) each of `flooders` tops its write queue up to
 * `keepBytes` of `frame`s to `to`. Returns the function that stops it.
 */
export function startRelayFlood(
  world: ServerWorld,
  flooders: readonly WorldClient[],
  to: WorldClient,
  frame: Uint8Array,
  keepBytes = 128 * 1024,
): () => void {
  let flooding = true;
  const pump = () => {
    if (!flooding) return;
    for (const f of flooders) {
      while (f.conn.queuedBytes < keepBytes) f.conn.sendRelay(to.me.id, frame);
    }
    world.runtime.setTimer(pump, 5);
  };
  pump();
  return () => flooding = false;
}
