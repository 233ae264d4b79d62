/**
 * The real system under simulation: the signaling + STUN server (`startServer`) and
 * `P2PClient`s, unchanged, each on its own simulated host and on the simulated clock.
 *
 * Why: the simulator exists to find the link-lifecycle bugs of issue 9 in the code users run;
 * this adapter only translates the client's events into the checker's vocabulary — `delivered`,
 * an error with a message ID (`failed`), `unconfirmed` — and its peer list into path states.
 * Identities are derived from the seed before the clock starts (importing a key is WebCrypto, not
 * virtual; Ed25519 signing is deterministic, so the whole run is) and kept on each node's disk
 * with an in-memory restart store (`MemoryClientStore`), so a restarted client is the same peer
 * and keeps its outbox and its window of received message IDs, as with its files on a real disk.
 *
 * @module
 */
import { Identity } from "../../shared/identity/mod.ts";
import { P2PClient } from "../../p2p_client/client.ts";
import { MemoryClientStore } from "../../p2p_client/client_store.ts";
import type { ClientEvent } from "../../p2p_client/events.ts";
import { startServer } from "../../stun_server/server.ts";
import type { PathState } from "./checker.ts";
import type { PeerEvent, SystemUnderTest } from "./scenario.ts";
import { seededRandom } from "../../p2p_client/reliable/simulated_network.ts";

/** The server's signaling (TCP) port in the simulation. */
export const SIGNALING_PORT = 3478;
/** The server's STUN (UDP) port in the simulation. */
export const STUN_PORT = 54321;

/**
 * Translates one client event into what the checker needs (or nothing).
 *
 * @example
 * ```ts
 * console.log(translateEvent({ type: "delivered", peer: "p", messageId: 3 }));
 * // { type: "outcome", messageId: 3, outcome: "delivered" }
 * ```
 */
export function translateEvent(event: ClientEvent): PeerEvent | undefined {
  const e = event as ClientEvent & { messageId?: number };
  switch (event.type) {
    case "message":
      return { type: "message", from: event.from, text: event.text };
    case "delivered":
      return { type: "outcome", messageId: event.messageId, outcome: "delivered" };
    case "unconfirmed":
      return { type: "outcome", messageId: event.messageId, outcome: "unconfirmed" };
    case "error":
      return e.messageId === undefined
        ? undefined
        : { type: "outcome", messageId: e.messageId, outcome: "failed" };
    default:
      return undefined;
  }
}

/**
 * Maps a client's peer state to a path state.
 *
 * @example
 * ```ts
 * console.log(pathStateOf("relayed"), pathStateOf("connecting")); // relayed none
 * ```
 */
export function pathStateOf(state: string | undefined): PathState {
  switch (state) {
    case "direct":
    case "relayed":
    case "mixed":
      return state;
    default:
      return "none";
  }
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 private key (RFC 8410 §7).
const ED25519_PKCS8_PREFIX = [
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
];

/**
 * A deterministic identity for `name` in the run of `seed` (Ed25519 signing is deterministic
 * too, so the same seed gives the same peer IDs, handshakes and trace).
 *
 * @example
 * ```ts
 * const a = await seededIdentity(1, "a");
 * console.log(a.id === (await seededIdentity(1, "a")).id); // true
 * ```
 */
export async function seededIdentity(seed: number, name: string): Promise<Identity> {
  let mixed = seed >>> 0;
  for (let i = 0; i < name.length; i++) mixed = Math.imul(mixed ^ name.charCodeAt(i), 0x01000193);
  const random = seededRandom(mixed);
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(ED25519_PKCS8_PREFIX);
  for (let i = 16; i < 48; i++) pkcs8[i] = Math.floor(random() * 256);
  return await Identity.fromPkcs8(pkcs8);
}

/** Options of {@linkcode realSystem}. */
export interface RealSystemOptions {
  /**
   * Receives every client's debug log and `peer` event (`deno task sim --trace --client-log`),
   * with the client's node name and virtual time. Not part of the trace hash.
   */
  clientLog?: (node: string, at: number, message: string) => void;
}

/**
 * The real server and clients.
 *
 * @example
 * ```ts
 * const system = realSystem();
 * console.log(system.name); // real
 * ```
 */
export function realSystem(options: RealSystemOptions = {}): SystemUnderTest {
  return {
    name: "real",
    async prepare(nodes, seed) {
      for (const node of nodes) {
        if (node.name === "server") continue;
        node.disk.set("identity", await seededIdentity(seed, node.name));
        node.disk.set("store", new MemoryClientStore());
      }
    },
    server: ({ runtime }) =>
      startServer({ runtime, hostname: "0.0.0.0", tcpPort: SIGNALING_PORT, stunPort: STUN_PORT }),
    client: (context) => {
      const identity = context.disk.get("identity") as Identity;
      let registered = false;
      const clientLog = options.clientLog;
      const log = clientLog
        ? (message: string) => clientLog(context.name, context.runtime.now(), message)
        : undefined;
      const client = new P2PClient({
        runtime: context.runtime,
        identity,
        servers: [{ host: context.serverIp, port: SIGNALING_PORT }],
        bind: { hostname: "0.0.0.0", port: 0 },
        store: context.disk.get("store") as MemoryClientStore,
        log,
        emit: (event) => {
          if (event.type === "registered") registered = true;
          if (log && event.type === "peer") {
            log(
              `peer ${event.peer.slice(0, 8)} ${event.state} ${event.path} (${event.reason ?? ""})`,
            );
          } else if (log && (event.type === "server" || event.type === "disconnected")) {
            log(`${event.type} ${JSON.stringify(event)}`);
          }
          const translated = translateEvent(event);
          if (translated) context.emit(translated);
        },
      });
      client.start();
      return {
        id: identity.id,
        connect: (peer) => client.connect(peer),
        send: (peer, text) => client.send(peer, text),
        ready: () => registered,
        pathState: (peer) => pathStateOf(client.list().find((row) => row.peer === peer)?.state),
      };
    },
  };
}
