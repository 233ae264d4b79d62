/**
 * Two or more real `P2PClient`s and a server on one {@linkcode VirtualRuntime}: each client on
 * its own simulated host, every event recorded, helpers to wait on virtual time. The server is
 * the real one (`stun_server/server.ts`: signaling and STUN) or, for faults the real one would
 * never commit (a lying introduction, a forced `replaced`), {@linkcode MiniSignalingServer}.
 *
 * @module
 */
import { VirtualRuntime } from "./virtual_runtime.ts";
import type { MemoryNetwork } from "./memory_network.ts";
import { MiniSignalingServer } from "./mini_signaling.ts";
import { type RunningServer, type ServerOptions, startServer } from "../stun_server/server.ts";
import { Identity } from "../shared/identity/mod.ts";
import { P2PClient, type P2PClientOptions } from "../p2p_client/client.ts";
import type { ClientEvent } from "../p2p_client/events.ts";
import { FreezableRuntime } from "./freezable_runtime.ts";
import { MemoryClientStore } from "../p2p_client/client_store.ts";

/** One simulated client. */
export interface SimClient {
  /** The client. */
  client: P2PClient;
  /** Its identity. */
  identity: Identity;
  /** Its host address. */
  host: string;
  /** Every event it emitted, in order (over restarts). */
  events: ClientEvent[];
  /** Its runtime (freeze / thaw it). */
  runtime: FreezableRuntime;
  /** Its restart store. */
  store: MemoryClientStore;
  /**
   * Stops the client (as an exit: stored messages stay) and starts a new one in its place;
   * `whileStopped` runs in between (to edit the store, say).
   */
  restart(whileStopped?: () => void): Promise<void>;
  /** Crashes the client (no goodbye, no final save) and starts a new one in its place. */
  crashRestart(): Promise<void>;
}

/** A world of clients and a server on virtual time. */
export interface World {
  /** The shared runtime. */
  runtime: VirtualRuntime;
  /** The in-memory network (set `policy` for faults). */
  network: MemoryNetwork;
  /** The minimal signaling server with fault hooks (worlds made with `server: "mini"`). */
  mini: MiniSignalingServer;
  /** The real server (worlds made with `server: "real"`). */
  real: RunningServer;
  /** Crashes the real server and starts it again on the same address (a server restart). */
  restartServer(): Promise<void>;
  /** The clients. */
  clients: SimClient[];
  /** Adds and starts a client on `host` (optionally with a given identity). */
  addClient(
    host: string,
    identity?: Identity,
    options?: Partial<P2PClientOptions>,
  ): Promise<SimClient>;
  /** Stops everything. */
  close(): Promise<void>;
}

/** The server's address in every world. */
export const SERVER_HOST = "10.0.0.100";

/**
 * Builds a world with a server and no clients.
 *
 * @example
 * ```ts
 * const world = await createWorld(1);
 * const a = await world.addClient("10.0.0.1");
 * await world.close();
 * ```
 */
export function createWorld(
  seed = 1,
  options: { server?: "real" | "mini"; serverOptions?: ServerOptions } = {},
): Promise<World> {
  const runtime = new VirtualRuntime({ seed });
  const network = runtime.net as MemoryNetwork;
  const kind = options.server ?? "mini";
  const startReal = () =>
    startServer({
      runtime: runtime.forHost(SERVER_HOST),
      hostname: SERVER_HOST,
      tcpPort: 3478,
      stunPort: 54321,
      heartbeatMs: 5000,
      ...options.serverOptions,
    });
  let real = kind === "real" ? startReal() : undefined;
  const mini = kind === "mini"
    ? MiniSignalingServer.listen(runtime.forHost(SERVER_HOST), {
      hostname: SERVER_HOST,
      port: 3478,
    })
    : undefined;
  const clients: SimClient[] = [];
  /** Advances virtual time until `promise` settles (at most 60 s of it). */
  const settle = async (promise: Promise<unknown>) => {
    let done = false;
    const finished = promise.finally(() => done = true);
    if (!(await runtime.runUntil(() => done, 60_000, 100))) {
      throw new Error("did not finish in 60 s of virtual time");
    }
    await finished;
  };
  const world: World = {
    runtime,
    network,
    get mini(): MiniSignalingServer {
      if (!mini) throw new Error("this world runs the real server");
      return mini;
    },
    get real(): RunningServer {
      if (!real) throw new Error("this world runs the minimal server");
      return real;
    },
    async restartServer() {
      if (!real) throw new Error("this world runs the minimal server");
      await settle(real.abort());
      real = startReal();
    },
    clients,
    async addClient(host, identity, options = {}) {
      const id = identity ?? await Identity.generate();
      const events: ClientEvent[] = [];
      const hostRuntime = new FreezableRuntime(runtime.forHost(host));
      const store = new MemoryClientStore();
      const make = () =>
        new P2PClient({
          runtime: hostRuntime,
          identity: id,
          servers: [{ host: SERVER_HOST, port: 3478 }],
          bind: { hostname: host, port: 4000 },
          emit: (event) => events.push(event),
          store,
          ...options,
        });
      const sim: SimClient = {
        client: make(),
        identity: id,
        host,
        events,
        runtime: hostRuntime,
        store,
        async crashRestart() {
          await settle(sim.client.abort());
          sim.client = make();
          sim.client.start();
        },
        async restart(whileStopped) {
          await settle(sim.client.shutdown(0));
          whileStopped?.();
          sim.client = make();
          sim.client.start();
        },
      };
      sim.client.start();
      clients.push(sim);
      return sim;
    },
    async close() {
      for (const c of clients) c.runtime.thaw();
      await settle(Promise.all(clients.map((c) => c.client.shutdown(0))));
      mini?.close();
      if (real) await settle(real.close());
      await runtime.advance(100);
    },
  };
  return Promise.resolve(world);
}
