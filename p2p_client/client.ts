/**
 * The P2P client: one UDP socket, the server session, STUN, and a table of independent peer
 * links. Commands (`connect`, `send`, `list`, `id`) come from the prompt or script; everything
 * that happens is reported as {@linkcode ClientEvent}s.
 *
 * @module
 */
import type { ServerAddress } from "../shared/config/mod.ts";
import type { Identity } from "../shared/identity/mod.ts";
import type { SignalingEvent } from "../shared/signaling/connection.ts";
import type { ServerMessage, ServerMessageOf } from "../shared/signaling/messages.ts";
import type { ClientEvent, PeerSummary } from "./events.ts";
import type { LinkFrameCodec, MessageChannelFactory } from "./link_frames.ts";
import { type InterfaceAddress, isLoopback, localCandidates } from "./local_addresses.ts";
import { formatUdpAddress, type PathManagerOptions } from "./path_manager.ts";
import { PeerTable } from "./peer_table.ts";
import { type Registration, ServerSession } from "./server_session.ts";
import { type StunBindingCodec, StunClient } from "./stun_client.ts";
import { UdpMux } from "./udp_mux.ts";
import { type Runtime, sleep } from "../shared/runtime/mod.ts";
import { createChannelFactory } from "./channel_factory.ts";
import { linkFrameCodec } from "./link_frame_codec.ts";
import { stunBindingCodec } from "./stun_codec.ts";
import { DeadlineTimer } from "./deadline_timer.ts";

/**
 * Everything a {@linkcode P2PClient} is built from. Side effects enter only through `runtime`
 * (clock, timers, randomness, the UDP socket and the TCP connections); nothing reads process
 * globals, so several clients run in one process on virtual time.
 */
export interface P2PClientOptions {
  /** Clock, timers, randomness and network. */
  runtime: Runtime;
  /** Our identity. */
  identity: Identity;
  /** Rendezvous servers (TCP signaling addresses), in order. */
  servers: ServerAddress[];
  /** Where to bind the UDP socket (default `0.0.0.0`, port 0: any). */
  bind?: { hostname?: string; port?: number };
  /** Lists network interface addresses for local candidates (default: none). */
  networkInterfaces?: () => InterfaceAddress[];
  /** Receives every event (more listeners: {@linkcode P2PClient.on}). */
  emit?: (event: ClientEvent) => void;
  /** The reliable channel factory (default: `p2p_client/reliable/` on the runtime's clock). */
  createChannel?: MessageChannelFactory;
  /** The frame codec (default `linkFrameCodec`). */
  frames?: LinkFrameCodec;
  /** The STUN codec (default `stunBindingCodec`); `null`: do not learn the public endpoint. */
  stunCodec?: StunBindingCodec | null;
  /** Never use direct paths. */
  relayOnly?: boolean;
  /** Path timing overrides. */
  pathOptions?: PathManagerOptions;
  /** Debug log. */
  log?: (message: string) => void;
}

const RECONNECT_RETRY_MS = 1000;
const RECONNECT_RETRIES = 10;

/**
 * The client.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * import { Identity } from "../shared/identity/mod.ts";
 * const client = new P2PClient({
 *   runtime: systemRuntime,
 *   identity: await Identity.generate(),
 *   servers: [{ host: "127.0.0.1", port: 3478 }],
 *   bind: { hostname: "127.0.0.1" },
 * });
 * const unsubscribe = client.on((event) => console.log(event.type));
 * client.start();
 * await client.shutdown(1000);
 * unsubscribe();
 * ```
 */
export class P2PClient {
  readonly #options: P2PClientOptions;
  readonly #runtime: Runtime;
  readonly #now: () => number;
  readonly #listeners = new Set<(event: ClientEvent) => void>();
  readonly #bindHost: string;
  readonly #timer: DeadlineTimer;
  readonly #mux: UdpMux;
  readonly #session: ServerSession;
  readonly #stun: StunClient | undefined;
  readonly #peers: PeerTable;
  #nextMessageId = 1;
  #requestCounter = 0;
  readonly #connectRequests = new Map<string, { peer: string; retries: number }>();
  readonly #reintroduceAt = new Map<string, number>();
  #everRegistered = false;

  /**
   * Builds a client and binds its UDP socket (throws as `Deno.listenDatagram` does); call
   * {@linkcode P2PClient.start}.
   *
   * @example
   * ```ts
   * // new P2PClient({ runtime, identity, servers });
   * ```
   */
  constructor(options: P2PClientOptions) {
    this.#options = options;
    const runtime = this.#runtime = options.runtime;
    this.#now = () => runtime.now();
    this.#bindHost = options.bind?.hostname ?? "0.0.0.0";
    const emit = (event: ClientEvent) => this.#emit(event);
    const socket = runtime.net.listenDatagram({
      hostname: this.#bindHost,
      port: options.bind?.port ?? 0,
    });
    const stunCodec = options.stunCodec === undefined ? stunBindingCodec : options.stunCodec;
    this.#timer = new DeadlineTimer(runtime, () => this.#tick());
    this.#mux = new UdpMux(socket, {
      stun: (bytes, from) => {
        this.#stun?.receive(bytes, from);
        this.#arm();
      },
      peer: (bytes, _type, from) => this.#peers.dispatch(bytes, { kind: "udp", address: from }),
    });
    this.#stun = stunCodec
      ? new StunClient({
        codec: stunCodec,
        send: (bytes, to) => this.#mux.send(bytes, to),
        onMapped: (address) => options.log?.(`STUN mapped address ${formatUdpAddress(address)}`),
        onFailure: (reason) => options.log?.(reason),
        now: this.#now,
        randomTransactionId: () => runtime.randomBytes(12),
      })
      : undefined;
    this.#peers = new PeerTable({
      identity: options.identity,
      runtime,
      sendUdp: (bytes, to) => this.#mux.send(bytes, to),
      sendRelay: (target, bytes) => this.#session.sendRelay(target, bytes),
      emit,
      createChannel: options.createChannel ?? createChannelFactory(runtime),
      frames: options.frames ?? linkFrameCodec,
      pathOptions: options.pathOptions,
      relayOnly: options.relayOnly,
      log: options.log,
    });
    this.#session = new ServerSession({
      runtime,
      servers: options.servers,
      identity: options.identity,
      localAddresses: () => this.#localAddresses(),
      onRegistered: (registration) => this.#onRegistered(registration),
      onEvent: (event) => this.#onSignaling(event),
      onDisconnected: (server, reason) => {
        this.#stun?.pause();
        emit({ type: "disconnected", server, reason });
      },
      onAttemptFailed: (server, reason) =>
        options.log?.(`cannot register with ${server}: ${reason}`),
      onFatal: (code, message) => emit({ type: "error", code, message }),
    });
  }

  /**
   * Subscribes to every event (see {@linkcode ClientEvent}); returns the unsubscribe function.
   * Listeners run synchronously, in subscription order, after the `emit` option.
   *
   * @example
   * ```ts
   * // const off = client.on((event) => { if (event.type === "message") console.log(event.text); });
   * // off();
   * ```
   */
  on(listener: (event: ClientEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: ClientEvent): void {
    this.#options.emit?.(event);
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#options.log?.(`event listener failed: ${error}`);
      }
    }
  }

  /** Our peer ID. */
  get id(): string {
    return this.#options.identity.id;
  }

  /** The UDP port of the shared socket. */
  get udpPort(): number {
    return this.#mux.port;
  }

  /** Known peer IDs (for completion). */
  get knownPeers(): string[] {
    return this.#peers.ids;
  }

  /** Messages not yet acknowledged or reported failed, over all peers. */
  get pendingMessages(): number {
    let total = 0;
    for (const link of this.#peers.links()) total += link.pendingMessages;
    return total;
  }

  /** Packets rejected (failed authentication, replays, malformed), over all peers. */
  get rejectedPackets(): number {
    let total = 0;
    for (const link of this.#peers.links()) total += link.rejectedPackets;
    return total;
  }

  /**
   * Starts the socket, the server session and the timers.
   *
   * @example
   * ```ts
   * // client.start();
   * ```
   */
  start(): void {
    this.#mux.start();
    this.#session.start();
    this.#arm();
  }

  /**
   * Asks the server to broker a connection to `peer`.
   *
   * @example
   * ```ts
   * // client.connect("ab".repeat(20));
   * ```
   */
  connect(peer: string): void {
    if (peer === this.id) {
      this.#emit({
        type: "error",
        code: "bad-argument",
        message: "cannot connect to oneself",
      });
      return;
    }
    // Asking again for a known peer refreshes its candidates and restarts punching.
    this.#peers.getOrCreate(peer);
    this.#requestConnect(peer, 0);
  }

  #requestConnect(peer: string, retries: number): void {
    const requestId = `c${++this.#requestCounter}`;
    this.#connectRequests.set(requestId, { peer, retries });
    if (this.#connectRequests.size > 1024) {
      const oldest = this.#connectRequests.keys().next().value!;
      this.#connectRequests.delete(oldest);
    }
    if (!this.#session.send({ type: "connect", peer, requestId })) {
      // Not registered (yet, or between servers): the request goes out at registration.
      this.#connectRequests.delete(requestId);
      this.#options.log?.(`connect to ${peer} waits for a server`);
    }
  }

  /**
   * Sends a text message to `peer`; returns its message ID (reported in `sent`, then
   * `delivered` or an `error`).
   *
   * @example
   * ```ts
   * // const id = client.send(peerId, "hello");
   * ```
   */
  send(peer: string, text: string): number | undefined {
    const link = this.#peers.get(peer);
    if (!link) {
      this.#emit({
        type: "error",
        code: "unknown-peer",
        message: `not connected to ${peer}: use "connect ${peer}" first`,
        peer,
      });
      return undefined;
    }
    const id = this.#nextMessageId++;
    this.#emit({ type: "sent", peer, messageId: id });
    link.send(id, new TextEncoder().encode(text));
    return id;
  }

  /**
   * The rows of `list`.
   *
   * @example
   * ```ts
   * // console.log(client.list());
   * ```
   */
  list(): PeerSummary[] {
    return [...this.#peers.links()].map((link) => link.summary());
  }

  /**
   * Waits until every message was delivered or reported failed (at most `timeoutMs`), then says
   * goodbye to peers and server and releases everything.
   *
   * @example
   * ```ts
   * // await client.shutdown(10_000);
   * ```
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const deadline = this.#now() + timeoutMs;
    while (this.pendingMessages > 0 && this.#now() < deadline) {
      await sleep(this.#runtime, 20);
    }
    for (const link of this.#peers.links()) {
      if (link.pendingMessages > 0) link.disconnect("client exiting before delivery");
    }
    for (const link of this.#peers.links()) link.close();
    // Give the CLOSE packets a moment to be sealed and sent.
    await sleep(this.#runtime, 20);
    this.#timer.cancel();
    await this.#session.stop();
    await this.#mux.close();
  }

  #localAddresses(): { host: string; port: number }[] {
    const registration = this.#session.registration;
    const serverHost = registration?.host ?? this.#options.servers[0]?.host ?? "";
    let interfaces: InterfaceAddress[] = [];
    try {
      interfaces = this.#options.networkInterfaces?.() ?? [];
    } catch (error) {
      this.#options.log?.(`cannot list network interfaces: ${(error as Error).message}`);
    }
    const includeLoopback = isLoopback(serverHost) ||
      this.#options.servers.every((s) => isLoopback(s.host));
    const found = localCandidates(interfaces, {
      bindHost: this.#bindHost,
      port: this.#mux.port,
      includeLoopback,
    });
    if (found.length === 0 && includeLoopback) return [{ host: "127.0.0.1", port: this.#mux.port }];
    return found;
  }

  #onRegistered(registration: Registration): void {
    const registered = registration.registered;
    this.#emit({ type: "registered", id: registered.id, server: registration.server });
    if (registered.id !== this.id) {
      this.#emit({
        type: "error",
        code: "id-mismatch",
        message: `server issued ${registered.id}, expected ${this.id}`,
      });
    }
    if (registered.stunPort > 0) {
      this.#stun?.configure(
        { host: registration.host, port: registered.stunPort },
        registered.stunUsername,
        registered.stunPassword,
      );
      this.#arm();
    }
    // Connect requests made while unregistered go out now; and a new server session knows
    // nothing of our brokered peers, so they are introduced again (retrying while they come back).
    const retries = this.#everRegistered ? RECONNECT_RETRIES : 0;
    for (const link of this.#peers.links()) {
      if (link.state !== "disconnected") this.#requestConnect(link.peer, retries);
    }
    this.#everRegistered = true;
  }

  #onSignaling(event: SignalingEvent): void {
    if (event.kind === "relay") {
      this.#peers.dispatch(event.payload.slice(), { kind: "relay" }, event.peer);
      return;
    }
    this.#onServerMessage(event.message);
  }

  #onServerMessage(message: ServerMessage): void {
    switch (message.type) {
      case "endpoint":
        this.#emit({ type: "endpoint", public: formatUdpAddress(message.public) });
        return;
      case "introduce":
        this.#onIntroduce(message);
        return;
      case "peer-left": {
        const link = this.#peers.get(message.peer);
        if (link && link.state !== "disconnected") link.disconnect(`peer left (${message.reason})`);
        return;
      }
      case "error":
        this.#onServerError(message);
        return;
      default:
        return;
    }
  }

  #onIntroduce(message: ServerMessageOf<"introduce">): void {
    if (message.requestId) this.#connectRequests.delete(message.requestId);
    const link = this.#peers.getOrCreate(message.peer);
    const rtt = this.#session.registration?.rttMs ?? 0;
    // punchAt on the server's clock → local: localNow + (punchAt - serverTime) - rtt/2.
    const punchAt = this.#now() + (message.punchAt - message.serverTime) - rtt / 2;
    link.introduce({
      publicKey: Uint8Array.fromBase64(message.publicKey),
      candidates: message.candidates.map((c) => ({ host: c.host, port: c.port })),
      role: message.role,
      punchAt,
    });
  }

  #onServerError(message: ServerMessageOf<"error">): void {
    const request = message.requestId ? this.#connectRequests.get(message.requestId) : undefined;
    if (request) {
      this.#connectRequests.delete(message.requestId!);
      if (message.code === "unknown-peer" && request.retries > 0) {
        // After a server restart the peer may not be back yet.
        this.#runtime.setTimer(() => {
          const link = this.#peers.get(request.peer);
          if (link && link.state !== "disconnected") {
            this.#requestConnect(request.peer, request.retries - 1);
          }
        }, RECONNECT_RETRY_MS);
        return;
      }
      const link = this.#peers.get(request.peer);
      if (link && !link.publicKey) this.#peers.remove(request.peer);
      this.#emit({
        type: "error",
        code: message.code,
        message: message.message,
        peer: request.peer,
      });
      return;
    }
    if (message.peer) {
      const link = this.#peers.get(message.peer);
      if (link && link.relayRefused(message.code)) {
        const now = this.#now();
        if ((this.#reintroduceAt.get(message.peer) ?? 0) <= now) {
          this.#reintroduceAt.set(message.peer, now + 2000);
          this.#requestConnect(message.peer, RECONNECT_RETRIES);
        }
      }
      if (link) return;
    }
    this.#emit({ type: "error", code: message.code, message: message.message });
  }

  #tick(): void {
    this.#stun?.tick();
    this.#arm();
  }

  /** Arms the client's timer at the STUN client's next deadline (links keep their own). */
  #arm(): void {
    if (this.#stun) this.#timer.arm(this.#stun.nextDeadline());
  }
}
