/**
 * Secure sessions: the AES-256-GCM transport that a completed handshake yields.
 *
 * A TRANSPORT packet is `type u8 (0xE4) | receiverIndex u32 | counter u64 | ciphertext | tag`.
 * The 13-byte header is the additional authenticated data; the 96-bit nonce is four zero bytes
 * followed by the counter. Each direction has its own key, so a (key, nonce) pair never repeats.
 * Received counters go through a {@linkcode ReplayWindow}: reordering is tolerated, duplicates
 * and packets older than the window are dropped.
 *
 * @module
 */
import type { PeerId } from "../identity/peer_id.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { SessionExpiredError } from "./errors.ts";
import {
  classifyDatagram,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
  PeerPacketType,
  TRANSPORT_HEADER_BYTES,
} from "./packet.ts";
import { DEFAULT_REPLAY_WINDOW_SIZE, ReplayWindow } from "./replay_window.ts";

/**
 * After this many sealed packets a session refuses to seal more ({@linkcode SessionExpiredError});
 * the client must have run a new handshake long before (WireGuard's REJECT_AFTER_MESSAGES is
 * of the same order). Far below the 2^32 invocations NIST allows per AES-GCM key with random
 * nonces, and our nonces are counters, so this is a safety net, not a cryptographic limit.
 */
export const REJECT_AFTER_PACKETS = 2 ** 48;

/** What a {@linkcode SecureSession} is built from (the handshake computes it). */
export interface SecureSessionInit {
  /** The authenticated peer. */
  remoteId: PeerId;
  /** Index this side allocated: TRANSPORT packets to us carry it. */
  localIndex: number;
  /** Index the peer allocated: TRANSPORT packets we send carry it. */
  remoteIndex: number;
  /** True on the side that sent HANDSHAKE_INIT. */
  isInitiator: boolean;
  /** AES-256-GCM key for packets we send. */
  sendKey: CryptoKey;
  /** AES-256-GCM key for packets we receive. */
  receiveKey: CryptoKey;
  /** When the session was made (the caller's clock, ms). */
  createdAt: number;
  /** Replay window size in counters. */
  replayWindowSize?: number;
}

/**
 * One direction-keyed, replay-protected encrypted session with an authenticated peer.
 *
 * @example
 * ```ts
 * const session = await initiator.complete(responsePacket);
 * if (session) {
 *   const packet = await session.seal(new TextEncoder().encode("hi"));
 *   socket.send(packet, address);
 * }
 * // on receipt:
 * const plaintext = await session.open(datagram); // undefined: drop it
 * ```
 */
export class SecureSession {
  /** The authenticated peer's ID. */
  readonly remoteId: PeerId;
  /** Our index: the receiver index of packets sent to us. */
  readonly localIndex: number;
  /** The peer's index: the receiver index of packets we send. */
  readonly remoteIndex: number;
  /** True when this side initiated the handshake. */
  readonly isInitiator: boolean;
  /** When the session was made (the caller's clock, ms). */
  readonly createdAt: number;
  readonly #sendKey: CryptoKey;
  readonly #receiveKey: CryptoKey;
  readonly #window: ReplayWindow;
  #sendCounter = 0;
  #confirmed: boolean;
  #closed = false;

  /**
   * Made by the handshake; not meant to be called directly.
   *
   * @example
   * ```ts
   * const session = new SecureSession({ remoteId, localIndex: 1, remoteIndex: 2, isInitiator: true, sendKey, receiveKey, createdAt: Date.now() });
   * ```
   */
  constructor(init: SecureSessionInit) {
    this.remoteId = init.remoteId;
    this.localIndex = init.localIndex;
    this.remoteIndex = init.remoteIndex;
    this.isInitiator = init.isInitiator;
    this.createdAt = init.createdAt;
    this.#sendKey = init.sendKey;
    this.#receiveKey = init.receiveKey;
    this.#window = new ReplayWindow(init.replayWindowSize ?? DEFAULT_REPLAY_WINDOW_SIZE);
    this.#confirmed = init.isInitiator;
  }

  /**
   * Whether the peer has proven it holds the session keys. Always true for the initiator (the
   * responder's signed response proves it); for the responder it becomes true with the first
   * authenticated packet opened. A responder should keep using an older confirmed session
   * until its new one is confirmed.
   *
   * @example
   * ```ts
   * if (session.confirmed) currentSession = session;
   * ```
   */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /**
   * Number of packets sealed so far (the next counter).
   *
   * @example
   * ```ts
   * console.log(session.sentPackets);
   * ```
   */
  get sentPackets(): number {
    return this.#sendCounter;
  }

  /**
   * Whether {@linkcode SecureSession.close} was called.
   *
   * @example
   * ```ts
   * console.log(session.closed);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Encrypts `plaintext` (at most {@linkcode MAX_TRANSPORT_PLAINTEXT_BYTES} bytes) into a complete
   * TRANSPORT packet. Throws `RangeError` for an oversized plaintext and
   * {@linkcode SessionExpiredError} once the session is closed or exhausted.
   *
   * @example
   * ```ts
   * const packet = await session.seal(encodeFrame({ type: FrameType.PathProbe, nonce }));
   * ```
   */
  async seal(plaintext: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new SessionExpiredError("session is closed");
    if (plaintext.length > MAX_TRANSPORT_PLAINTEXT_BYTES) {
      throw new RangeError(
        `plaintext of ${plaintext.length} bytes exceeds ${MAX_TRANSPORT_PLAINTEXT_BYTES}`,
      );
    }
    if (this.#sendCounter >= REJECT_AFTER_PACKETS) {
      throw new SessionExpiredError("session counter exhausted");
    }
    const counter = this.#sendCounter++;
    const header = new Uint8Array(TRANSPORT_HEADER_BYTES);
    header[0] = PeerPacketType.Transport;
    writeU32(header, 1, this.remoteIndex);
    writeU64(header, 5, counter);
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonceFor(counter), additionalData: header, tagLength: 128 },
      this.#sendKey,
      plaintext as Uint8Array<ArrayBuffer>,
    );
    const packet = new Uint8Array(TRANSPORT_HEADER_BYTES + sealed.byteLength);
    packet.set(header, 0);
    packet.set(new Uint8Array(sealed), TRANSPORT_HEADER_BYTES);
    return packet;
  }

  /**
   * Authenticates and decrypts a TRANSPORT packet. Returns `undefined`, never throws, when the
   * packet is malformed, for another session, tampered with, a replay, or too old.
   *
   * @example
   * ```ts
   * const plaintext = await session.open(datagram);
   * if (plaintext === undefined) return; // drop
   * ```
   */
  async open(packet: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#closed || classifyDatagram(packet) !== PeerPacketType.Transport) return undefined;
    if (readU32(packet, 1) !== this.localIndex) return undefined;
    const counter = readU64(packet, 5);
    if (counter === undefined || !this.#window.check(counter)) return undefined;
    let plaintext: ArrayBuffer;
    try {
      plaintext = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: nonceFor(counter),
          additionalData: packet.subarray(0, TRANSPORT_HEADER_BYTES) as Uint8Array<ArrayBuffer>,
          tagLength: 128,
        },
        this.#receiveKey,
        packet.subarray(TRANSPORT_HEADER_BYTES) as Uint8Array<ArrayBuffer>,
      );
    } catch {
      return undefined;
    }
    // Re-checked after the await: a concurrent open of the same counter may have won.
    if (this.#closed || !this.#window.accept(counter)) return undefined;
    this.#confirmed = true;
    return new Uint8Array(plaintext);
  }

  /**
   * Stops the session: later {@linkcode SecureSession.seal} calls throw, later packets are
   * dropped. (WebCrypto keys cannot be wiped; dropping the session drops the last reference.)
   *
   * @example
   * ```ts
   * oldSession.close();
   * ```
   */
  close(): void {
    this.#closed = true;
  }
}

function nonceFor(counter: number): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(12);
  writeU64(nonce, 4, counter);
  return nonce;
}
