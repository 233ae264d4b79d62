/**
 * Control messages: registration (`hello` → `challenge` → `register` → `registered`, with the
 * Ed25519 proof), heartbeats and RTT, address updates, brokering (`connect` → two `introduce`s
 * with a per-side punch schedule), and passing late candidates on to peers already introduced
 * (`candidates`, issue 9: a public endpoint learned after the introduction never reached the peer,
 * so port-restricted pairs stayed relayed forever).
 *
 * @module
 */
import { peerIdFromPublicKey, verifySignature } from "../../shared/identity/mod.ts";
import {
  type Address,
  CHALLENGE_NONCE_BYTES,
  type ClientMessage,
  type ClientMessageOf,
  decodeControlBody,
  FrameError,
  MAX_RELAY_PAYLOAD,
  parseClientMessage,
  puzzleBitsForLoad,
  registrationSignedData,
  SIGNALING_VERSION,
  verifyPuzzle,
} from "../../shared/signaling/mod.ts";
import { sourcePrefixes } from "../address_prefix.ts";
import { punchPlan } from "../punch_schedule.ts";
import type { ClientConnection } from "./connection.ts";
import type { SignalingContext } from "./context.ts";
import { RegisteredClient } from "./registered_client.ts";

/** Shortest interval between two `candidates` updates about one client (ms). */
export const CANDIDATES_INTERVAL_MS = 1000;

/**
 * How long a callee has to answer an `introduce-request` (ms); no answer is a refusal. A refusal
 * (declined, no answer, or the ID is not online at all) reaches the caller at a uniformly random
 * time between {@linkcode REFUSAL_MIN_MS} and this, so a stranger cannot tell them apart by timing.
 */
export const CONSENT_TIMEOUT_MS = 2000;
/** The earliest a refused `connect` is answered (ms after it arrived). */
export const REFUSAL_MIN_MS = 500;
/** Unanswered `introduce-request`s one callee may have at once. */
export const MAX_PENDING_REQUESTS = 32;

/** Largest RTT sample believed (ms); larger ones are ignored. */
const MAX_RTT_SAMPLE_MS = 60_000;

/**
 * Handles the control frames of every connection.
 *
 * @example
 * ```ts
 * import type { SignalingContext } from "./context.ts";
 * import type { ClientConnection } from "./connection.ts";
 * declare const context: SignalingContext;
 * declare const connection: ClientConnection;
 * const control = new ControlHandler(context);
 * await control.handle(connection, new TextEncoder().encode('{"type":"ping","t":1}'));
 * ```
 */
export class ControlHandler {
  readonly #context: SignalingContext;
  /** One STUN-binding callback for every client (not a closure per registered client). */
  readonly #onStunBinding = (client: RegisteredClient, endpoint: Address) =>
    this.onStunBinding(client, endpoint);

  /** @param context The service's shared context. */
  constructor(context: SignalingContext) {
    this.#context = context;
  }

  /** Handles one control frame body from `connection`. */
  handle(connection: ClientConnection, body: Uint8Array): void | Promise<void> {
    if (!connection.controlBucket.take(1)) {
      this.#context.violation(connection, "rate-limited", "too many control messages");
      return;
    }
    let value: unknown;
    try {
      value = decodeControlBody(body);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#context.violation(connection, "bad-frame", error.message);
      return;
    }
    const parsed = parseClientMessage(value);
    if (!parsed.ok) {
      const type = String((value as { type: unknown }).type).slice(0, 32);
      this.#context.violation(connection, "bad-message", `${type}: ${parsed.error}`);
      return;
    }
    const message = parsed.message;
    const phase = connection.phase;
    switch (phase.name) {
      case "awaiting-hello":
        if (message.type === "hello") return this.#hello(connection, message);
        return this.#notRegistered(connection, message);
      case "challenged":
      case "verifying":
        if (message.type === "register" && phase.name === "challenged") {
          return this.#register(connection, message);
        }
        if (message.type === "hello") {
          return this.#context.violation(connection, "bad-message", "hello was already received");
        }
        if (message.type === "register") {
          return this.#context.violation(
            connection,
            "bad-message",
            "register was already received",
          );
        }
        return this.#notRegistered(connection, message);
      case "registered":
        return this.#registeredMessage(phase.client, message);
      case "closing":
      case "closed":
        return;
    }
  }

  /**
   * An authenticated STUN Binding revealed `client`'s public endpoint: tell the client when it
   * is new or changed, and pass the updated candidates on to every peer it was introduced to.
   */
  onStunBinding(client: RegisteredClient, endpoint: Address): void {
    if (client.connection.closed) return;
    const known = client.publicEndpoint;
    if (known !== null && known.host === endpoint.host && known.port === endpoint.port) return;
    client.publicEndpoint = endpoint;
    client.connection.send({ type: "endpoint", public: endpoint });
    this.#context.log.info("public endpoint of {client}: {host}:{port}", {
      client: client.connection.label,
      host: endpoint.host,
      port: endpoint.port,
    });
    this.#sendCandidates(client);
  }

  /**
   * Passes `client`'s current candidates on to its peers: at once, unless it did so less than
   * {@linkcode CANDIDATES_INTERVAL_MS} ago; then once, with the latest list, when that interval
   * is over (a client flipping its addresses cannot make the server send 1024 updates per
   * control message it sends).
   */
  #sendCandidates(client: RegisteredClient): void {
    const remotePeers = this.#context.cluster.remotePeerCount(client.id);
    if ((client.peers.size === 0 && remotePeers === 0) || client.candidatesPending) return;
    const { runtime } = this.#context;
    const wait = client.candidatesSentAt + CANDIDATES_INTERVAL_MS - runtime.now();
    if (wait > 0) {
      client.candidatesPending = true;
      runtime.setTimer(() => {
        client.candidatesPending = false;
        if (client.connection.client === client) this.#sendCandidates(client);
      }, wait);
      return;
    }
    client.candidatesSentAt = runtime.now();
    this.#context.cluster.candidatesChanged(client);
    const candidates = client.candidates();
    for (const peer of client.peers.values()) {
      if (peer.connection.closed) continue;
      this.#context.sendBounded(peer.connection, {
        type: "candidates",
        from: client.id,
        candidates,
      });
      this.#context.metrics.candidateUpdates++;
    }
  }

  #notRegistered(connection: ClientConnection, message: ClientMessage): void {
    this.#context.metrics.protocolErrors.inc("not-registered");
    this.#context.log.refusal("not-registered", "closing {client}: {type} before registration", {
      client: connection.label,
      type: message.type,
    });
    this.#context.close(connection, {
      reason: "not-registered",
      error: ["not-registered", `${message.type} before registration`],
      bye: "protocol-error",
      peerLeft: "disconnected",
    });
  }

  #hello(connection: ClientConnection, message: ClientMessageOf<"hello">): void {
    const { runtime, metrics, log } = this.#context;
    if (message.version !== SIGNALING_VERSION) {
      metrics.registrations.inc("unsupported-version");
      log.refusal(
        "unsupported-version",
        "registration from {client} refused: protocol version {version}",
        { client: connection.label, version: message.version },
      );
      this.#context.close(connection, {
        reason: "unsupported-version",
        error: ["unsupported-version", `this server speaks version ${SIGNALING_VERSION}`],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    let publicKeyLength = 0;
    try {
      publicKeyLength = Uint8Array.fromBase64(message.publicKey).length;
    } catch {
      this.#context.violation(connection, "bad-message", "publicKey is not valid base64");
      return;
    }
    if (publicKeyLength !== 32) {
      this.#context.violation(connection, "bad-message", "publicKey must be 32 bytes");
      return;
    }
    const features = message.features ?? [];
    const bits = puzzleBitsForLoad(this.#context.load(), this.#context.limits.maxPuzzleBits);
    if (bits > 0 && !features.includes("puzzle")) {
      metrics.registrations.inc("server-busy");
      log.refusal("registration-busy", "registration from {client} refused: busy, no puzzle", {
        client: connection.label,
      });
      this.#context.close(connection, {
        reason: "server-busy",
        error: ["server-busy", "the server is under load: registration needs the puzzle feature"],
        peerLeft: "disconnected",
      });
      return;
    }
    const nonce = runtime.randomBytes(CHALLENGE_NONCE_BYTES);
    connection.challenge(message.publicKey, nonce, bits, features);
    connection.send({
      type: "challenge",
      version: SIGNALING_VERSION,
      nonce: nonce.toBase64(),
      serverTime: runtime.wallClock(),
      ...(bits > 0 ? { puzzle: { bits } } : {}),
    });
  }

  async #register(
    connection: ClientConnection,
    message: ClientMessageOf<"register">,
  ): Promise<void> {
    const { runtime, metrics, log, registry, limits } = this.#context;
    const receivedAt = runtime.now();
    const { publicKey: publicKeyText, nonce, challengedAt, puzzleBits, features } = connection
      .beginVerify();
    const publicKey = Uint8Array.fromBase64(publicKeyText);
    if (puzzleBits > 0) {
      // One hash, before the costlier signature check.
      const work = message.work === undefined
        ? new Uint8Array(0)
        : Uint8Array.fromBase64(message.work);
      if (!verifyPuzzle(nonce, publicKey, puzzleBits, work)) {
        metrics.registrations.inc("bad-puzzle");
        log.refusal("bad-puzzle", "registration from {client} refused: puzzle not solved", {
          client: connection.label,
          bits: puzzleBits,
        });
        this.#context.close(connection, {
          reason: "bad-puzzle",
          error: ["bad-puzzle", `register needs work solving the ${puzzleBits}-bit puzzle`],
          bye: "protocol-error",
          peerLeft: "disconnected",
        });
        return;
      }
    }
    let signature: Uint8Array;
    try {
      signature = Uint8Array.fromBase64(message.signature);
    } catch {
      signature = new Uint8Array(0);
    }
    const valid = await verifySignature(publicKey, registrationSignedData(nonce), signature);
    if (connection.closed) return;
    if (!valid) {
      metrics.registrations.inc("auth-failed");
      log.refusal("auth-failed", "registration from {client} refused: bad signature", {
        client: connection.label,
      });
      this.#context.close(connection, {
        reason: "auth-failed",
        error: ["auth-failed", "the signature does not verify against the public key"],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    const id = await peerIdFromPublicKey(publicKey);
    if (connection.closed) return;
    if (
      registry.size >= limits.maxClients && registry.get(id) === undefined &&
      !this.#context.evictIdleFor(connection.remoteHost)
    ) {
      metrics.registrations.inc("server-full");
      log.refusal("registration-server-full", "registration from {client} refused: {max} clients", {
        client: connection.label,
        max: limits.maxClients,
      });
      this.#context.close(connection, {
        reason: "server-full",
        error: ["server-full", `the server holds its maximum of ${limits.maxClients} clients`],
        peerLeft: "disconnected",
      });
      return;
    }
    const current = registry.get(id);
    if (
      current !== undefined && message.registrationNonce !== undefined &&
      current.registrationNonce === message.registrationNonce &&
      current.connection.serial > connection.serial
    ) {
      // The same client instance has already registered on a connection it opened later (it
      // retried while this one was slow): the later attempt is the one it uses, so this stale
      // one must not replace it. It is told it was replaced by itself.
      metrics.registrations.inc("superseded");
      log.info("{client}: a stale registration; the same instance is registered on {current}", {
        client: connection.label,
        current: current.connection.label,
      });
      this.#context.close(connection, {
        reason: "superseded",
        bye: "replaced",
        byeRegistrationNonce: message.registrationNonce,
        peerLeft: "replaced",
      });
      return;
    }
    const now = runtime.now();
    // The first RTT estimate: challenge sent to register received (includes the client's
    // signing time, so a slight overestimate); pongs refine it.
    const rttEstimate = Math.max(0, receivedAt - challengedAt);
    // The next ping comes between half and one interval later, spread by ID, so that clients
    // registered in a burst are not all pinged in the same sweep.
    const spread = Math.floor((parseInt(id.slice(0, 4), 16) / 0x10000) * limits.heartbeatMs / 2);
    const client = new RegisteredClient(connection, {
      id,
      publicKey: publicKeyText,
      stunUsername: runtime.randomBytes(12).toHex(),
      stunPassword: runtime.randomBytes(18).toBase64(),
      localAddresses: message.localAddresses,
      registrationNonce: message.registrationNonce,
      rttMs: rttEstimate,
      lastPingAt: now - spread,
      consent: features.includes("consent"),
    }, this.#onStunBinding);
    connection.register(client);
    const credit = features.includes("relay-credit") ? limits.relayCreditBytes : 0;
    connection.relayWindow = credit;
    this.#context.noteRegistered(connection);
    const older = registry.add(client);
    // Cluster-wide: a session of this ID on another node is replaced too (newest wins).
    this.#context.cluster.registered(client, message.registrationNonce);
    if (older !== undefined) {
      const own = message.registrationNonce !== undefined &&
        older.registrationNonce === message.registrationNonce;
      log.info("{older} replaced by a newer registration {client}{own}", {
        older: older.connection.label,
        client: connection.label,
        own: own ? " of the same client instance: introductions kept" : "",
      });
      if (own) this.#takeOverIntroductions(older, client);
      this.#context.close(older.connection, {
        reason: "replaced",
        bye: "replaced",
        byeRegistrationNonce: message.registrationNonce,
        peerLeft: "replaced",
        unregistered: true,
      });
    }
    metrics.registrations.inc("accepted");
    connection.send({
      type: "registered",
      id,
      stunUsername: client.stunUsername,
      stunPassword: client.stunPassword,
      stunPort: limits.stunPort,
      heartbeatMs: limits.heartbeatMs,
      relay: {
        bytesPerSecond: limits.relayBytesPerSecond,
        queueBytes: limits.relayQueueBytes,
        maxPayload: MAX_RELAY_PAYLOAD,
        ...(credit > 0 ? { creditBytes: credit } : {}),
      },
      serverTime: runtime.wallClock(),
      ...(message.registrationNonce !== undefined
        ? { registrationNonce: message.registrationNonce }
        : {}),
    });
    // A first ping right away measures the RTT that brokering uses for the punch schedule.
    connection.send({ type: "ping", t: now });
    log.info("registered {client}: {addresses} local addresses, rtt {rtt} ms", {
      client: connection.label,
      id,
      addresses: message.localAddresses.length,
      rtt: Math.round(rttEstimate),
    });
  }

  /**
   * The same client instance registered again (its `registrationNonce` matches): its peers stay
   * introduced to it, so they are not told it left and relay to and from it goes on; they get its
   * candidates again if they changed.
   */
  #takeOverIntroductions(older: RegisteredClient, newer: RegisteredClient): void {
    newer.publicEndpoint = older.publicEndpoint;
    const before = JSON.stringify(older.candidates());
    for (const peer of older.peers.values()) {
      const peerCalled = older.calledBy.has(peer.id);
      const olderCalled = peer.calledBy.has(older.id);
      peer.unlink(older.id);
      peer.link(newer, olderCalled);
      newer.link(peer, peerCalled);
    }
    older.unlinkAll();
    if (JSON.stringify(newer.candidates()) !== before) this.#sendCandidates(newer);
  }

  #registeredMessage(client: RegisteredClient, message: ClientMessage): void {
    const connection = client.connection;
    switch (message.type) {
      case "ping":
        connection.send({ type: "pong", t: message.t });
        return;
      case "pong": {
        const rtt = this.#context.runtime.now() - message.t;
        if (rtt >= 0 && rtt <= MAX_RTT_SAMPLE_MS) client.addRttSample(rtt);
        return;
      }
      case "addresses": {
        const before = JSON.stringify(client.localAddresses);
        client.localAddresses = message.localAddresses;
        if (JSON.stringify(message.localAddresses) !== before) this.#sendCandidates(client);
        return;
      }
      case "connect":
        this.#broker(client, message);
        return;
      case "introduce-answer":
        this.#answer(client, message.peer, message.accept);
        return;
      case "drop":
        this.#drop(client, message.peer);
        return;
      case "bye":
        this.#context.close(connection, { reason: "client-bye", peerLeft: "disconnected" });
        return;
      case "hello":
      case "register":
        this.#context.violation(connection, "bad-message", "already registered");
        return;
    }
  }

  /**
   * `connect`: introduces at once to a callee that did not declare `consent` (today's clients:
   * policy `anyone`), else asks the callee first (`introduce-request`). A refusal (not online,
   * declined, not answered) is the same `unknown-peer` at a random time 0.5-2 s after the request.
   */
  #broker(client: RegisteredClient, message: ClientMessageOf<"connect">): void {
    const { registry, runtime, log } = this.#context;
    const connection = client.connection;
    const target = registry.get(message.peer);
    if (target === client) {
      connection.send({
        type: "error",
        code: "unknown-peer",
        message: "that is your own ID",
        peer: message.peer,
        ...(message.requestId !== undefined ? { requestId: message.requestId } : {}),
      });
      return;
    }
    if (
      target === undefined && this.#context.cluster.connect(client, message.peer, message.requestId)
    ) {
      return; // on another node of the cluster (or the cluster is unreachable)
    }
    const notBefore = runtime.now() + REFUSAL_MIN_MS +
      runtime.random() * (CONSENT_TIMEOUT_MS - REFUSAL_MIN_MS);
    if (target === undefined) {
      log.refusal("unknown-peer", "connect from {client} refused: {peer} is not online", {
        client: connection.label,
        peer: message.peer.slice(0, 12),
      });
      this.#refuseIntroduction(client, message.peer, message.requestId, notBefore);
      return;
    }
    if (client.peers.has(target.id) || !target.consent) {
      this.#accept(client, target, message.requestId);
      return;
    }
    const pending = target.pendingRequests;
    if (pending.has(client.id)) return; // asked already; that answer will come
    const group = sourcePrefixes(connection.remoteHost).wide;
    if (pending.size >= MAX_PENDING_REQUESTS && !this.#shedRequest(target, group)) {
      this.#refuseIntroduction(client, target.id, message.requestId, notBefore);
      return;
    }
    const timer = runtime.setTimer(
      () => this.#answer(target, client.id, false),
      CONSENT_TIMEOUT_MS,
    );
    target.addPendingRequest(client.id, {
      caller: client,
      group,
      requestId: message.requestId,
      notBefore,
      timer,
    });
    this.#context.sendBounded(target.connection, { type: "introduce-request", peer: client.id });
  }

  /**
   * A full request table: drops the oldest request of the caller group (network, or the node of
   * a caller on another node of a cluster) holding the most.
   */
  #shedRequest(callee: RegisteredClient, newcomerGroup: string): boolean {
    const groups = new Map<string, string[]>();
    for (const [id, request] of callee.pendingRequests) {
      const group = groups.get(request.group);
      if (group === undefined) groups.set(request.group, [id]);
      else group.push(id);
    }
    const own = groups.get(newcomerGroup)?.length ?? 0;
    let largest: string[] = [];
    for (const group of groups.values()) if (group.length > largest.length) largest = group;
    if (largest.length < own + 2) return false;
    this.#answer(callee, largest[0], false);
    return true;
  }

  /** The callee's answer to the request of `callerId` (late and unknown answers are ignored). */
  #answer(callee: RegisteredClient, callerId: string, accept: boolean): void {
    const request = callee.takePendingRequest(callerId);
    if (request === undefined) return;
    this.#context.runtime.clearTimer(request.timer);
    const caller = request.caller;
    if (caller === null) {
      // A caller on another node: the cluster router introduces or refuses it over the bus (and
      // the caller's node keeps the refusal timing).
      request.remote?.(accept && callee.connection.client === callee);
      return;
    }
    if (caller.connection.client !== caller) return; // the caller left meanwhile
    if (accept && callee.connection.client === callee) {
      this.#accept(caller, callee, request.requestId);
      return;
    }
    this.#refuseIntroduction(caller, callee.id, request.requestId, request.notBefore);
  }

  /** `drop`: the client ends its introduction to `peerId` (or declines its pending request). */
  #drop(client: RegisteredClient, peerId: string): void {
    if (client.pendingRequests.has(peerId)) this.#answer(client, peerId, false);
    const peer = client.peers.get(peerId);
    if (peer === undefined) return;
    this.#unbroker(client, peer, false);
  }

  /** Ends the introduction of `a` and `b`; `b` (and `a`, when `tellBoth`) get `peer-left dropped`. */
  #unbroker(a: RegisteredClient, b: RegisteredClient, tellBoth: boolean): void {
    a.unlink(b.id);
    b.unlink(a.id);
    if (!b.connection.closed) {
      this.#context.sendBounded(b.connection, { type: "peer-left", peer: a.id, reason: "dropped" });
    }
    if (tellBoth && !a.connection.closed) {
      this.#context.sendBounded(a.connection, { type: "peer-left", peer: b.id, reason: "dropped" });
    }
  }

  /**
   * A caller on another node of the cluster (`callerId`, via node `node`) asks to be introduced
   * to the local `callee`: the same consent exchange as for a local caller (an
   * `introduce-request` when the callee declared `consent`, declined after
   * {@linkcode CONSENT_TIMEOUT_MS} without an answer). `answer` is called once, with whether to
   * introduce; a repeated request while one is pending is ignored (the first answer serves it).
   */
  askConsent(
    callee: RegisteredClient,
    callerId: string,
    node: string,
    answer: (accept: boolean) => void,
  ): void {
    if (!callee.consent || callee.peers.has(callerId)) {
      answer(true);
      return;
    }
    const pending = callee.pendingRequests;
    if (pending.has(callerId)) return;
    const group = `node:${node}`;
    if (pending.size >= MAX_PENDING_REQUESTS && !this.#shedRequest(callee, group)) {
      answer(false);
      return;
    }
    const timer = this.#context.runtime.setTimer(
      () => this.#answer(callee, callerId, false),
      CONSENT_TIMEOUT_MS,
    );
    callee.addPendingRequest(callerId, {
      caller: null,
      remote: answer,
      group,
      requestId: undefined,
      notBefore: 0,
      timer,
    });
    this.#context.sendBounded(callee.connection, { type: "introduce-request", peer: callerId });
  }

  /** A client left: its unanswered requests are refused to their callers. */
  forgetClient(client: RegisteredClient): void {
    for (const callerId of [...client.pendingRequests.keys()]) {
      this.#answer(client, callerId, false);
    }
  }

  #refuseIntroduction(
    caller: RegisteredClient,
    peer: string,
    requestId: string | undefined,
    notBefore: number,
  ): void {
    const runtime = this.#context.runtime;
    const send = () => {
      if (caller.connection.client !== caller) return;
      this.#context.sendBounded(caller.connection, {
        type: "error",
        code: "unknown-peer",
        message: "no client with that ID is online",
        peer,
        ...(requestId !== undefined ? { requestId } : {}),
      });
    };
    const wait = notBefore - runtime.now();
    if (wait > 0) runtime.setTimer(send, wait);
    else send();
  }

  /**
   * Makes room for one more peer of `owner` when it has its maximum: drops the oldest
   * introduction that another peer asked for, from the network (IPv4 /24, IPv6 /48) holding the
   * most of them, so a thousand throwaway keys calling one victim cannot lock it out. When the
   * newcomer called the owner too, only a network holding at least two more than the newcomer's
   * gives way (per-caller-network fairness).
   */
  #makeRoom(owner: RegisteredClient, newcomer: RegisteredClient, newcomerCalls: boolean): boolean {
    const max = this.#context.limits.maxBrokeredPeers;
    // Peers on other nodes of a cluster count against the limit; only local callers give way.
    if (owner.peers.size + this.#context.cluster.remotePeerCount(owner.id) < max) return true;
    const groups = new Map<string, RegisteredClient[]>();
    for (const id of owner.calledBy) {
      const peer = owner.peers.get(id);
      if (peer === undefined) continue;
      const wide = sourcePrefixes(peer.connection.remoteHost).wide;
      const group = groups.get(wide);
      if (group === undefined) groups.set(wide, [peer]);
      else group.push(peer);
    }
    let largest: RegisteredClient[] = [];
    for (const group of groups.values()) if (group.length > largest.length) largest = group;
    const own = newcomerCalls
      ? (groups.get(sourcePrefixes(newcomer.connection.remoteHost).wide)?.length ?? 0)
      : -1;
    if (largest.length === 0 || largest.length < own + 2) return false;
    const victim = largest[0];
    this.#context.log.info("{owner} has {max} peers: dropped the introduction of {peer}", {
      owner: owner.connection.label,
      max,
      peer: victim.connection.label,
    });
    this.#unbroker(owner, victim, true);
    return true;
  }

  /** Links the two and sends both `introduce`s (refused when no slot can be made). */
  #accept(client: RegisteredClient, target: RegisteredClient, requestId: string | undefined): void {
    const { limits, runtime, metrics, log } = this.#context;
    const connection = client.connection;
    const request = requestId !== undefined ? { requestId } : {};
    const already = client.peers.has(target.id);
    const { cluster } = this.#context;
    if (
      !already && (!this.#makeRoom(client, target, false) || !this.#makeRoom(target, client, true))
    ) {
      log.refusal("too-many-peers", "connect from {client} refused: {max} peers", {
        client: connection.label,
        max: limits.maxBrokeredPeers,
      });
      this.#context.sendBounded(connection, {
        type: "error",
        code: "rate-limited",
        message: `at most ${limits.maxBrokeredPeers} brokered peers per client`,
        peer: target.id,
        ...request,
      });
      return;
    }
    if (!already) {
      client.link(target, false);
      target.link(client, true);
    }
    cluster.brokeredLocally(client, target);
    const plan = punchPlan(client.rttMs, target.rttMs);
    const serverTime = runtime.wallClock();
    const punchAt = serverTime + plan.leadMs;
    client.introductions++;
    target.introductions++;
    metrics.introductions++;
    connection.send({
      type: "introduce",
      peer: target.id,
      publicKey: target.publicKey,
      candidates: target.candidates(),
      role: "initiator",
      punchAt,
      serverTime,
      punchInMs: plan.punchInMsA,
      ...request,
    });
    target.connection.send({
      type: "introduce",
      peer: client.id,
      publicKey: client.publicKey,
      candidates: client.candidates(),
      role: "responder",
      punchAt,
      serverTime,
      punchInMs: plan.punchInMsB,
    });
    log.info("introduced {a} to {b}: punch in {lead} ms (rtt {rttA}/{rttB} ms)", {
      a: connection.label,
      b: target.connection.label,
      lead: plan.leadMs,
      rttA: Math.round(client.rttMs),
      rttB: Math.round(target.rttMs),
    });
  }
}
