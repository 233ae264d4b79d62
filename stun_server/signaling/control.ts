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
  registrationSignedData,
  SIGNALING_VERSION,
} from "../../shared/signaling/mod.ts";
import { punchPlan } from "../punch_schedule.ts";
import type { ClientConnection } from "./connection.ts";
import type { SignalingContext } from "./context.ts";
import { RegisteredClient } from "./registered_client.ts";

/** Shortest interval between two `candidates` updates about one client (ms). */
export const CANDIDATES_INTERVAL_MS = 1000;

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
    const nonce = runtime.randomBytes(CHALLENGE_NONCE_BYTES);
    connection.challenge(message.publicKey, nonce);
    connection.send({
      type: "challenge",
      version: SIGNALING_VERSION,
      nonce: nonce.toBase64(),
      serverTime: runtime.wallClock(),
    });
  }

  async #register(
    connection: ClientConnection,
    message: ClientMessageOf<"register">,
  ): Promise<void> {
    const { runtime, metrics, log, registry, limits } = this.#context;
    const receivedAt = runtime.now();
    const { publicKey: publicKeyText, nonce, challengedAt } = connection.beginVerify();
    const publicKey = Uint8Array.fromBase64(publicKeyText);
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
    if (registry.size >= limits.maxClients && registry.get(id) === undefined) {
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
    }, (c, endpoint) => this.onStunBinding(c, endpoint));
    connection.register(client);
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
      peer.peers.set(newer.id, newer);
      if (peer.lastTarget === older) peer.lastTarget = null;
      newer.peers.set(peer.id, peer);
    }
    older.peers.clear();
    older.lastTarget = null;
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
      case "bye":
        this.#context.close(connection, { reason: "client-bye", peerLeft: "disconnected" });
        return;
      case "hello":
      case "register":
        this.#context.violation(connection, "bad-message", "already registered");
        return;
    }
  }

  #broker(client: RegisteredClient, message: ClientMessageOf<"connect">): void {
    const { registry, limits, runtime, metrics, log } = this.#context;
    const connection = client.connection;
    const requestId = message.requestId !== undefined ? { requestId: message.requestId } : {};
    const target = registry.get(message.peer);
    if (
      target === undefined && this.#context.cluster.connect(client, message.peer, message.requestId)
    ) {
      return; // on another node of the cluster (or the cluster is unreachable)
    }
    if (target === undefined || target === client) {
      log.refusal("unknown-peer", "connect from {client} refused: {peer} is not online", {
        client: connection.label,
        peer: message.peer.slice(0, 12),
      });
      connection.send({
        type: "error",
        code: "unknown-peer",
        message: target === client ? "that is your own ID" : "no client with that ID is online",
        peer: message.peer,
        ...requestId,
      });
      return;
    }
    const already = client.peers.has(target.id);
    const { cluster } = this.#context;
    if (
      !already &&
      (client.peers.size + cluster.remotePeerCount(client.id) >= limits.maxBrokeredPeers ||
        target.peers.size + cluster.remotePeerCount(target.id) >= limits.maxBrokeredPeers)
    ) {
      log.refusal("too-many-peers", "connect from {client} refused: {max} peers", {
        client: connection.label,
        max: limits.maxBrokeredPeers,
      });
      connection.send({
        type: "error",
        code: "rate-limited",
        message: `at most ${limits.maxBrokeredPeers} brokered peers per client`,
        peer: message.peer,
        ...requestId,
      });
      return;
    }
    client.peers.set(target.id, target);
    target.peers.set(client.id, client);
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
      ...requestId,
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
