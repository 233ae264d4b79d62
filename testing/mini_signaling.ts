/**
 * A minimal signaling server for virtual-time client tests: the wire protocol of
 * `docs/protocol.md` (hello / challenge / register / registered, connect / introduce, relay,
 * ping / pong, peer-left, replaced) on a {@linkcode Runtime}'s TCP, and nothing more (no STUN, no
 * quotas). It exists so the real `P2PClient` can be tested on virtual time before the real
 * server runs on the injected runtime; tests may switch to the real server then.
 *
 * @module
 */
import type { Runtime, StreamConn, StreamListener } from "../shared/runtime/mod.ts";
import {
  decodeControlBody,
  decodeRelayBody,
  encodeControlFrame,
  encodeRelayFrame,
  FrameDecoder,
} from "../shared/signaling/frame.ts";
import { FRAME_KIND_CONTROL, FRAME_KIND_RELAY } from "../shared/signaling/constants.ts";
import { registrationSignedData } from "../shared/signaling/registration.ts";
import { peerIdFromPublicKeySync } from "../shared/identity/peer_id.ts";
import { verifySignatureSync } from "../shared/identity/identity.ts";
import type { Address } from "../shared/signaling/messages.ts";

interface Session {
  conn: StreamConn;
  id?: string;
  publicKey?: Uint8Array;
  nonce?: Uint8Array;
  localAddresses: Address[];
  lastReceived: number;
  closed: boolean;
  brokered: Set<string>;
}

/** Options of {@linkcode MiniSignalingServer}. */
export interface MiniSignalingOptions {
  /** Heartbeat announced to clients, ms (default 5000). */
  heartbeatMs?: number;
  /** Delay between introduction and punch time, ms (default 200). */
  punchDelayMs?: number;
}

/**
 * An in-process signaling server on a runtime's network.
 *
 * @example
 * ```ts
 * // const server = MiniSignalingServer.listen(runtime.forHost("10.0.0.100"), { hostname: "10.0.0.100", port: 3478 });
 * ```
 */
export class MiniSignalingServer {
  readonly #runtime: Runtime;
  readonly #listener: StreamListener;
  readonly #options: MiniSignalingOptions;
  readonly #byId = new Map<string, Session>();
  readonly #sessions = new Set<Session>();
  #sweep: number | undefined;
  #closed = false;
  /** Lets a test drop one client's TCP traffic (both ways) while true. */
  blocked: (id: string) => boolean = () => false;
  /** Lets a test drop relay frames from one client to another. */
  dropRelay: (from: string, to: string) => boolean = () => false;
  /** Lets a test rewrite (falsify) an introduction before it is sent to `to`. */
  rewriteIntroduction: (
    message: Record<string, unknown> & { type: string },
    to: string,
  ) => Record<string, unknown> & { type: string } = (message) => message;

  private constructor(runtime: Runtime, listener: StreamListener, options: MiniSignalingOptions) {
    this.#runtime = runtime;
    this.#listener = listener;
    this.#options = options;
    void this.#acceptLoop();
    this.#sweep = runtime.setTimer(() => this.#sweepSessions(), 1000);
  }

  /** Starts listening on `bind`. */
  static listen(
    runtime: Runtime,
    bind: { hostname: string; port: number },
    options: MiniSignalingOptions = {},
  ): MiniSignalingServer {
    return new MiniSignalingServer(runtime, runtime.net.listen(bind), options);
  }

  /** Registered client IDs. */
  get registered(): string[] {
    return [...this.#byId.keys()];
  }

  /** Closes one client's connection abruptly (as a server restart or a cut cable would). */
  drop(id: string): void {
    const session = this.#byId.get(id);
    if (session) this.#close(session, "disconnected");
  }

  /** Sends `bye replaced` to a client and closes its connection (as a racing registration would). */
  replace(id: string): void {
    const session = this.#byId.get(id);
    if (!session) return;
    this.#send(session, { type: "bye", reason: "replaced" });
    this.#byId.delete(id);
    this.#close(session, "replaced");
  }

  /** Sends any control message to a registered client (an `error` the real server would send). */
  sendTo(id: string, message: Record<string, unknown> & { type: string }): void {
    const session = this.#byId.get(id);
    if (session) this.#send(session, message);
  }

  /** Tells a client its public endpoint (as the real server does after STUN). */
  sendEndpoint(id: string, address: { host: string; port: number }): void {
    const session = this.#byId.get(id);
    if (session) this.#send(session, { type: "endpoint", public: address });
  }

  /** Stops the server. */
  close(): void {
    this.#closed = true;
    this.#runtime.clearTimer(this.#sweep);
    this.#listener.close();
    for (const session of [...this.#sessions]) this.#close(session, "disconnected");
  }

  get #heartbeatMs(): number {
    return this.#options.heartbeatMs ?? 5000;
  }

  #sweepSessions(): void {
    const now = this.#runtime.now();
    for (const session of [...this.#sessions]) {
      if (now - session.lastReceived > this.#heartbeatMs * 2.5) this.#close(session, "timeout");
    }
    if (!this.#closed) this.#sweep = this.#runtime.setTimer(() => this.#sweepSessions(), 1000);
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: StreamConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      const session: Session = {
        conn,
        localAddresses: [],
        lastReceived: this.#runtime.now(),
        closed: false,
        brokered: new Set(),
      };
      this.#sessions.add(session);
      void this.#readLoop(session);
    }
  }

  #send(session: Session, message: Record<string, unknown> & { type: string }): void {
    if (session.closed || (session.id && this.blocked(session.id))) return;
    session.conn.write(encodeControlFrame(message)).catch(() => {});
  }

  #close(session: Session, reason: "disconnected" | "timeout" | "replaced"): void {
    if (session.closed) return;
    session.closed = true;
    this.#sessions.delete(session);
    try {
      session.conn.close();
    } catch {
      // already closed
    }
    if (session.id && this.#byId.get(session.id) === session) {
      this.#byId.delete(session.id);
      for (const other of this.#byId.values()) {
        if (other.brokered.has(session.id)) {
          this.#send(other, { type: "peer-left", peer: session.id, reason });
        }
      }
    }
  }

  async #readLoop(session: Session): Promise<void> {
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(65_536);
    try {
      for (;;) {
        const n = await session.conn.read(buffer);
        if (n === null) break;
        if (session.id && this.blocked(session.id)) continue;
        session.lastReceived = this.#runtime.now();
        for (const frame of decoder.push(buffer.subarray(0, n))) {
          if (frame.kind === FRAME_KIND_CONTROL) {
            this.#control(session, decodeControlBody(frame.body));
          } else if (frame.kind === FRAME_KIND_RELAY) this.#relay(session, frame.body);
        }
      }
    } catch {
      // dropped below
    }
    this.#close(session, "disconnected");
  }

  #relay(session: Session, body: Uint8Array): void {
    if (!session.id) return;
    const { peer, payload } = decodeRelayBody(body);
    const target = this.#byId.get(peer);
    if (!target || target.closed || this.blocked(peer) || this.dropRelay(session.id, peer)) return;
    target.conn.write(encodeRelayFrame(session.id, payload)).catch(() => {});
  }

  // deno-lint-ignore no-explicit-any
  #control(session: Session, message: any): void {
    const now = this.#runtime.wallClock();
    switch (message.type) {
      case "hello": {
        session.publicKey = Uint8Array.fromBase64(message.publicKey);
        session.nonce = this.#runtime.randomBytes(32);
        this.#send(session, {
          type: "challenge",
          version: 1,
          nonce: session.nonce.toBase64(),
          serverTime: now,
        });
        return;
      }
      case "register": {
        if (!session.publicKey || !session.nonce) return;
        const ok = verifySignatureSync(
          session.publicKey,
          registrationSignedData(session.nonce),
          Uint8Array.fromBase64(message.signature),
        );
        if (!ok) {
          this.#close(session, "disconnected");
          return;
        }
        const id = peerIdFromPublicKeySync(session.publicKey);
        const previous = this.#byId.get(id);
        if (previous && previous !== session) {
          this.#send(previous, { type: "bye", reason: "replaced" });
          this.#byId.delete(id);
          this.#close(previous, "replaced");
        }
        session.id = id;
        session.localAddresses = message.localAddresses;
        this.#byId.set(id, session);
        this.#send(session, {
          type: "registered",
          id,
          stunUsername: id,
          stunPassword: "x".repeat(16),
          stunPort: 0,
          heartbeatMs: this.#heartbeatMs,
          relay: { bytesPerSecond: 10_000_000, queueBytes: 1 << 20, maxPayload: 65_000 },
          serverTime: now,
        });
        return;
      }
      case "ping":
        this.#send(session, { type: "pong", t: message.t });
        return;
      case "connect": {
        if (!session.id) return;
        const target = this.#byId.get(message.peer);
        if (!target || target === session) {
          this.#send(session, {
            type: "error",
            code: "unknown-peer",
            message: `peer ${message.peer} is not registered`,
            ...(message.requestId ? { requestId: message.requestId } : {}),
          });
          return;
        }
        const punchAt = now + (this.#options.punchDelayMs ?? 200);
        session.brokered.add(target.id!);
        target.brokered.add(session.id);
        this.#send(
          session,
          this.rewriteIntroduction(
            this.#introduce(target, "initiator", punchAt, message.requestId),
            session.id,
          ),
        );
        this.#send(
          target,
          this.rewriteIntroduction(this.#introduce(session, "responder", punchAt), target.id!),
        );
        return;
      }
      case "bye":
        this.#close(session, "disconnected");
        return;
      default:
        return;
    }
  }

  #introduce(
    peer: Session,
    role: "initiator" | "responder",
    punchAt: number,
    requestId?: string,
  ): Record<string, unknown> & { type: string } {
    return {
      type: "introduce",
      peer: peer.id,
      publicKey: peer.publicKey!.toBase64(),
      candidates: peer.localAddresses.map((a) => ({ host: a.host, port: a.port, kind: "local" })),
      role,
      punchAt,
      serverTime: this.#runtime.wallClock(),
      ...(requestId ? { requestId } : {}),
    };
  }
}
