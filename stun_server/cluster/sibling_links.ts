/**
 * Direct links between the worker processes of one `--workers` supervisor, for relay frames.
 *
 * Why: with `--workers 2` a pair's two clients land on different workers about half the time, and
 * every relayed frame between them crossed NATS: worker → nats-server → worker, the NATS client's
 * protocol encoding and parsing on both sides, and a third process on the same cores. Measured on
 * the 2-core bench machine that made 2 workers relay 0.65× the messages/s of one. Siblings on one
 * machine can do with less: each worker listens on a local socket, tells its siblings where on
 * the bus (`<prefix>.link`, with a group derived from a secret only the supervisor and its
 * workers know), and each worker dials each sibling once. On Linux the socket is an abstract Unix
 * socket (random name, no file): measured on the 2-core machine a 145-byte write and its read
 * cost 6.9 µs of CPU and 7 µs of latency against 12.3 µs and 17-31 µs over loopback TCP, whose
 * stack runs both ends' protocol work; elsewhere (and in simulations) a loopback TCP port. A relay frame to a sibling is then one
 * batched write (the connection's write queue joins every frame queued in one turn of the event
 * loop) and one read on the other side; NATS still carries presence, introductions and every
 * other message, and relay frames to nodes on other machines.
 *
 * Framing: the signaling protocol's (4-byte length, then the bus payload: kind byte 0x02, the two
 * 20-byte peer IDs, the payload), after a hello frame (kind 0x10, the 32-hex-digit secret, then
 * the sender's node name) that must arrive within 5 s or the connection is closed. The listener
 * is reachable from this machine only (127.0.0.1, or an abstract socket of its network
 * namespace); a connection that does not know the secret can send nothing.
 *
 * Ordering: when a link comes up, frames already on NATS may arrive after the first frames on the
 * link; relay frames are datagrams to the clients' reliable channel, which reorders and
 * retransmits, as it does for a frame lost while NATS reconnects.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Runtime, StreamConn, StreamListener, TimerId } from "../../shared/runtime/mod.ts";
import { MAX_FRAME_LENGTH, WriteQueue } from "../../shared/signaling/mod.ts";
import { type FrameReaderEnd, readFrames } from "../frame_reader.ts";
import { BUS_KIND_RELAY } from "./messages.ts";

/** Kind byte of the hello frame that opens a sibling link. */
export const LINK_KIND_HELLO = 0x10;
/** Hex digits of a link secret. */
const SECRET_HEX = 32;
/** A connection that has not said hello in this long is closed (ms). */
const HELLO_TIMEOUT_MS = 5000;
/** Incoming links open at once, at most (workers are at most 64). */
const MAX_INCOMING = 128;
/** Bytes queued on one link beyond which frames go over NATS instead (a stalled sibling). */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Largest frame on a link: a bus relay payload (kind, two IDs, a maximal relay payload). */
const MAX_LINK_FRAME = MAX_FRAME_LENGTH + 64;

/** Options of {@linkcode SiblingLinks}. */
export interface SiblingLinksOptions {
  /** This worker's node name. */
  nodeName: string;
  /** The supervisor's secret (32 hex digits), shared by its workers only. */
  secret: string;
  /** Clock, timers and the network. */
  runtime: Runtime;
  /**
   * Receives every bus payload that arrives over a link (a relay frame); a `ClusterNode` given
   * these links sets its own (see {@linkcode SiblingLinks.setReceiver}).
   */
  onPayload?: (payload: Uint8Array) => void;
  /** Logger (default category `["stun-server", "cluster", "link"]`). */
  logger?: Logger;
}

/**
 * The public group name of a link secret: siblings announce it on the bus, so a worker links only
 * to workers of its own supervisor; the secret itself never leaves the machine's processes.
 *
 * @example
 * ```ts
 * console.log(linkGroup("00".repeat(16)).length); // 16
 * ```
 */
export function linkGroup(secret: string): string {
  return createHash("sha256").update(`p2p-worker-link/v1 ${secret}`).digest("hex").slice(0, 16);
}

/** Whether `text` is a link secret (32 lowercase hex digits). */
export function isLinkSecret(text: string): boolean {
  return new RegExp(`^[0-9a-f]{${SECRET_HEX}}$`).test(text);
}

/**
 * Where a worker's link listens: a loopback TCP port, or (Linux) the abstract Unix socket
 * `p2p-worker-link-<socket>` (`socket`: 32 hex digits).
 */
export type LinkEndpoint = { port: number } | { socket: string };

function endpointKey(endpoint: LinkEndpoint): string {
  return "port" in endpoint ? `port ${endpoint.port}` : `socket ${endpoint.socket}`;
}

/** The abstract socket name of a link's `socket`. */
function socketName(socket: string): string {
  return `p2p-worker-link-${socket}`;
}

interface OutgoingLink {
  endpoint: LinkEndpoint;
  key: string;
  conn: StreamConn | null;
  queue: WriteQueue | null;
  /** Dialling now. */
  dialling: boolean;
}

/**
 * A worker's links to its siblings.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 *
 * const links = new SiblingLinks({
 *   nodeName: "w-0",
 *   secret: "ab".repeat(16),
 *   runtime: systemRuntime,
 *   onPayload: (payload) => console.log(payload.length),
 * });
 * const endpoint = links.listen(); // announce it to the siblings
 * links.offer("w-1", { port: 40123 }); // a sibling's announcement: dial it
 * const id = new Uint8Array(20);
 * console.log(links.sendRelay("w-1", id, id, new Uint8Array([1]))); // false (not linked yet)
 * await links.close();
 * ```
 */
export class SiblingLinks {
  readonly nodeName: string;
  /** The public group name of the secret (announced on the bus). */
  readonly group: string;
  readonly #secret: Uint8Array;
  readonly #runtime: Runtime;
  #onPayload: (payload: Uint8Array) => void;
  readonly #log: Logger;
  readonly #outgoing = new Map<string, OutgoingLink>();
  readonly #incoming = new Set<StreamConn>();
  #listener: StreamListener | null = null;
  #endpoint: LinkEndpoint | null = null;
  #closed = false;
  /** Frames sent over links, and received. */
  readonly stats = { sent: 0, received: 0, refused: 0 };

  /** Checks the secret; call {@linkcode SiblingLinks.listen} to start. */
  constructor(options: SiblingLinksOptions) {
    if (!isLinkSecret(options.secret)) throw new RangeError("a link secret is 32 hex digits");
    this.nodeName = options.nodeName;
    this.group = linkGroup(options.secret);
    this.#secret = new TextEncoder().encode(options.secret);
    this.#runtime = options.runtime;
    this.#onPayload = options.onPayload ?? (() => {});
    this.#log = options.logger ?? getLogger(["stun-server", "cluster", "link"]);
  }

  /** Sets who receives the bus payloads that arrive over links. */
  setReceiver(onPayload: (payload: Uint8Array) => void): void {
    this.#onPayload = onPayload;
  }

  /**
   * Starts listening: on an abstract Unix socket where the runtime has them (Linux), else on
   * 127.0.0.1 (a free port). Returns where, to announce to the siblings.
   */
  listen(): LinkEndpoint {
    if (this.#endpoint !== null) return this.#endpoint;
    const net = this.#runtime.net;
    let listener: StreamListener | null = null;
    let endpoint: LinkEndpoint | null = null;
    if (net.listenLocal !== undefined) {
      const socket = this.#runtime.randomBytes(16).toHex();
      try {
        listener = net.listenLocal(socketName(socket));
        endpoint = { socket };
      } catch (error) {
        this.#log.warn("no abstract socket for the worker link ({error}): loopback TCP instead", {
          error: String(error),
        });
      }
    }
    if (listener === null || endpoint === null) {
      listener = net.listen({ hostname: "127.0.0.1", port: 0 });
      endpoint = { port: listener.addr.port };
    }
    this.#listener = listener;
    this.#endpoint = endpoint;
    (async () => {
      for (;;) {
        let conn: StreamConn;
        try {
          conn = await listener.accept();
        } catch {
          return; // closed
        }
        if (this.#closed || this.#incoming.size >= MAX_INCOMING) {
          closeQuietly(conn);
          continue;
        }
        this.#serveIncoming(conn);
      }
    })();
    return endpoint;
  }

  /** The siblings linked now (an outgoing link is open). */
  get linked(): string[] {
    return [...this.#outgoing].filter(([, link]) => link.queue !== null).map(([node]) => node);
  }

  /**
   * A sibling announced its link endpoint: dial it unless already linked (or dialling) to it. A
   * new endpoint (the sibling restarted) replaces the old link.
   */
  offer(node: string, endpoint: LinkEndpoint): void {
    if (this.#closed || node === this.nodeName) return;
    const key = endpointKey(endpoint);
    const known = this.#outgoing.get(node);
    if (known !== undefined && known.key === key && (known.dialling || known.queue !== null)) {
      return;
    }
    if (known !== undefined) this.#drop(node, known);
    const link: OutgoingLink = { endpoint, key, conn: null, queue: null, dialling: true };
    this.#outgoing.set(node, link);
    this.#dial(node, link);
  }

  /** Forgets the link to `node` (it left the cluster). */
  forget(node: string): void {
    const link = this.#outgoing.get(node);
    if (link !== undefined) this.#drop(node, link);
  }

  /**
   * Sends a relay frame to `node` as a bus payload (kind, both 20-byte IDs, the payload), built
   * in place in the link's queue (one copy); false when there is no usable link.
   */
  sendRelay(node: string, from: Uint8Array, to: Uint8Array, payload: Uint8Array): boolean {
    const queue = this.#outgoing.get(node)?.queue;
    if (queue === null || queue === undefined || queue.closed) return false;
    const length = 41 + payload.length;
    if (queue.queuedBytes > MAX_QUEUED_BYTES || length > MAX_LINK_FRAME) {
      this.stats.refused++;
      return false;
    }
    const frame = queue.reserve(4 + length);
    new DataView(frame.buffer, frame.byteOffset, 4).setUint32(0, length);
    frame[4] = BUS_KIND_RELAY;
    frame.set(from, 5);
    frame.set(to, 25);
    frame.set(payload, 45);
    this.stats.sent++;
    return true;
  }

  /** Closes the listener and every link. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      this.#listener?.close();
    } catch {
      // closed
    }
    // Not flushed: a sibling that stopped reading must not hold up the shutdown (what is lost is
    // a datagram to the clients' reliable channel).
    for (const [node, link] of [...this.#outgoing]) this.#drop(node, link);
    for (const conn of this.#incoming) closeQuietly(conn);
    this.#incoming.clear();
    return Promise.resolve();
  }

  async #dial(node: string, link: OutgoingLink): Promise<void> {
    let conn: StreamConn;
    const endpoint = link.endpoint;
    const net = this.#runtime.net;
    try {
      if ("port" in endpoint) {
        conn = await net.connect({ hostname: "127.0.0.1", port: endpoint.port });
      } else if (net.connectLocal !== undefined) {
        conn = await net.connectLocal(socketName(endpoint.socket));
      } else {
        throw new Error("no abstract sockets here");
      }
    } catch (error) {
      link.dialling = false;
      if (this.#outgoing.get(node) === link) this.#outgoing.delete(node); // the next offer retries
      this.#log.warn("cannot link to sibling {node} at {endpoint}: {error}", {
        node,
        endpoint: link.key,
        error: String(error),
      });
      return;
    }
    link.dialling = false;
    if (this.#closed || this.#outgoing.get(node) !== link) {
      closeQuietly(conn);
      return;
    }
    try {
      conn.setNoDelay?.(true);
    } catch {
      // only latency
    }
    link.conn = conn;
    const queue = new WriteQueue(conn, {
      runtime: this.#runtime,
      onError: () => {
        if (this.#outgoing.get(node) === link) this.#drop(node, link);
      },
    });
    const name = new TextEncoder().encode(this.nodeName);
    const hello = queue.reserve(4 + 1 + this.#secret.length + name.length);
    new DataView(hello.buffer, hello.byteOffset, 4).setUint32(
      0,
      1 + this.#secret.length + name.length,
    );
    hello[4] = LINK_KIND_HELLO;
    hello.set(this.#secret, 5);
    hello.set(name, 5 + this.#secret.length);
    link.queue = queue;
    this.#log.info("linked to sibling {node} ({endpoint})", { node, endpoint: link.key });
    // The other side never writes; reading only tells us when it goes away.
    (async () => {
      const scratch = new Uint8Array(64);
      try {
        for (;;) if (await conn.read(scratch) === null) break;
      } catch {
        // reset
      }
      if (this.#outgoing.get(node) === link) this.#drop(node, link);
    })();
  }

  #drop(node: string, link: OutgoingLink): void {
    if (this.#outgoing.get(node) === link) this.#outgoing.delete(node);
    link.queue?.close();
    link.queue = null;
    if (link.conn !== null) closeQuietly(link.conn);
    link.conn = null;
  }

  #serveIncoming(conn: StreamConn): void {
    this.#incoming.add(conn);
    let greeted = false;
    let stopped = false;
    const timer: TimerId = this.#runtime.setTimer(() => {
      if (!greeted) {
        stopped = true;
        closeQuietly(conn);
      }
    }, HELLO_TIMEOUT_MS);
    const secret = this.#secret;
    const stats = this.stats;
    const log = this.#log;
    // deno-lint-ignore no-this-alias
    const links = this;
    const stop = () => {
      stopped = true;
    };
    readFrames(conn, {
      onData() {},
      onFrame(kind, body) {
        if (!greeted) {
          if (
            kind !== LINK_KIND_HELLO || body.length < secret.length ||
            !timingSafeEqual(body.subarray(0, secret.length), secret)
          ) {
            log.warn("a loopback connection to the worker link failed the hello: closed");
            stop();
            return;
          }
          greeted = true;
          return;
        }
        if (kind !== BUS_KIND_RELAY) {
          stop();
          return;
        }
        stats.received++;
        // The frame's kind byte is the bus payload's first byte: hand over the whole payload.
        links.#onPayload(new Uint8Array(body.buffer, body.byteOffset - 1, body.length + 1));
      },
      onEmptyFrame: stop,
      onFrameTooLarge: stop,
      frameLimit: () => greeted ? MAX_LINK_FRAME : 256,
      isStopped: () => stopped || this.#closed,
      onEnd: (_end: FrameReaderEnd) => {
        this.#runtime.clearTimer(timer);
        this.#incoming.delete(conn);
        closeQuietly(conn);
      },
    }, { maxFrameLength: MAX_LINK_FRAME });
  }
}

function closeQuietly(conn: StreamConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
