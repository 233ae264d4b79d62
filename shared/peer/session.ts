/**
 * Secure sessions: the encrypted transport that a completed handshake yields.
 *
 * A TRANSPORT packet is `type u8 | receiverIndex u32 | counter u64 | ciphertext | tag`. The
 * 13-byte header is the additional authenticated data; the 96-bit nonce is four zero bytes
 * followed by the counter. Each direction has its own key, so a (key, nonce) pair never repeats.
 * Received counters go through a {@linkcode ReplayWindow}: reordering is tolerated, duplicates
 * and packets older than the window are dropped.
 *
 * Two packet types share the header, the counter and the replay window:
 *
 * - `0xE4` TRANSPORT, AES-256-GCM, at most 1200 bytes: what every version reads.
 * - `0xE5` TRANSPORT_LARGE, ChaCha20-Poly1305 (RFC 8439) under a key derived from the direction's
 *   key (HKDF-SHA256, info `"p2p-transport/v2 chacha20-poly1305"`), up to 65,507 bytes.
 *
 * Why: Deno's `node:crypto` AES-GCM runs at about 70 MB/s on this machine (35 µs to seal and open a
 * 1200-byte packet, 960 µs for 65,000 bytes), its ChaCha20-Poly1305 at 640 MB/s (12 µs and 100 µs;
 * `deno task bench --only bulk`), and WebCrypto is asynchronous (a thread-pool round trip per
 * call). A session seals `0xE4` until it has opened one authentic `0xE5` packet from the peer (the
 * peer has shown it reads them), then seals everything as `0xE5`; a plaintext over 1171 bytes is
 * always sealed as `0xE5` (only a path MTU prober sends those before the peer has answered one).
 * So a client of this version and an older one still talk (`0xE4`, which the older one reads) and
 * two clients of this version switch to the faster cipher after the first `0xE5` probe answered.
 *
 * Both ciphers run through `node:crypto` (synchronous) rather than WebCrypto's asynchronous
 * `encrypt`, so packets leave in counter order. (Passing the AES key as a `KeyObject` made once
 * instead of raw bytes gave no steady gain: 24–40 µs either way.) The handshake itself uses
 * WebCrypto.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import type { PeerId } from "../identity/peer_id.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { SessionExpiredError } from "./errors.ts";
import {
  classifyDatagram,
  MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
  PeerPacketType,
  TRANSPORT_HEADER_BYTES,
  TRANSPORT_TAG_BYTES,
} from "./packet.ts";
import { type NativeAead, nativeAead } from "./native_aead.ts";
import { DEFAULT_REPLAY_WINDOW_SIZE, ReplayWindow } from "./replay_window.ts";

/**
 * After this many sealed packets a session refuses to seal more ({@linkcode SessionExpiredError});
 * the client must have run a new handshake long before (WireGuard's REJECT_AFTER_MESSAGES is
 * of the same order). Far below the 2^32 invocations NIST allows per AES-GCM key with random
 * nonces, and our nonces are counters, so this is a safety net, not a cryptographic limit.
 */
export const REJECT_AFTER_PACKETS: number = 2 ** 48;

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
  /** Raw 32-byte AES-256-GCM key for packets we send (the session keeps this array). */
  sendKey: Uint8Array;
  /** Raw 32-byte AES-256-GCM key for packets we receive (the session keeps this array). */
  receiveKey: Uint8Array;
  /** When the session was made (the caller's clock, ms). */
  createdAt: number;
  /** Replay window size in counters. */
  replayWindowSize?: number;
  /**
   * Seal TRANSPORT_LARGE (ChaCha20-Poly1305) packets from the start, without waiting for the peer
   * to send one (default false; for peers known to run this version, as benchmarks).
   */
  peerReadsLarge?: boolean;
  /**
   * Use OpenSSL's libcrypto through FFI when it is available (default true; `shared/peer/native_aead.ts`).
   * The packets are the same bytes either way; false forces `node:crypto` (tests of both).
   */
  nativeCrypto?: boolean;
}

/** HKDF info of the ChaCha20-Poly1305 key derived from a direction's key. */
const LARGE_KEY_INFO = "p2p-transport/v2 chacha20-poly1305";

function deriveLargeKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", key, new Uint8Array(0), LARGE_KEY_INFO, 32));
}

/**
 * One direction-keyed, replay-protected encrypted session with an authenticated peer.
 *
 * @example
 * ```ts
 * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
 * import type { HandshakeInitiator } from "./handshake.ts";
 * declare const initiator: HandshakeInitiator;
 * declare const responsePacket: Uint8Array;
 * declare const socket: DatagramSocket;
 * declare const address: NetAddress;
 * declare const datagram: Uint8Array;
 * const session = await initiator.complete(responsePacket);
 * if (session) {
 *   const packet = await session.seal(new TextEncoder().encode("hi"));
 *   socket.send(packet, address);
 * }
 * // on receipt:
 * const plaintext = await session?.open(datagram); // undefined: drop it
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
  readonly #sendKey: Uint8Array;
  readonly #receiveKey: Uint8Array;
  readonly #sendLargeKey: Uint8Array;
  readonly #receiveLargeKey: Uint8Array;
  readonly #nonce = new Uint8Array(12);
  readonly #window: ReplayWindow;
  #peerReadsLarge: boolean;
  /** libcrypto ciphers (send/receive × 0xE4/0xE5), made on first use; null: not available. */
  #native: (NativeAead | null | undefined)[] = [undefined, undefined, undefined, undefined];
  #sendCounter = 0;
  #confirmed: boolean;
  #closed = false;

  /**
   * Made by the handshake; not meant to be called directly.
   *
   * @example
   * ```ts
   * import type { PeerId } from "../identity/peer_id.ts";
   * import { systemRuntime } from "../runtime/mod.ts";
   * import { SecureSession } from "./session.ts";
   * declare const remoteId: PeerId;
   * declare const sendKey: Uint8Array;
   * declare const receiveKey: Uint8Array;
   * const session = new SecureSession({
   *   remoteId,
   *   localIndex: 1,
   *   remoteIndex: 2,
   *   isInitiator: true,
   *   sendKey,
   *   receiveKey,
   *   createdAt: systemRuntime.now(),
   * });
   * ```
   */
  constructor(init: SecureSessionInit) {
    if (init.sendKey.length !== 32 || init.receiveKey.length !== 32) {
      throw new RangeError("AES-256-GCM keys are 32 bytes");
    }
    this.remoteId = init.remoteId;
    this.localIndex = init.localIndex;
    this.remoteIndex = init.remoteIndex;
    this.isInitiator = init.isInitiator;
    this.createdAt = init.createdAt;
    this.#sendKey = init.sendKey;
    this.#receiveKey = init.receiveKey;
    this.#sendLargeKey = deriveLargeKey(init.sendKey);
    this.#receiveLargeKey = deriveLargeKey(init.receiveKey);
    this.#peerReadsLarge = init.peerReadsLarge ?? false;
    if (init.nativeCrypto === false) this.#native = [null, null, null, null];
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
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * let currentSession: SecureSession | undefined;
   * if (session.confirmed) currentSession = session;
   * ```
   */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /**
   * Whether the peer has shown it reads TRANSPORT_LARGE (0xE5) packets: it sent one that opened.
   * From then on every packet is sealed as 0xE5 (ChaCha20-Poly1305).
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * if (session.peerReadsLarge) console.log("fast cipher in use");
   * ```
   */
  get peerReadsLarge(): boolean {
    return this.#peerReadsLarge;
  }

  /**
   * Number of packets sealed so far (the next counter).
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
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
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * console.log(session.closed);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Encrypts `plaintext` (at most {@linkcode MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES} bytes; over
   * {@linkcode MAX_TRANSPORT_PLAINTEXT_BYTES} only on a path probed that large) into a complete
   * TRANSPORT (0xE4) or, once the peer reads them or when larger, TRANSPORT_LARGE (0xE5) packet. Rejects with `RangeError` for an oversized plaintext and with
   * {@linkcode SessionExpiredError} once the session is closed or exhausted. (The work is done
   * synchronously, see {@linkcode SecureSession.sealSync}; the promise is already settled.)
   *
   * @example
   * ```ts
   * import { encodeFrame, FrameType } from "./frames.ts";
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const nonce: Uint8Array;
   * const packet = await session.seal(encodeFrame({ type: FrameType.PathProbe, nonce }));
   * ```
   */
  seal(plaintext: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.sealSync(plaintext));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@linkcode SecureSession.seal} without the promise: throws `RangeError` or
   * {@linkcode SessionExpiredError}.
   *
   * @example
   * ```ts
   * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const socket: DatagramSocket;
   * declare const address: NetAddress;
   * declare const frame: Uint8Array;
   * socket.send(session.sealSync(frame), address);
   * ```
   */
  sealSync(plaintext: Uint8Array): Uint8Array {
    const large = this.#peerReadsLarge || plaintext.length > MAX_TRANSPORT_PLAINTEXT_BYTES;
    return this.#seal(plaintext, large);
  }

  /**
   * Seals `plaintext` (at most {@linkcode MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES} bytes) as a
   * TRANSPORT_LARGE (0xE5) packet whatever the peer has shown: for path MTU probes, whose answer
   * tells both that the path carries that size and that the peer reads 0xE5. Throws as
   * {@linkcode SecureSession.sealSync}.
   *
   * @example
   * ```ts
   * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const socket: DatagramSocket;
   * declare const address: NetAddress;
   * declare const probeFrame: Uint8Array;
   * socket.send(session.sealLargeSync(probeFrame), address);
   * ```
   */
  sealLargeSync(plaintext: Uint8Array): Uint8Array {
    return this.#seal(plaintext, true);
  }

  /**
   * {@linkcode SecureSession.sealSync} of the plaintext `head ‖ tail` without joining them first
   * (a DATA frame's header and a view of the message it carries: one copy fewer per packet).
   *
   * @example
   * ```ts
   * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
   * import { type DataFrame, encodeDataHead } from "./frames.ts";
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const socket: DatagramSocket;
   * declare const address: NetAddress;
   * declare const frame: DataFrame;
   * socket.send(session.sealPartsSync(encodeDataHead(frame), frame.payload), address);
   * ```
   */
  sealPartsSync(head: Uint8Array, tail: Uint8Array): Uint8Array {
    const length = head.length + tail.length;
    return this.#seal(head, this.#peerReadsLarge || length > MAX_TRANSPORT_PLAINTEXT_BYTES, tail);
  }

  /**
   * {@linkcode SecureSession.sealPartsSync} into `out` (at least `head.length + tail.length + 29`
   * bytes) instead of a new array; returns the packet, a view of `out`. With libcrypto (FFI
   * granted) nothing is allocated: a sender that recycles `out` once the datagram is sent makes
   * no garbage per packet.
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * const out = new Uint8Array(65_536);
   * const packet = session.sealPartsInto(new Uint8Array([1]), new Uint8Array(1000), out);
   * console.log(packet.buffer === out.buffer); // true
   * ```
   */
  sealPartsInto(head: Uint8Array, tail: Uint8Array, out: Uint8Array): Uint8Array {
    const length = head.length + tail.length;
    const large = this.#peerReadsLarge || length > MAX_TRANSPORT_PLAINTEXT_BYTES;
    return this.#seal(head, large, tail, out);
  }

  /** The libcrypto cipher for a direction and packet type, or null (use `node:crypto`). */
  #nativeCipher(send: boolean, large: boolean): NativeAead | null {
    const slot = (send ? 0 : 2) + (large ? 1 : 0);
    let cipher = this.#native[slot];
    if (cipher === undefined) {
      const key = send
        ? (large ? this.#sendLargeKey : this.#sendKey)
        : (large ? this.#receiveLargeKey : this.#receiveKey);
      cipher = nativeAead(large ? "chacha20-poly1305" : "aes-256-gcm", key, send) ?? null;
      this.#native[slot] = cipher;
    }
    return cipher;
  }

  #seal(plaintext: Uint8Array, large: boolean, tail?: Uint8Array, out?: Uint8Array): Uint8Array {
    if (this.#closed) throw new SessionExpiredError("session is closed");
    const limit = large ? MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES : MAX_TRANSPORT_PLAINTEXT_BYTES;
    const length = plaintext.length + (tail?.length ?? 0);
    if (length > limit) {
      throw new RangeError(`plaintext of ${length} bytes exceeds ${limit}`);
    }
    if (this.#sendCounter >= REJECT_AFTER_PACKETS) {
      throw new SessionExpiredError("session counter exhausted");
    }
    const total = TRANSPORT_HEADER_BYTES + length + TRANSPORT_TAG_BYTES;
    if (out !== undefined && out.length < total) {
      throw new RangeError(`output of ${out.length} bytes is below ${total}`);
    }
    const counter = this.#sendCounter++;
    const packet = out === undefined ? new Uint8Array(total) : out.subarray(0, total);
    packet[0] = large ? PeerPacketType.TransportLarge : PeerPacketType.Transport;
    writeU32(packet, 1, this.remoteIndex);
    writeU64(packet, 5, counter);
    writeU64(this.#nonce, 4, counter);
    const native = this.#nativeCipher(true, large);
    if (native !== null) {
      native.seal(
        this.#nonce,
        packet.subarray(0, TRANSPORT_HEADER_BYTES),
        plaintext,
        packet.subarray(TRANSPORT_HEADER_BYTES + length),
        tail,
        packet.subarray(TRANSPORT_HEADER_BYTES),
      );
      return packet;
    }
    const cipher = large
      ? createCipheriv("chacha20-poly1305", this.#sendLargeKey, this.#nonce, {
        authTagLength: TRANSPORT_TAG_BYTES,
      })
      : createCipheriv("aes-256-gcm", this.#sendKey, this.#nonce, {
        authTagLength: TRANSPORT_TAG_BYTES,
      });
    cipher.setAAD(packet.subarray(0, TRANSPORT_HEADER_BYTES), { plaintextLength: length });
    packet.set(cipher.update(plaintext), TRANSPORT_HEADER_BYTES);
    if (tail !== undefined && tail.length > 0) {
      packet.set(cipher.update(tail), TRANSPORT_HEADER_BYTES + plaintext.length);
    }
    cipher.final();
    packet.set(cipher.getAuthTag(), TRANSPORT_HEADER_BYTES + length);
    return packet;
  }

  /**
   * Authenticates and decrypts a TRANSPORT packet. Resolves to `undefined`, never rejects, when
   * the packet is malformed, for another session, tampered with, a replay, or too old. (The work
   * is done synchronously, see {@linkcode SecureSession.openSync}.)
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * async function onDatagram(datagram: Uint8Array) {
   *   const plaintext = await session.open(datagram);
   *   if (plaintext === undefined) return; // drop
   *   console.log(plaintext.length);
   * }
   * ```
   */
  open(packet: Uint8Array): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.openSync(packet));
  }

  /**
   * {@linkcode SecureSession.open} without the promise.
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const datagram: Uint8Array;
   * const plaintext = session.openSync(datagram);
   * ```
   */
  openSync(packet: Uint8Array): Uint8Array | undefined {
    return this.#open(packet, false);
  }

  /**
   * {@linkcode SecureSession.openSync} that decrypts in place: the plaintext returned is a view of
   * `packet` (valid as long as the caller leaves that memory alone; with libcrypto nothing is
   * allocated). A packet that does not open may be left scrambled.
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const session: SecureSession;
   * declare const datagram: Uint8Array;
   * const plaintext = session.openInPlaceSync(datagram); // a view of datagram, or undefined
   * ```
   */
  openInPlaceSync(packet: Uint8Array): Uint8Array | undefined {
    return this.#open(packet, true);
  }

  #open(packet: Uint8Array, inPlace: boolean): Uint8Array | undefined {
    if (this.#closed) return undefined;
    const kind = classifyDatagram(packet);
    if (kind !== PeerPacketType.Transport && kind !== PeerPacketType.TransportLarge) {
      return undefined;
    }
    if (readU32(packet, 1) !== this.localIndex) return undefined;
    const counter = readU64(packet, 5);
    if (counter === undefined || !this.#window.check(counter)) return undefined;
    const large = kind === PeerPacketType.TransportLarge;
    const tagAt = packet.length - TRANSPORT_TAG_BYTES;
    let plaintext: Uint8Array;
    writeU64(this.#nonce, 4, counter);
    const native = this.#nativeCipher(false, large);
    if (native !== null) {
      const body = packet.subarray(TRANSPORT_HEADER_BYTES, tagAt);
      plaintext = inPlace ? body : new Uint8Array(body.length);
      const ok = native.open(
        this.#nonce,
        packet.subarray(0, TRANSPORT_HEADER_BYTES),
        body,
        packet.subarray(tagAt),
        plaintext,
      );
      if (!ok) return undefined;
    } else {
      try {
        const decipher = large
          ? createDecipheriv("chacha20-poly1305", this.#receiveLargeKey, this.#nonce, {
            authTagLength: TRANSPORT_TAG_BYTES,
          })
          : createDecipheriv("aes-256-gcm", this.#receiveKey, this.#nonce, {
            authTagLength: TRANSPORT_TAG_BYTES,
          });
        decipher.setAAD(packet.subarray(0, TRANSPORT_HEADER_BYTES), {
          plaintextLength: tagAt - TRANSPORT_HEADER_BYTES,
        });
        decipher.setAuthTag(packet.subarray(tagAt));
        const body = decipher.update(packet.subarray(TRANSPORT_HEADER_BYTES, tagAt));
        decipher.final(); // throws when the tag does not verify
        // A plain Uint8Array of our own: a small Buffer may be a view into a shared pool, so it
        // is copied; a large one (never pooled) is viewed as it is, saving a copy per bulk packet.
        plaintext = body.length > 4096
          ? new Uint8Array(body.buffer, body.byteOffset, body.length)
          : new Uint8Array(body);
      } catch {
        return undefined;
      }
    }
    if (!this.#window.accept(counter)) return undefined;
    this.#confirmed = true;
    if (large) this.#peerReadsLarge = true;
    return plaintext;
  }

  /**
   * Stops the session: later {@linkcode SecureSession.seal} calls throw, later packets are
   * dropped, and the key bytes are overwritten with zeros.
   *
   * @example
   * ```ts
   * import { type SecureSession } from "./session.ts";
   * declare const oldSession: SecureSession;
   * oldSession.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    for (const cipher of this.#native) cipher?.close();
    this.#native = [null, null, null, null];
    this.#sendKey.fill(0);
    this.#receiveKey.fill(0);
    this.#sendLargeKey.fill(0);
    this.#receiveLargeKey.fill(0);
  }
}
