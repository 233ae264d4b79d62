/**
 * The P2P client: one UDP socket, the server session, STUN, and a table of independent peer
 * links. Commands (`connect`, `send`, `list`, `id`) come from the prompt or script; everything
 * that happens is reported as {@linkcode ClientEvent}s (`emit` option, or
 * {@linkcode P2PClient.on}).
 *
 * It is built from one injected runtime, an identity and a config, and reads no process globals,
 * so a simulator runs several real clients and the real server in one process on virtual time.
 *
 * Peers are re-introduced automatically: a peer we have messages for or had a session with is
 * asked for again after it left, after our server connection came back, and after a stalled
 * session (with backoff from 1 s to 15 s while the server says it is not online).
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
import { diagnoseNat } from "./nat_probe/diagnose.ts";
import type { NatReport } from "./nat_probe/nat_probe.ts";
import type { InterfaceAddress as GatewayInterface } from "./portmap/gateway.ts";
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
import { classifyPacket } from "./inbound_packet.ts";
import { ReceivedWindow } from "./received_window.ts";
import {
  boundState,
  type ClientStore,
  MAX_STORED_MESSAGES,
  SAVE_DELAY_MS,
  type StoredMessage,
  type StoreEntry,
} from "./client_store.ts";
import type { UdpAddress } from "./path_manager.ts";
import { FileTransfers, type OfferDecision } from "./files/transfers.ts";
import type { DownloadStore, FileSource, TransferSummary } from "./files/types.ts";
import { openFileSource } from "./files/fs_store.ts";
import { TurnClient } from "./turn_client.ts";
import type { RelayPolicy, TurnRelayInfo } from "./relay_paths.ts";

/** A TURN server of the config, resolved: a relay path for every peer (RFC 8656). */
export interface TurnServerEntry {
  /** Literal IP address of the server. */
  host: string;
  /** UDP port. */
  port: number;
  /** How it is shown: `turn host:port` (the host as the config names it). */
  label: string;
  /** Long-term credential: user name (never logged). */
  username: string;
  /** Long-term credential: password (never logged). */
  credential: string;
}
import { ClientTraversal, type ClientTraversalSettings } from "./traversal/client_traversal.ts";
import { MAX_LOCAL_ADDRESSES } from "../shared/signaling/constants.ts";
import { BufferPool } from "./files/buffer_pool.ts";
import { encodeEnvelope, FILE_MESSAGE_UID } from "./outbox.ts";

/** The outbox's envelope of file messages (their wire ID), put in front by `FileTransfers`. */
const FILE_ENVELOPE_PREFIX = encodeEnvelope(FILE_MESSAGE_UID, new Uint8Array(0));
import { CHUNK_HEADER_BYTES } from "../shared/files/codec.ts";
import { MAX_LARGE_DATA_PAYLOAD_BYTES } from "../shared/peer/frames.ts";
import { ProbeBudget, type ProbeBudgetOptions, type ProbeBudgetStats } from "./probe_budget.ts";
import { isCandidateHost } from "../shared/signaling/candidate_address.ts";

/**
 * Receive and send buffers asked of the kernel for the UDP socket (4 MiB; without privileges
 * Linux grants up to `net.core.rmem_max`, by default 212,992 bytes, reported as twice that).
 * On loopback 4 MiB moved the bulk bench's 256 MiB at 0.6–1.0 GB/s instead of 0.3–0.5.
 */
const UDP_BUFFER_BYTES = 4 << 20;
/** Linux's default UDP receive buffer as the kernel reports it: what a peer assumes. */
const LINUX_DEFAULT_UDP_BUFFER = 212_992;

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
  /**
   * Lists network interface addresses for local candidates (default: the runtime's
   * `net.interfaceAddresses`, if it has one; none otherwise).
   */
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
  /** TURN servers used as relay paths beside the rendezvous server's relay (config `turn`). */
  turnServers?: TurnServerEntry[];
  /**
   * Which relays may carry peer packets (`--relay`): `server` (the rendezvous server's only; no
   * TURN allocation is made), `turn` (TURN only; nothing is sent through the server's relay),
   * `any` (default: both, preferring the one with the lower round trip).
   */
  relayPolicy?: RelayPolicy;
  /**
   * Who may be introduced to this client (issue 11, consent before addresses). Absent: policy
   * `anyone` (the server introduces whoever knows the ID). Given: the client declares `consent`
   * and the server asks it first (`introduce-request`); it answers with this function's verdict,
   * e.g. `(peer) => contacts.has(peer)` for `--accept contacts`.
   */
  acceptPeer?: (peer: string) => boolean;
  /** Path timing overrides. */
  pathOptions?: PathManagerOptions;
  /** Limits on packets to addresses that never answered (defaults: `probe_budget.ts`). */
  probeBudget?: ProbeBudgetOptions;
  /** Time allowed for each message's outcome, ms (default 30,000). */
  deliveryTimeoutMs?: number;
  /**
   * Where unconfirmed messages and recently received message IDs survive a restart (default:
   * nowhere, as with `--ephemeral`).
   */
  store?: ClientStore;
  /** File transfers: the downloads folder, the accept policy, how files are opened. */
  files?: {
    store: DownloadStore;
    decide: (peer: string, name: string, size: number) => OfferDecision;
    openSource?: (path: string) => Promise<FileSource>;
  };
  /**
   * Hard-NAT traversal (`traversal/`): measure our NAT at registration, map our port on the
   * gateway (PCP / NAT-PMP / UPnP-IGD), punch birthday-style where the NAT classes call for it.
   * Absent: none of it (plain punching only).
   */
  traversal?: ClientTraversalSettings;
  /** Debug log. */
  log?: (message: string) => void;
}

const UTF8 = new TextEncoder();

/** A stranger's declined introductions are reported at most once per this time, ms. */
const DECLINED_REPORT_INTERVAL_MS = 60_000;
/** Peers whose declined introductions are remembered for that (oldest forgotten first). */
const MAX_DECLINED_REMEMBERED = 256;
/** At most this many `declined` events a minute over all peers. */
const MAX_DECLINED_REPORTS = 10;

/** First retry of an introduction the server could not make (peer not online), ms. */
const INTRODUCTION_RETRY_MS = 1000;
/** Longest pause between introduction retries, ms. */
const MAX_INTRODUCTION_RETRY_MS = 15_000;
/**
 * Bounds of the STUN re-check when a peer path gets no answer (a NAT mapping that expired gets a
 * new public port; the 15 s keepalive would find it only later): first after 2 s at most, then
 * with backoff up to 3 s (a mapping that changes while a path is already lost must still be found
 * within a few seconds; the probing that reports trouble is itself bounded, see PathManager).
 */
const STUN_REFRESH_MIN_GAP_MS = 2000;
const STUN_REFRESH_MAX_GAP_MS = 3000;
/** STUN reachability requests while not registered (a healed network is noticed this fast). */
const SERVER_WATCH_MS = 1000;
/** STUN checks while the signaling connection is stalled: at most one a second. */
const STALL_STUN_GAP_MS = 1000;

interface IntroductionWanted {
  timer: number | undefined;
  delayMs: number;
  /** Asked for by the user (`connect`): an unknown peer is then reported and forgotten. */
  byUser: boolean;
}

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
  readonly #acceptPeer: ((peer: string) => boolean) | undefined;
  readonly #runtime: Runtime;
  readonly #now: () => number;
  readonly #listeners = new Set<(event: ClientEvent) => void>();
  readonly #bindHost: string;
  readonly #timer: DeadlineTimer;
  readonly #saveTimer: DeadlineTimer;
  readonly #mux: UdpMux;
  readonly #session: ServerSession;
  readonly #stun: StunClient | undefined;
  readonly #peers: PeerTable;
  readonly #received = new ReceivedWindow();
  #nextMessageId = 1;
  #requestCounter = 0;
  /** Connect request ID → peer. */
  readonly #connectRequests = new Map<string, string>();
  readonly #wanted = new Map<string, IntroductionWanted>();
  /** Request IDs of presence questions ({@linkcode P2PClient.probe}). */
  readonly #probes = new Set<string>();
  #publicEndpoint: UdpAddress | undefined;
  #stunRefreshGapMs = STUN_REFRESH_MIN_GAP_MS;
  #stopped = false;
  /** The refusal of the registration attempt under way (`code: message`), for its `server` event. */
  #refusal: string | undefined;
  /** `server|code` of the last `refused` event of a registration (reset at registration). */
  #lastRefusal = "";
  /** When we last reported declining each peer (one `declined` event per peer a minute). */
  readonly #declinedAt = new Map<string, number>();
  #declinedWindowAt = -Infinity;
  #declinedReports = 0;
  #declinedUnreported = 0;
  readonly #files: FileTransfers | undefined;
  /** One TURN client per config entry (none with `--relay server`). */
  readonly #turn: TurnClient[] = [];
  readonly #relayPolicy: RelayPolicy;
  readonly #traversal: ClientTraversal | undefined;
  readonly #probeBudget: ProbeBudget;
  /** Addresses whose exhausted budget was logged (bounded). */
  readonly #budgetLogged = new Set<string>();

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
    // Bulk data on a short path waits in our receive buffer: a larger one lets the peer keep
    // more in flight (it learns the size from our PARAMETERS frames). Needs FFI (issue 14).
    const udpBuffer = socket.enlargeBuffers?.(UDP_BUFFER_BYTES);
    const udpReceiveBuffer = udpBuffer !== undefined && udpBuffer > LINUX_DEFAULT_UDP_BUFFER
      ? udpBuffer
      : undefined;
    options.log?.(`UDP receive buffer: ${udpReceiveBuffer ?? "the system's default"}`);
    const stunCodec = options.stunCodec === undefined ? stunBindingCodec : options.stunCodec;
    this.#timer = new DeadlineTimer(runtime, () => this.#tick());
    this.#saveTimer = new DeadlineTimer(runtime, () => this.#save());
    this.#mux = new UdpMux(socket, {
      stun: (bytes, from) => {
        // The server answers over UDP: if our signaling connection is stuck, redial now.
        if (this.#stun?.receive(bytes, from)) this.#session.serverReachable();
        this.#arm();
      },
      peer: (packet, from) => this.#peers.dispatch(packet, { kind: "udp", address: from }),
      other: (bytes, from) => this.#traversal?.handle(bytes, from) ?? false,
    });
    this.#traversal = options.traversal && !options.relayOnly
      ? new ClientTraversal({
        ...options.traversal,
        runtime,
        log: options.log,
        sendMain: (bytes, to) => this.#mux.send(bytes, to),
        dispatch: (bytes, from) => {
          const packet = classifyPacket(bytes);
          if (packet?.kind !== "stun") {
            this.#peers.dispatch(packet, { kind: "udp", address: from });
          }
        },
        publicEndpoint: () => this.#publicEndpoint,
        emit,
        onChange: (what) => this.#traversalChanged(what),
      })
      : undefined;
    this.#stun = stunCodec
      ? new StunClient({
        codec: stunCodec,
        send: (bytes, to) => this.#mux.send(bytes, to),
        onMapped: (address) => {
          options.log?.(`STUN mapped address ${formatUdpAddress(address)}`);
          this.#learnedEndpoint(address);
        },
        onFailure: (reason) => options.log?.(reason),
        onReachable: () => {
          options.log?.("the server answers over UDP again: reconnecting now");
          this.#session.serverBack();
        },
        now: this.#now,
        randomTransactionId: () => runtime.randomBytes(12),
      })
      : undefined;
    this.#relayPolicy = options.relayPolicy ?? "any";
    if (this.#relayPolicy !== "server") {
      for (const [id, entry] of (options.turnServers ?? []).entries()) {
        this.#turn.push(
          new TurnClient({
            runtime,
            server: { host: entry.host, port: entry.port },
            label: entry.label,
            username: entry.username,
            password: entry.credential,
            onData: (from, bytes) =>
              this.#peers.dispatch(classifyPacket(bytes), {
                kind: "turn",
                relay: id,
                address: from,
              }),
            onStateChange: (state, reason) => this.#turnStateChanged(id, state, reason),
            log: options.log,
          }),
        );
      }
    }
    // File chunks: one message fills one DATA fragment of the largest packet with the outbox's
    // envelope in front, read into pooled buffers given back on acknowledgement (issue 14).
    const chunkPool = new BufferPool(MAX_LARGE_DATA_PAYLOAD_BYTES, 64);
    this.#probeBudget = new ProbeBudget(options.probeBudget);
    const serversOnLoopback = options.servers.every((s) => isLoopback(s.host));
    this.#peers = new PeerTable({
      identity: options.identity,
      runtime,
      sendUdp: (bytes, to) => this.#sendPeerUdp(bytes, to),
      udpAnswered: (from) => this.#probeBudget.answered(from, this.#now()),
      udpReceiveBuffer,
      // Never unspecified, broadcast or multicast; loopback only between clients of a loopback
      // server (from a remote peer it would aim our packets at our own machine's services).
      acceptCandidate: (c) =>
        Number.isInteger(c.port) && c.port > 0 && c.port <= 65_535 && isCandidateHost(c.host) &&
        (serversOnLoopback || !isLoopback(c.host)),
      // `--relay turn`: nothing goes through the rendezvous server's relay.
      sendRelay: (target, bytes) =>
        this.#relayPolicy !== "turn" && this.#session.sendRelay(target, bytes),
      reserveRelay: (target, length) =>
        this.#relayPolicy === "turn" ? undefined : this.#session.reserveRelay(target, length),
      cancelRelay: (space) => this.#session.cancelRelay(space),
      relayPolicy: this.#relayPolicy,
      turnRelays: () => this.#turnRelays(),
      sendTurn: (relay, bytes, to) => this.#turn[relay]?.send(to, bytes) ?? false,
      permitTurn: (hosts) => {
        for (const turn of this.#turn) turn.permit(hosts);
      },
      localRelayAddresses: () => this.#relayedAddresses(),
      emit,
      createChannel: options.createChannel ?? createChannelFactory(runtime),
      frames: options.frames ?? linkFrameCodec,
      firstTime: (peer, uid) => {
        const first = this.#received.firstTime(peer, uid);
        if (first) {
          // Recorded before the message is printed: a restart never prints it again.
          this.#record({ kind: "received", peer, uid });
          this.#scheduleSave();
        }
        return first;
      },
      onResolved: (id) => this.#record({ kind: "resolved", id }),
      requestIntroduction: (peer) => this.#wantIntroduction(peer, false),
      onPathTrouble: (_peer, fresh) => {
        // A direct path just went unanswered: check our mapping now (at most every 2 s, a request
        // in flight replaced: its retransmissions slow down fast); while
        // paths stay in doubt or lost, again with backoff up to 3 s.
        if (fresh) this.#stunRefreshGapMs = STUN_REFRESH_MIN_GAP_MS;
        if (this.#stun?.refresh(this.#stunRefreshGapMs, true)) {
          this.#stunRefreshGapMs = Math.min(this.#stunRefreshGapMs * 2, STUN_REFRESH_MAX_GAP_MS);
          this.#arm();
        }
      },
      localCandidates: () => this.#candidates(),
      onOutboxChange: () => this.#scheduleSave(),
      deliveryTimeoutMs: options.deliveryTimeoutMs,
      pathOptions: options.pathOptions,
      relayOnly: options.relayOnly,
      log: options.log,
      onFileMessage: (peer, bytes) => this.#files?.onMessage(peer, bytes),
      onFileRoom: (peer) => this.#files?.roomAvailable(peer),
      onFileReset: (peer) => this.#files?.peerReset(peer),
      traversal: this.#traversal?.linkContext(),
      onFileReleased: (_peer, wire) => chunkPool.release(wire),
    });
    const files = options.files;
    this.#files = files
      ? new FileTransfers({
        runtime,
        // Messages come in the outbox's envelope (its wire ID in front), so chunks are not copied
        // again; a pooled chunk returns to the pool when the peer acknowledged it.
        send: (peer, message, priority) =>
          this.#peers.get(peer)?.sendFileMessage(message, priority, true) ?? priority === "normal",
        chunkPool,
        messagePrefix: FILE_ENVELOPE_PREFIX,
        chunkBytes: MAX_LARGE_DATA_PAYLOAD_BYTES - CHUNK_HEADER_BYTES - FILE_ENVELOPE_PREFIX.length,
        emit,
        openSource: files.openSource ?? openFileSource,
        store: files.store,
        decide: files.decide,
        log: options.log,
      })
      : undefined;
    this.#session = new ServerSession({
      runtime,
      servers: options.servers,
      identity: options.identity,
      // Our TURN relayed addresses go with the local ones: a peer can reach us through them
      // before any session exists (TURN on both sides, the server's relay refused).
      localAddresses: () => this.#serverAddresses(),
      onRegistered: (registration) => this.#onRegistered(registration),
      onEvent: (event) => this.#onSignaling(event),
      onDisconnected: (server, reason) => {
        // Keep asking the server over UDP: when it answers again, redial at once.
        this.#stun?.watch(SERVER_WATCH_MS);
        this.#arm();
        emit({ type: "disconnected", server, reason });
        this.#serverState("connecting", server, reason);
      },
      onRefused: (server, code, message) => {
        // Said once per server and code until a registration succeeds (the session retries).
        this.#refusal = `${code}: ${message}`;
        const key = `${server}|${code}`;
        if (key === this.#lastRefusal) return;
        this.#lastRefusal = key;
        emit({ type: "refused", server, code, message, during: "registration" });
      },
      onAttemptFailed: (server, reason) => {
        options.log?.(`cannot register with ${server}: ${reason}`);
        // The server answered with an error or a goodbye: refused; else it did not answer.
        const refusal = this.#refusal;
        this.#refusal = undefined;
        if (refusal !== undefined) this.#serverState("refused", server, refusal);
        else this.#serverState("unreachable", server, reason);
      },
      onFatal: (code, message) => {
        emit({ type: "error", code, message });
        this.#serverState("refused", this.#session.registration?.server ?? "server", message);
      },
      log: options.log,
      consent: options.acceptPeer !== undefined,
      onStalled: () => {
        // Does the server answer over UDP? (If so, the STUN answer makes the session redial.)
        if (this.#stun?.refresh(STALL_STUN_GAP_MS, true)) this.#arm();
      },
    });
    this.#acceptPeer = options.acceptPeer;
    this.#restore();
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
    if (this.#sending) {
      this.#sending.push(event);
      return;
    }
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
   * Messages without an outcome yet, per peer (peers with none left out).
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

  /**
   * The IDs of the messages without an outcome yet, per peer.
   *
   * @example
   * ```ts
   * // for (const [peer, ids] of client.pendingMessageIds()) console.log(peer, ids);
   * ```
   */
  pendingMessageIds(): Map<string, number[]> {
    const pending = new Map<string, number[]>();
    for (const link of this.#peers.links()) {
      const ids = link.outboxMessages().map((message) => message.id);
      if (ids.length > 0) pending.set(link.peer, ids);
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
    this.#emit({
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

  /** Messages without an outcome yet, over all peers. */
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
   * The `nat` command: NAT behaviour measured against the registered server's STUN port (RFC
   * 5780 when the server has an alternate address and port), the public endpoints, latency, and
   * the port-mapping protocols the gateway offers (gateway guessed from the interfaces: the
   * client runs without the `--allow-all` Deno needs for /proc/net/route).
   */
  async natReport(): Promise<NatReport> {
    const registration = this.#session.registration;
    const servers = registration !== undefined && registration.registered.stunPort > 0
      ? [{ hostname: registration.host, port: registration.registered.stunPort }]
      : [];
    const interfaces = this.#interfaces();
    return await diagnoseNat({ runtime: this.#runtime, servers, interfaces });
  }

  /** Our NAT as measured at registration (with `traversal`), once measured. */
  get natFacts(): { udpReachable: boolean; mapping: string; filtering: string } | undefined {
    return this.#traversal?.nat;
  }

  /** True while registered with a server. */
  get registered(): boolean {
    return this.#session.registration !== undefined;
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
    for (const turn of this.#turn) {
      try {
        turn.start();
      } catch (error) {
        this.#options.log?.(`${turn.label}: cannot bind a socket: ${(error as Error).message}`);
      }
    }
    const first = this.#options.servers[0];
    if (first) this.#serverState("connecting", formatServerAddress(first));
    this.#session.start();
    this.#traversal?.start(this.#mux.port, () => this.#interfaces());
    this.#arm();
  }

  /** Interface addresses with names and netmasks where the lister gives them. */
  #interfaces(): GatewayInterface[] {
    try {
      return (this.#options.networkInterfaces?.() ?? []).map((entry) => {
        const info = entry as InterfaceAddress & { name?: string; netmask?: string };
        return {
          name: info.name ?? "",
          family: info.family,
          address: info.address,
          netmask: info.netmask ?? "",
        };
      });
    } catch (error) {
      this.#options.log?.(`cannot list network interfaces: ${(error as Error).message}`);
      return [];
    }
  }

  /** Our NAT facts or port mapping changed: tell the server and the peers. */
  #traversalChanged(what: "nat" | "mapping"): void {
    if (this.#stopped) return;
    if (what === "mapping") {
      this.#session.send({ type: "addresses", localAddresses: this.#serverAddresses() });
      for (const link of this.#peers.links()) link.announceCandidates();
    }
    for (const link of this.#peers.links()) link.localFactsChanged();
  }

  /**
   * The addresses the server offers peers besides our public endpoint: the mapped one first, then
   * the local ones and our TURN relayed addresses.
   */
  #serverAddresses(): { host: string; port: number }[] {
    const out = [...this.#localAddresses(), ...this.#relayedAddresses()];
    const mapped = this.#traversal?.mapped;
    if (mapped && !out.some((a) => a.host === mapped.host && a.port === mapped.port)) {
      out.unshift(mapped);
    }
    return out.slice(0, MAX_LOCAL_ADDRESSES);
  }

  /**
   * Asks the server to broker a connection to `peer` (again: refreshes its candidates and
   * restarts punching).
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
    this.#peers.getOrCreate(peer);
    this.#wantIntroduction(peer, true);
  }

  /** Keeps asking the server to introduce `peer` until it does (or the link is not wanted). */
  #wantIntroduction(peer: string, byUser: boolean): void {
    if (this.#stopped) return;
    const existing = this.#wanted.get(peer);
    if (existing) {
      existing.byUser ||= byUser;
      if (byUser) {
        // The user asked now: ask now.
        this.#runtime.clearTimer(existing.timer);
        existing.timer = undefined;
        existing.delayMs = INTRODUCTION_RETRY_MS;
        this.#requestConnect(peer);
      }
      return;
    }
    this.#wanted.set(peer, { timer: undefined, delayMs: INTRODUCTION_RETRY_MS, byUser });
    this.#requestConnect(peer);
  }

  #retryIntroduction(peer: string): void {
    const wanted = this.#wanted.get(peer);
    const link = this.#peers.get(peer);
    if (!wanted || !link || this.#stopped) return;
    if (!link.wanted && !wanted.byUser) {
      this.#wanted.delete(peer);
      return;
    }
    this.#runtime.clearTimer(wanted.timer);
    const delay = wanted.delayMs * (0.75 + 0.5 * this.#runtime.random());
    wanted.delayMs = Math.min(MAX_INTRODUCTION_RETRY_MS, wanted.delayMs * 2);
    wanted.timer = this.#runtime.setTimer(() => {
      wanted.timer = undefined;
      this.#requestConnect(peer);
    }, delay);
  }

  /**
   * Asks the server, quietly, whether `peer` is online: an introduction connects as `connect`
   * does; a refusal (`unknown-peer`: offline) is not reported and not retried. For the presence
   * of contacts.
   *
   * @example
   * ```ts
   * // client.probe(contactId);
   * ```
   */
  probe(peer: string): void {
    if (peer === this.id || this.#stopped || this.#wanted.has(peer)) return;
    const link = this.#peers.get(peer);
    if (link && link.state !== "disconnected") return;
    const requestId = `p${++this.#requestCounter}`;
    this.#probes.add(requestId);
    if (this.#probes.size > 1024) this.#probes.delete(this.#probes.values().next().value!);
    if (!this.#session.send({ type: "connect", peer, requestId })) this.#probes.delete(requestId);
  }

  #requestConnect(peer: string): void {
    const requestId = `c${++this.#requestCounter}`;
    this.#connectRequests.set(requestId, peer);
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
   * Sends a text message to `peer`; returns its message ID (reported in `sent`, then exactly one
   * of `delivered`, `unconfirmed` or an `error` with code `delivery-failed`).
   *
   * @example
   * ```ts
   * // const id = client.send(peerId, "hello");
   * ```
   */
  send(peer: string, text: string): number | undefined {
    const link = this.#peers.get(peer);
    if (!link) {
      this.#notConnected(peer);
      return undefined;
    }
    const id = this.#nextMessageId++;
    const uid = this.#runtime.randomBytes(8).toHex();
    // Recorded before it is reported, so not even a crash loses it.
    this.#record({ kind: "queued", message: { peer, id, uid, text, sent: false } });
    // `sent` only for a message that was accepted: one refused at once (queue full, too large)
    // gets its error alone, not "queued" then "not sent".
    const during: ClientEvent[] = [];
    this.#sending = during;
    try {
      link.send(id, UTF8.encode(text), uid);
    } finally {
      this.#sending = undefined;
    }
    const refused = during.some((event) => event.type === "error" && event.messageId === id);
    if (!refused) this.#emit({ type: "sent", peer, messageId: id });
    for (const event of during) this.#emit(event);
    this.#scheduleSave();
    return id;
  }

  /** Reports that `peer` has no link yet (`send` and `sendfile` before `connect`). */
  #notConnected(peer: string): void {
    this.#emit({
      type: "error",
      code: "unknown-peer",
      message: `not connected to ${peer}: use "connect ${peer}" first`,
      peer,
    });
  }

  /**
   * Offers the file at `path` to `peer` (connected or known); `file` events follow. Resolves with
   * the transfer ID, or undefined after reporting an `error` (unknown peer, unreadable file).
   *
   * @example
   * ```ts
   * // const id = await client.sendFile(peerId, "/tmp/photo.jpg");
   * ```
   */
  async sendFile(peer: string, path: string): Promise<string | undefined> {
    if (!this.#files) {
      this.#emit({ type: "error", code: "files-disabled", message: "file transfer is off" });
      return undefined;
    }
    if (!this.#peers.get(peer)) {
      this.#notConnected(peer);
      return undefined;
    }
    try {
      return await this.#files.sendFile(peer, path);
    } catch (error) {
      this.#emit({ type: "error", code: "file-unreadable", message: (error as Error).message });
      return undefined;
    }
  }

  /** File transfers (for `files`). */
  files(): TransferSummary[] {
    return this.#files?.list() ?? [];
  }

  /** Cancels a transfer (ID or unique prefix); false when none matches or it has ended. */
  cancelFile(id: string): boolean {
    return this.#files?.cancel(id) ?? false;
  }

  /** Accepts a file offered to us (policy `ask`). */
  acceptFile(id: string): boolean {
    return this.#files?.accept(id) ?? false;
  }

  /** Declines a file offered to us. */
  rejectFile(id: string): boolean {
    return this.#files?.reject(id) ?? false;
  }

  /** Whether file transfers are still running. */
  get transfersActive(): boolean {
    return this.#files?.active ?? false;
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
   * Waits until every message has an outcome (at most `timeoutMs`), then says goodbye to peers
   * and server and releases everything. With a store, messages still without an outcome are kept
   * for the next start (which sends them again and reports their outcome); without one they are
   * reported now (`failed` if they never left, `unconfirmed` otherwise).
   *
   * @example
   * ```ts
   * // await client.shutdown(10_000);
   * ```
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const deadline = this.#now() + timeoutMs;
    while ((this.pendingMessages > 0 || this.transfersActive) && this.#now() < deadline) {
      await sleep(this.#runtime, 20);
    }
    this.#stopped = true;
    for (const wanted of this.#wanted.values()) this.#runtime.clearTimer(wanted.timer);
    this.#wanted.clear();
    const keep = this.#options.store !== undefined;
    for (const link of this.#peers.links()) {
      if (link.pendingMessages > 0 && !keep) link.disconnect("client exiting before delivery");
    }
    if (keep) this.#resolveUnstorable();
    // Closed links take no more packets, so no outcome follows the save: a stored message gets
    // its outcome from the next start only.
    for (const link of this.#peers.links()) link.close(keep);
    if (keep) this.#save();
    // Give the CLOSE packets a moment to be sealed and sent.
    await sleep(this.#runtime, 20);
    this.#files?.close();
    this.#timer.cancel();
    this.#saveTimer.cancel();
    // The mapping is deleted on the gateway (bounded by the port mapper's timeouts).
    await this.#traversal?.close();
    await this.#session.stop();
    await Promise.all(this.#turn.map((turn) => turn.close()));
    await this.#mux.close();
  }

  /**
   * Stops at once, as a crash would: no goodbye to peers or server, no outcomes, no final save
   * (the store keeps what was saved and recorded). For simulations of a crashing client.
   *
   * @example
   * ```ts
   * // await client.abort();
   * ```
   */
  async abort(): Promise<void> {
    this.#stopped = true;
    for (const wanted of this.#wanted.values()) this.#runtime.clearTimer(wanted.timer);
    this.#wanted.clear();
    for (const link of this.#peers.links()) link.abandon();
    this.#timer.cancel();
    this.#saveTimer.cancel();
    void this.#traversal?.close();
    this.#session.abort();
    await Promise.all(this.#turn.map((turn) => turn.close()));
    await this.#mux.close();
  }

  /** The TURN allocations usable now. */
  #turnRelays(): TurnRelayInfo[] {
    const out: TurnRelayInfo[] = [];
    for (const [id, turn] of this.#turn.entries()) {
      if (turn.state === "allocated") out.push({ id, label: turn.label });
    }
    return out;
  }

  /** Our TURN relayed addresses now. */
  #relayedAddresses(): UdpAddress[] {
    const out: UdpAddress[] = [];
    for (const turn of this.#turn) {
      const relayed = turn.relayedAddress;
      if (relayed) out.push({ host: relayed.host, port: relayed.port });
    }
    return out;
  }

  #turnStateChanged(id: number, state: string, reason: string): void {
    const turn = this.#turn[id];
    if (!turn || this.#stopped) return;
    if (state === "allocated" && turn.relayedAddress) {
      this.#emit({
        type: "turn",
        server: turn.label,
        state: "allocated",
        relayed: formatUdpAddress(turn.relayedAddress),
      });
    } else if (state === "failed") {
      this.#emit({ type: "turn", server: turn.label, state: "failed", reason });
    } else {
      return;
    }
    // The server tells introduced peers our new addresses; peers with a session learn them
    // in-band; every link re-evaluates its relay paths.
    this.#session.send({
      type: "addresses",
      localAddresses: this.#serverAddresses(),
    });
    for (const link of this.#peers.links()) link.announceCandidates();
    this.#peers.tick();
  }

  #restore(): void {
    const store = this.#options.store;
    if (!store) return;
    let state;
    try {
      state = store.load();
    } catch (error) {
      this.#options.log?.(`cannot read the stored outbox: ${(error as Error).message}`);
      return;
    }
    this.#received.restore(state.received);
    if (state.nextMessageId !== undefined) this.#nextMessageId = state.nextMessageId;
    for (const message of state.outbox) {
      if (message.peer === this.id) continue;
      this.#nextMessageId = Math.max(this.#nextMessageId, message.id + 1);
    }
    for (const peer of state.peers ?? []) {
      if (peer === this.id) continue;
      // A peer we were connected to before the restart: introduced again by itself.
      this.#peers.getOrCreate(peer).rememberSession();
      this.#wantIntroduction(peer, false);
    }
    for (const message of state.outbox) {
      if (message.peer === this.id) continue;
      const link = this.#peers.getOrCreate(message.peer);
      this.#emit({ type: "sent", peer: message.peer, messageId: message.id });
      link.send(
        message.id,
        UTF8.encode(message.text),
        message.uid,
        undefined,
        message.sent ?? true,
      );
      this.#wantIntroduction(message.peer, false);
    }
  }

  /** Messages beyond what the store keeps get their outcome now (the oldest go first). */
  #resolveUnstorable(): void {
    const all = this.#outboxMessages(Infinity);
    const kept = new Set(boundState({ outbox: all, received: {} }).outbox.map((m) => m.id));
    const dropped = new Map<string, Set<number>>();
    for (const message of all) {
      if (kept.has(message.id)) continue;
      const ids = dropped.get(message.peer) ?? new Set<number>();
      ids.add(message.id);
      dropped.set(message.peer, ids);
    }
    for (const [peer, ids] of dropped) {
      this.#peers.get(peer)?.resolveNow(ids, "client exiting: the stored outbox is full");
    }
  }

  /** Every link's unresolved messages (the newest `limit` per link), oldest first. */
  #outboxMessages(limit = MAX_STORED_MESSAGES): StoredMessage[] {
    const outbox: StoredMessage[] = [];
    const decoder = new TextDecoder();
    for (const link of this.#peers.links()) {
      for (const message of link.outboxMessages(limit)) {
        outbox.push({
          peer: link.peer,
          id: message.id,
          uid: message.uid,
          text: decoder.decode(message.bytes),
          sent: message.sent,
        });
      }
    }
    return outbox.sort((a, b) => a.id - b.id);
  }

  #record(entry: StoreEntry): void {
    const store = this.#options.store;
    if (!store || this.#stopped) return;
    try {
      store.record(entry);
    } catch (error) {
      this.#options.log?.(`cannot record in the store: ${(error as Error).message}`);
    }
  }

  #scheduleSave(): void {
    if (!this.#options.store || this.#stopped) return;
    this.#saveTimer.arm(this.#now() + SAVE_DELAY_MS);
  }

  #save(): void {
    const store = this.#options.store;
    if (!store) return;
    const outbox = this.#outboxMessages();
    try {
      const peers = [...this.#peers.links()].filter((link) => link.hadSession).map((link) =>
        link.peer
      );
      store.save({
        outbox,
        received: this.#received.snapshot(),
        nextMessageId: this.#nextMessageId,
        peers,
      });
    } catch (error) {
      this.#options.log?.(`cannot save the outbox: ${(error as Error).message}`);
    }
  }

  /** Our UDP candidates as peers should try them: the public endpoint first, then local ones. */
  #candidates(): UdpAddress[] {
    const out: UdpAddress[] = [];
    if (this.#publicEndpoint) out.push(this.#publicEndpoint);
    const mapped = this.#traversal?.mapped;
    if (mapped && !out.some((c) => c.host === mapped.host && c.port === mapped.port)) {
      out.push(mapped);
    }
    for (const local of this.#localAddresses()) {
      if (!out.some((c) => c.host === local.host && c.port === local.port)) out.push(local);
    }
    return out;
  }

  #learnedEndpoint(address: UdpAddress): void {
    const previous = this.#publicEndpoint;
    if (previous && previous.host === address.host && previous.port === address.port) return;
    this.#publicEndpoint = { host: address.host, port: address.port };
    // Peers introduced before we knew it only know our local addresses: tell them in-band. A
    // changed address is a network change: links that settled on the relay try direct again.
    for (const link of this.#peers.links()) {
      link.announceCandidates();
      if (previous) link.retryDirect("our public address changed");
    }
  }

  #localAddresses(): { host: string; port: number }[] {
    const registration = this.#session.registration;
    const serverHost = registration?.host ?? this.#options.servers[0]?.host ?? "";
    let interfaces: InterfaceAddress[] = [];
    try {
      interfaces = this.#options.networkInterfaces?.() ??
        (this.#runtime.net.interfaceAddresses?.() ?? []).map((address) => ({
          family: address.includes(":") ? "IPv6" as const : "IPv4" as const,
          address,
        }));
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

  /**
   * A datagram to a peer address: free to an address that answered (RFC 7675 consent); else only
   * a small probe within the budget (`probe_budget.ts`), never data.
   */
  #sendPeerUdp(bytes: Uint8Array, to: UdpAddress): void | Promise<unknown> {
    const verdict = this.#probeBudget.admit(to, bytes.length, this.#now());
    if (verdict === "verified" || verdict === "allowed") {
      // The send's promise goes back: a pooled buffer is reused only once it was sent (a packet
      // leaving from a birthday-punched socket gets no promise, so is never reused).
      return this.#traversal?.send(bytes, to) ? undefined : this.#mux.send(bytes, to);
    }
    const key = `${formatUdpAddress(to)} ${verdict}`;
    if (this.#budgetLogged.has(key) || this.#budgetLogged.size >= 256) return;
    this.#budgetLogged.add(key);
    this.#options.log?.(`not sending to ${formatUdpAddress(to)}: ${verdict} (it never answered)`);
  }

  /** Packets to addresses that never answered: allowed and dropped (`probe_budget.ts`). */
  get probeStats(): Readonly<ProbeBudgetStats> {
    return this.#probeBudget.stats;
  }

  #onRegistered(registration: Registration): void {
    const registered = registration.registered;
    this.#lastRefusal = "";
    this.#emit({ type: "registered", id: registered.id, server: registration.server });
    this.#serverState("registered", registration.server);
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
      this.#traversal?.measure(
        { hostname: registration.host, port: registered.stunPort },
        this.#interfaces().map((entry) => entry.address),
      );
      this.#arm();
    }
    // Connect requests made while unregistered go out now; and a new server session knows
    // nothing of our brokered peers, so they are introduced again (retrying while they come back).
    for (const link of this.#peers.links()) {
      if (link.state === "disconnected" && !link.wanted) continue;
      const wanted = this.#wanted.get(link.peer);
      if (wanted) {
        this.#runtime.clearTimer(wanted.timer);
        wanted.timer = undefined;
        wanted.delayMs = INTRODUCTION_RETRY_MS;
        this.#requestConnect(link.peer);
      } else if (link.publicKey || link.wanted) {
        this.#wantIntroduction(link.peer, false);
      }
    }
  }

  #onSignaling(event: SignalingEvent): void {
    if (event.kind === "relay") {
      // The payload is this event's own copy (the signaling decoder slices each frame out of
      // its read buffer), so packets are opened in place without copying it again (issue 14).
      const packet = classifyPacket(event.payload);
      if (packet?.kind === "stun") return;
      this.#peers.dispatch(packet, { kind: "relay" }, event.peer);
      return;
    }
    this.#onServerMessage(event.message);
  }

  #onServerMessage(message: ServerMessage): void {
    switch (message.type) {
      case "endpoint":
        this.#emit({ type: "endpoint", public: formatUdpAddress(message.public) });
        this.#learnedEndpoint(message.public);
        return;
      case "introduce":
        this.#onIntroduce(message);
        return;
      case "candidates": {
        // The server learned the peer's public endpoint (or new addresses) after introducing it.
        const link = this.#peers.get(message.from);
        link?.addCandidates(
          message.candidates.map((c) => ({ host: c.host, port: c.port, kind: c.kind })),
        );
        return;
      }
      case "peer-left": {
        const link = this.#peers.get(message.peer);
        if (!link || link.state === "disconnected") return;
        link.peerLeft(message.reason);
        // It may come back (a frozen laptop, a restart): ask for it again while it is wanted.
        if (link.wanted) this.#wantIntroduction(message.peer, false);
        return;
      }
      case "error":
        this.#onServerError(message);
        return;
      case "introduce-request": {
        // Only sent when we declared consent: answer per policy; nothing about us has been
        // given out yet, and a refusal looks to the caller like being offline.
        let accept = false;
        try {
          accept = this.#acceptPeer?.(message.peer) ?? true;
        } catch (error) {
          this.#options.log?.(`consent policy failed: ${String(error)}`);
        }
        this.#options.log?.(
          `introduction request from ${message.peer}: ${accept ? "accepted" : "declined"}`,
        );
        this.#session.send({ type: "introduce-answer", peer: message.peer, accept });
        if (!accept) this.#declined(message.peer);
        return;
      }
      default:
        return;
    }
  }

  /**
   * Reports a declined introduction: once per peer a minute, and at most
   * {@linkcode MAX_DECLINED_REPORTS} a minute over all peers (strangers with many throwaway keys
   * cannot flood the screen); the ones not reported are counted in an `info` at the next one
   * reported.
   */
  #declined(peer: string): void {
    const now = this.#now();
    const last = this.#declinedAt.get(peer);
    if (last !== undefined && now - last < DECLINED_REPORT_INTERVAL_MS) return;
    this.#declinedAt.delete(peer);
    this.#declinedAt.set(peer, now);
    if (this.#declinedAt.size > MAX_DECLINED_REMEMBERED) {
      this.#declinedAt.delete(this.#declinedAt.keys().next().value!);
    }
    if (now - this.#declinedWindowAt >= DECLINED_REPORT_INTERVAL_MS) {
      this.#declinedWindowAt = now;
      this.#declinedReports = 0;
    }
    if (this.#declinedReports >= MAX_DECLINED_REPORTS) {
      this.#declinedUnreported++;
      return;
    }
    this.#declinedReports++;
    if (this.#declinedUnreported > 0) {
      this.#emit({
        type: "info",
        text: `declined ${this.#declinedUnreported} more connection(s) from strangers, not shown`,
      });
      this.#declinedUnreported = 0;
    }
    this.#emit({ type: "declined", peer });
  }

  #onIntroduce(message: ServerMessageOf<"introduce">): void {
    if (message.requestId) {
      this.#connectRequests.delete(message.requestId);
      this.#probes.delete(message.requestId);
    }
    const link = this.#peers.getOrCreate(message.peer);
    const rtt = this.#session.registration?.rttMs ?? 0;
    // The server's per-side delay accounts for this side's latency (asymmetric paths punch at
    // the same instant); without it, punchAt on the server's clock → local:
    // localNow + (punchAt - serverTime) - rtt/2.
    const punchAt = message.punchInMs !== undefined
      ? this.#now() + message.punchInMs
      : this.#now() + (message.punchAt - message.serverTime) - rtt / 2;
    const publicKey = Uint8Array.fromBase64(message.publicKey);
    link.introduce({
      publicKey,
      candidates: message.candidates.map((c) => ({ host: c.host, port: c.port, kind: c.kind })),
      role: message.role,
      punchAt,
    });
    if (link.publicKey && link.publicKey.toHex() === publicKey.toHex()) {
      const wanted = this.#wanted.get(message.peer);
      if (wanted) this.#runtime.clearTimer(wanted.timer);
      this.#wanted.delete(message.peer);
    }
  }

  #onServerError(message: ServerMessageOf<"error">): void {
    if (message.requestId && this.#probes.delete(message.requestId)) return; // offline: not news
    const peer = message.requestId ? this.#connectRequests.get(message.requestId) : undefined;
    if (peer !== undefined) {
      this.#connectRequests.delete(message.requestId!);
      const link = this.#peers.get(peer);
      const wanted = this.#wanted.get(peer);
      if (message.code === "unknown-peer" && link && (link.wanted || link.publicKey)) {
        // Not online (yet): it may come back (a restart of it or of the server).
        this.#retryIntroduction(peer);
        if (wanted?.byUser) {
          this.#emit({
            type: "error",
            code: message.code,
            message: `${message.message}; will keep trying while messages wait`,
            peer,
          });
          wanted.byUser = false;
        }
        return;
      }
      if (wanted) this.#runtime.clearTimer(wanted.timer);
      this.#wanted.delete(peer);
      // The cause first, then what it means for messages already queued for that peer.
      this.#emit({ type: "error", code: message.code, message: message.message, peer });
      if (link && !link.publicKey) this.#peers.remove(peer);
      return;
    }
    if (message.peer) {
      const link = this.#peers.get(message.peer);
      if (link && link.relayRefused(message.code)) this.#wantIntroduction(message.peer, false);
      if (link) return;
    }
    // Not about a request of ours nor a peer we know: the server refuses something of the
    // session itself (rate-limited control messages, server-busy before an eviction, ...).
    this.#emit({
      type: "refused",
      server: this.#session.registration?.server ?? "server",
      code: message.code,
      message: message.message,
      during: "session",
    });
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
