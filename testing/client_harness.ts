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

/** One simulated client. */
export interface SimClient {
  /** The client. */
  client: P2PClient;
  /** Its identity. */
  identity: Identity;
  /** Its host address. */
  host: string;
  /** Every event it emitted, in order. */
  events: ClientEvent[];
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
  const world: World = {
    runtime,
    network,
    server,
    clients,
    async addClient(host, identity, options = {}) {
      const id = identity ?? await Identity.generate();
      const events: ClientEvent[] = [];
      const client = new P2PClient({
        runtime: runtime.forHost(host),
        identity: id,
        servers: [{ host: SERVER_HOST, port: 3478 }],
        bind: { hostname: host, port: 4000 },
        emit: (event) => events.push(event),
        ...options,
      });
      client.start();
      const sim = { client, identity: id, host, events };
      clients.push(sim);
      return sim;
    },
    async close() {
      const stopping = clients.map((c) => c.client.shutdown(0));
      await runtime.advance(2000);
      await Promise.all(stopping);
      server.close();
      await runtime.advance(100);
    },
  };
  return Promise.resolve(world);
}
