/**
 * Two or more real `P2PClient`s and a signaling server on one {@linkcode VirtualRuntime}: each
 * client on its own simulated host, every event recorded, helpers to wait on virtual time. The
 * server is {@linkcode MiniSignalingServer} until the real one runs on the injected runtime.
 *
 * @module
 */
import { VirtualRuntime } from "./virtual_runtime.ts";
import type { MemoryNetwork } from "./memory_network.ts";
import { MiniSignalingServer } from "./mini_signaling.ts";
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
}

/** A world of clients and a server on virtual time. */
export interface World {
  /** The shared runtime. */
  runtime: VirtualRuntime;
  /** The in-memory network (set `policy` for faults). */
  network: MemoryNetwork;
  /** The signaling server. */
  server: MiniSignalingServer;
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
export function createWorld(seed = 1): Promise<World> {
  const runtime = new VirtualRuntime({ seed });
  const network = runtime.net as MemoryNetwork;
  const server = MiniSignalingServer.listen(runtime.forHost(SERVER_HOST), {
    hostname: SERVER_HOST,
    port: 3478,
  });
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
    server,
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
      server.close();
      await runtime.advance(100);
    },
  };
  return Promise.resolve(world);
}
