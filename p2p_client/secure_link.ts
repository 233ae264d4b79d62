/**
 * The secure link with one peer: the handshake and the secure session, nothing else (no paths,
 * no messages). It starts handshakes (and resends the INIT until answered), adopts sessions from
 * either role, re-handshakes on request (a stalled channel, a restarted peer, a new
 * introduction), and breaks the tie when both sides start one at once: the INIT of the peer with
 * the higher ID wins, so both end on the same session.
 *
 * @module
 */
import type { Identity } from "../shared/identity/mod.ts";
import { peerIdFromPublicKeySync } from "../shared/identity/peer_id.ts";
import { HandshakeInitiator, type HandshakeResponse } from "../shared/peer/handshake.ts";
import type { SecureSession } from "../shared/peer/session.ts";
import type { Runtime } from "../shared/runtime/mod.ts";

/** Hooks of a {@linkcode SecureLink}. */
export interface SecureLinkOptions {
  /** The peer's ID. */
  peer: string;
  /** Our identity. */
  identity: Identity;
  /** Clock (wall clock stamps INITs) and timers. */
  runtime: Runtime;
  /** Allocates a session index routed to this link. */
  allocateIndex: () => number;
  /** Stops routing an index. */
  releaseIndex: (index: number) => void;
  /** Sends the INIT (first time and resends): over the relay and to direct candidates. */
  sendInit: (packet: Uint8Array) => void;
  /** A new session is in use (the previous one, if any, is closed). */
  onSession: (session: SecureSession, reason: string) => void;
  /** Debug log. */
  log?: (message: string) => void;
}

/** First INIT resend interval; doubles up to {@linkcode MAX_INIT_RESEND_MS}. */
const INIT_RESEND_MS = 1000;
const MAX_INIT_RESEND_MS = 4000;
/** Resends of one INIT before a fresh one (newer timestamp) replaces it. */
const MAX_INIT_RESENDS = 5;
/** A session we just initiated wins over a crossing INIT of the peer for this long. */
const TIE_WINDOW_MS = 2000;

/**
 * Handshake and session of one peer.
 *
 * @example
 * ```ts
 * // const link = new SecureLink({ peer, identity, runtime, allocateIndex, releaseIndex, sendInit, onSession });
 * // link.setPublicKey(key);
 * // link.initiate("introduced as initiator");
 * ```
 */
export class SecureLink {
  readonly #options: SecureLinkOptions;
  #publicKey: Uint8Array | undefined;
  #session: SecureSession | undefined;
  #initiator: HandshakeInitiator | undefined;
  #starting = false;
  #initSentAt = -Infinity;
  #resendMs = INIT_RESEND_MS;
  #resends = 0;
  #ownSessionAt = -Infinity;
  #closed = false;

  /**
   * Creates a link with no key and no session yet.
   *
   * @param options Hooks.
   */
  constructor(options: SecureLinkOptions) {
    this.#options = options;
  }

  /** The peer's public key, once known. */
  get publicKey(): Uint8Array | undefined {
    return this.#publicKey;
  }

  /** The session in use. */
  get session(): SecureSession | undefined {
    return this.#session;
  }

  /** True while our handshake waits for its response. */
  get handshaking(): boolean {
    return this.#initiator !== undefined || this.#starting;
  }

  /**
   * Learns the peer's key. Returns false (and keeps what it had) when the key does not belong
   * to the peer's ID: a lying introduction never replaces a true one, and a true one always
   * replaces a lie.
   *
   * @example
   * ```ts
   * // link.setPublicKey(Uint8Array.fromBase64(introduce.publicKey));
   * ```
   */
  setPublicKey(key: Uint8Array): boolean {
    let owner: string | undefined;
    try {
      owner = peerIdFromPublicKeySync(key);
    } catch {
      owner = undefined;
    }
    if (owner !== this.#options.peer) {
      this.#options.log?.(`introduction of ${this.#options.peer} with a key of ${owner}: ignored`);
      return false;
    }
    this.#publicKey = key.slice();
    return true;
  }

  /**
   * Starts a handshake (unless one is under way); the current session stays in use until the new
   * one is established.
   *
   * @example
   * ```ts
   * // link.initiate("channel stalled");
   * ```
   */
  initiate(reason: string): void {
    if (this.#closed || this.handshaking || !this.#publicKey) return;
    this.#options.log?.(`handshake with ${this.#options.peer}: ${reason}`);
    this.#starting = true;
    const index = this.#options.allocateIndex();
    HandshakeInitiator.start({
      identity: this.#options.identity,
      remoteId: this.#options.peer,
      remotePublicKey: this.#publicKey,
      localIndex: index,
      now: () => this.#options.runtime.wallClock(),
    }).then((initiator) => {
      this.#starting = false;
      if (this.#closed) {
        this.#options.releaseIndex(index);
        return;
      }
      this.#initiator = initiator;
      this.#resendMs = INIT_RESEND_MS;
      this.#resends = 0;
      this.#sendInit();
    }, (error) => {
      this.#starting = false;
      this.#options.releaseIndex(index);
      this.#options.log?.(`cannot start a handshake with ${this.#options.peer}: ${error}`);
    });
  }

  /**
   * Sends the pending INIT again now, its resend interval back to the first (the peer was just
   * introduced again: the relay reaches it now, where the last sends went nowhere).
   *
   * @example
   * ```ts
   * // link.resendNow();
   * ```
   */
  resendNow(): void {
    if (!this.#initiator) return;
    this.#resendMs = INIT_RESEND_MS;
    this.#sendInit();
  }

  #sendInit(): void {
    if (!this.#initiator) return;
    this.#initSentAt = this.#options.runtime.now();
    this.#options.sendInit(this.#initiator.packet);
  }

  /** The pending INIT, to send along with punches to direct candidates. */
  get initPacket(): Uint8Array | undefined {
    return this.#initiator?.packet;
  }

  /** When the INIT is due again (runtime ms), or `Infinity`. */
  nextDeadline(): number {
    return this.#initiator ? this.#initSentAt + this.#resendMs : Infinity;
  }

  /**
   * Resends the INIT when due (with backoff, up to every 4 s, for as long as it is unanswered).
   *
   * @example
   * ```ts
   * // link.tick();
   * ```
   */
  tick(): void {
    if (!this.#initiator || this.#options.runtime.now() < this.nextDeadline()) return;
    if (++this.#resends > MAX_INIT_RESENDS) {
      // The peer may have refused this INIT for good (it crossed one of its own, or the peer
      // restarted in between): a fresh INIT with a newer timestamp.
      this.#options.releaseIndex(this.#initiator.localIndex);
      this.#initiator = undefined;
      this.initiate("no answer to the handshake");
      return;
    }
    this.#resendMs = Math.min(MAX_INIT_RESEND_MS, this.#resendMs * 2);
    this.#sendInit();
  }

  /**
   * The client's responder accepted an INIT from this peer. Returns true when the response
   * should be sent back; false when our own INIT wins the tie (the peer will accept ours).
   *
   * @example
   * ```ts
   * // if (link.accept(accepted)) reply(accepted.response);
   * ```
   */
  accept(accepted: HandshakeResponse): boolean {
    if (this.#closed) return false;
    if (accepted.session === this.#session) return true; // a resent INIT: answer again
    const now = this.#options.runtime.now();
    const ownIsFresh = now - this.#ownSessionAt < TIE_WINDOW_MS;
    if ((this.handshaking && this.#options.identity.id > this.#options.peer) || ownIsFresh) {
      // Both sides started a handshake: the higher ID's INIT wins (ours is pending, or has just
      // completed). This session is not used: its index is released, the responder will not
      // hand it out again, and the peer drops its own INIT on ours (or, if it really needs a new
      // session, starts a fresh handshake after a few unanswered resends).
      accepted.session.close();
      this.#options.releaseIndex(accepted.session.localIndex);
      return false;
    }
    if (this.#initiator) {
      this.#options.releaseIndex(this.#initiator.localIndex);
      this.#initiator = undefined;
    }
    this.#adopt(accepted.session, "peer's handshake");
    return true;
  }

  /**
   * A HANDSHAKE_RESPONSE to our INIT arrived. Returns false for an invalid or stale one.
   *
   * @example
   * ```ts
   * // await link.complete(packet);
   * ```
   */
  async complete(packet: Uint8Array): Promise<boolean> {
    const initiator = this.#initiator;
    if (!initiator || initiator.completed) return false;
    const session = await initiator.complete(packet);
    if (!session || this.#initiator !== initiator || this.#closed) return false;
    this.#initiator = undefined;
    this.#ownSessionAt = this.#options.runtime.now();
    this.#adopt(session, "our handshake");
    return true;
  }

  #adopt(session: SecureSession, reason: string): void {
    const previous = this.#session;
    this.#session = session;
    if (previous && previous !== session) {
      if (previous.localIndex !== session.localIndex) {
        this.#options.releaseIndex(previous.localIndex);
      }
      previous.close();
    }
    this.#options.onSession(session, reason);
  }

  /**
   * Drops the session and any pending handshake (the link is closed for good).
   *
   * @example
   * ```ts
   * // link.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    if (this.#session) {
      this.#session.close();
      this.#options.releaseIndex(this.#session.localIndex);
      this.#session = undefined;
    }
    if (this.#initiator) {
      this.#options.releaseIndex(this.#initiator.localIndex);
      this.#initiator = undefined;
    }
  }
}
