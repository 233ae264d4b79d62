/**
 * The P2P client: one UDP socket, the server session, STUN, and a table of independent peer
 * links. Commands (`connect`, `send`, `list`, `id`) come from the prompt or script; everything
 * that happens is reported as {@linkcode ClientEvent}s.
 *
 * @module
 */
import { formatServerAddress, type ServerAddress } from "../shared/config/mod.ts";
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
import { type DatagramSocket, UdpMux } from "./udp_mux.ts";

/** Everything a {@linkcode P2PClient} is built from. */
export interface P2PClientOptions {
  /** Our identity. */
  identity: Identity;
  /** Rendezvous servers (TCP signaling addresses), in order. */
  servers: ServerAddress[];
  /** The bound UDP socket. */
  socket: DatagramSocket;
  /** The host the socket is bound to (`0.0.0.0` for all). */
  bindHost: string;
  /** Lists network interface addresses (default `Deno.networkInterfaces`). */
  networkInterfaces?: () => InterfaceAddress[];
  /** Receives every event. */
  emit: (event: ClientEvent) => void;
  /** The reliable channel factory (needs the clock). */
  createChannel: MessageChannelFactory;
  /** The frame codec. */
  frames: LinkFrameCodec;
  /** The STUN codec; without one the client does not learn its public endpoint. */
  stunCodec?: StunBindingCodec;
  /** Clock, ms (default `Date.now`). */
  now?: () => number;
  /** Never use direct paths. */
  relayOnly?: boolean;
  /** Path timing overrides. */
  pathOptions?: PathManagerOptions;
  /** Debug log. */
  log?: (message: string) => void;
  /** Timer period, ms (default 20). */
  tickMs?: number;
}

const RECONNECT_RETRY_MS = 1000;
const RECONNECT_RETRIES = 10;

/**
 * The client.
 *
 * @example
 * ```ts
 * // const client = new P2PClient(options);
 * // client.start();
 * // client.connect(peerId);
 * // const id = client.send(peerId, "hello");
 * // await client.shutdown(10_000);
 * ```
 */
export class P2PClient {
  readonly #options: P2PClientOptions;
  readonly #now: () => number;
  readonly #mux: UdpMux;
  readonly #session: ServerSession;
  readonly #stun: StunClient | undefined;
  readonly #peers: PeerTable;
  #nextMessageId = 1;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #requestCounter = 0;
  readonly #connectRequests = new Map<
    string,
    { peer: string; retries: number; quiet?: boolean }
  >();
  readonly #reintroduceAt = new Map<string, number>();
  #everRegistered = false;

  /**
   * Builds a client (call {@linkcode P2PClient.start}).
   *
   * @example
   * ```ts
   * // new P2PClient({ identity, servers, socket, bindHost: "0.0.0.0", emit, createChannel, frames, stunCodec });
   * ```
   */
  constructor(options: P2PClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#mux = new UdpMux(options.socket, {
      stun: (bytes, from) => this.#stun?.receive(bytes, from),
      peer: (bytes, _type, from) => this.#peers.dispatch(bytes, { kind: "udp", address: from }),
    });
    this.#stun = options.stunCodec && new StunClient({
      codec: options.stunCodec,
      send: (bytes, to) => this.#mux.send(bytes, to),
      onMapped: (address) => options.log?.(`STUN mapped address ${formatUdpAddress(address)}`),
      onFailure: (reason) => options.log?.(reason),
      now: this.#now,
    });
    this.#peers = new PeerTable({
      identity: options.identity,
      now: this.#now,
      sendUdp: (bytes, to) => this.#mux.send(bytes, to),
      sendRelay: (target, bytes) => this.#session.sendRelay(target, bytes),
      emit: (event) => {
        if (this.#sending) this.#sending.push(event);
        else options.emit(event);
      },
      createChannel: options.createChannel,
      frames: options.frames,
      randomNonce: () => crypto.getRandomValues(new Uint8Array(8)),
      pathOptions: options.pathOptions,
      relayOnly: options.relayOnly,
      log: options.log,
    });
    this.#session = new ServerSession({
      servers: options.servers,
      identity: options.identity,
      localAddresses: () => this.#localAddresses(),
      onRegistered: (registration) => this.#onRegistered(registration),
      onEvent: (event) => this.#onSignaling(event),
      onDisconnected: (server, reason) => {
        this.#stun?.pause();
        options.emit({ type: "disconnected", server, reason });
        this.#serverState("connecting", server, reason);
      },
      onAttemptFailed: (server, reason) => {
        options.log?.(`cannot register with ${server}: ${reason}`);
        // The server answered with an error or a goodbye: refused; else it did not answer.
        const refused = /^server replied /.test(reason);
        this.#serverState(refused ? "refused" : "unreachable", server, reason);
      },
      onFatal: (code, message) => {
        options.emit({ type: "error", code, message });
        this.#serverState("refused", this.#session.registration?.server ?? "server", message);
      },
      now: this.#now,
    });
  }

  /** Our peer ID. */
  get id(): string {
    return this.#options.identity.id;
  }

  /** Our public key. */
  get publicKey(): Uint8Array {
    return this.#options.identity.publicKey;
  }

  /**
   * A peer's public key, once introduced.
   *
   * @example
   * ```ts
   * // client.peerPublicKey(peerId)?.length; // 32
   * ```
   */
  peerPublicKey(peer: string): Uint8Array | undefined {
    return this.#peers.get(peer)?.publicKey;
  }

  /**
   * Messages not yet acknowledged or reported failed, per peer (peers with none left out).
   *
   * @example
   * ```ts
   * // for (const [peer, count] of client.pendingPerPeer()) console.log(peer, count);
   * ```
   */
  pendingPerPeer(): Map<string, number> {
    const pending = new Map<string, number>();
    for (const link of this.#peers.links()) {
      if (link.pendingMessages > 0) pending.set(link.peer, link.pendingMessages);
    }
    return pending;
  }

  #lastServerState = "";
  /** Events of the peer links held while `send` runs (see there). */
  #sending: ClientEvent[] | undefined;

  /** Emits a `server` event when the state, server or reason changed. */
  #serverState(
    state: "connecting" | "registered" | "unreachable" | "refused",
    server: string,
    reason?: string,
  ): void {
    const key = `${state}|${server}|${reason ?? ""}`;
    if (key === this.#lastServerState) return;
    this.#lastServerState = key;
    this.#options.emit({
      type: "server",
      state,
      server,
      ...(state === "registered" ? { id: this.id } : {}),
      ...(reason ? { reason } : {}),
    });
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
    const first = this.#options.servers[0];
    if (first) this.#serverState("connecting", formatServerAddress(first));
    this.#session.start();
    this.#ticker = setInterval(() => this.#tick(), this.#options.tickMs ?? 20);
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
      this.#options.emit({
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

  /**
   * Asks the server, quietly, whether `peer` is online: an introduction connects as `connect`
   * does; a refusal (`unknown-peer`: offline) is not reported. For the presence of contacts.
   *
   * @example
   * ```ts
   * // client.probe(contactId);
   * ```
   */
  probe(peer: string): void {
    if (peer === this.id) return;
    const link = this.#peers.get(peer);
    if (link && link.state !== "disconnected") return;
    const requestId = `p${++this.#requestCounter}`;
    this.#connectRequests.set(requestId, { peer, retries: 0, quiet: true });
    if (!this.#session.send({ type: "connect", peer, requestId })) {
      this.#connectRequests.delete(requestId);
    }
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
      this.#options.emit({
        type: "error",
        code: "unknown-peer",
        message: `not connected to ${peer}: use "connect ${peer}" first`,
        peer,
      });
      return undefined;
    }
    const id = this.#nextMessageId++;
    // `sent` only for a message that was accepted: one refused at once (peer disconnected, queue
    // full, too large) gets its error alone, not "queued" then "not sent".
    const during: ClientEvent[] = [];
    this.#sending = during;
    try {
      link.send(id, new TextEncoder().encode(text));
    } finally {
      this.#sending = undefined;
    }
    const refused = during.some((event) => event.type === "error" && event.messageId === id);
    if (!refused) this.#options.emit({ type: "sent", peer, messageId: id });
    for (const event of during) this.#options.emit(event);
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
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const link of this.#peers.links()) {
      if (link.pendingMessages > 0) link.disconnect("client exiting before delivery");
    }
    for (const link of this.#peers.links()) link.close();
    // Give the CLOSE packets a moment to be sealed and sent.
    await new Promise((resolve) => setTimeout(resolve, 20));
    clearInterval(this.#ticker);
    await this.#session.stop();
    await this.#mux.close();
  }

  #localAddresses(): { host: string; port: number }[] {
    const registration = this.#session.registration;
    const serverHost = registration?.host ?? this.#options.servers[0]?.host ?? "";
    let interfaces: InterfaceAddress[] = [];
    try {
      interfaces = (this.#options.networkInterfaces ?? Deno.networkInterfaces)();
    } catch (error) {
      this.#options.log?.(`cannot list network interfaces: ${(error as Error).message}`);
    }
    const includeLoopback = isLoopback(serverHost) ||
      this.#options.servers.every((s) => isLoopback(s.host));
    const found = localCandidates(interfaces, {
      bindHost: this.#options.bindHost,
      port: this.#mux.port,
      includeLoopback,
    });
    if (found.length === 0 && includeLoopback) return [{ host: "127.0.0.1", port: this.#mux.port }];
    return found;
  }

  #onRegistered(registration: Registration): void {
    const registered = registration.registered;
    this.#options.emit({ type: "registered", id: registered.id, server: registration.server });
    this.#serverState("registered", registration.server);
    if (registered.id !== this.id) {
      this.#options.emit({
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
        this.#options.emit({ type: "endpoint", public: formatUdpAddress(message.public) });
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
      if (request.quiet) return; // a presence question: offline (or refused) is not news
      if (message.code === "unknown-peer" && request.retries > 0) {
        // After a server restart the peer may not be back yet.
        setTimeout(() => {
          const link = this.#peers.get(request.peer);
          if (link && link.state !== "disconnected") {
            this.#requestConnect(request.peer, request.retries - 1);
          }
        }, RECONNECT_RETRY_MS);
        return;
      }
      // The cause first, then what it means for messages already queued for that peer.
      this.#options.emit({
        type: "error",
        code: message.code,
        message: message.message,
        peer: request.peer,
      });
      const link = this.#peers.get(request.peer);
      if (link && !link.publicKey) this.#peers.remove(request.peer);
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
    this.#options.emit({ type: "error", code: message.code, message: message.message });
  }

  #tick(): void {
    this.#stun?.tick();
    this.#peers.tick();
  }
}
