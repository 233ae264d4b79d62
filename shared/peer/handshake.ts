/**
 * The authenticated key exchange between two peers: a signed ephemeral X25519 Diffie-Hellman
 * (SIGMA-style, as TLS 1.3 signs its transcript), on synchronous node:crypto.
 *
 * - INIT (initiator → responder) carries the initiator's index, both peer IDs, a timestamp, a
 *   fresh ephemeral X25519 key, and the initiator's Ed25519 signature over
 *   `"p2p-handshake/v1 init" || INIT[0..85)`.
 * - RESPONSE (responder → initiator) carries the responder's index, the initiator's index, a fresh
 *   ephemeral key and the responder's signature over
 *   `"p2p-handshake/v1 response" || INIT || RESPONSE[0..41)`: the whole transcript.
 * - Both sides compute the X25519 shared secret and
 *   `HKDF-SHA256(ikm = secret, salt = SHA-256(INIT || RESPONSE), info = "p2p-handshake/v1 keys")`
 *   → 64 bytes: the initiator→responder AES-256-GCM key, then the responder→initiator key.
 *
 * Properties: mutual authentication bound to the peer IDs (each signature names both IDs and the
 * keys are checked against the IDs); forward secrecy (ephemeral private keys are never exported
 * and are dropped once used); a replayed INIT yields no usable session (the attacker lacks the
 * ephemeral private key) and, because the responder requires a strictly increasing timestamp per
 * peer (as WireGuard does), cannot replace a live one. Identities are not hidden.
 *
 * @module
 */
import {
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from "node:crypto";
import { type Identity, verifySignature } from "../identity/identity.ts";
import { PEER_ID_BYTES, type PeerId, peerIdFromPublicKey } from "../identity/peer_id.ts";
import { bytesEqual, readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { HandshakeError } from "./errors.ts";
import {
  classifyDatagram,
  HANDSHAKE_INIT_BYTES,
  HANDSHAKE_RESPONSE_BYTES,
  peerIdToBytes,
  PeerPacketType,
} from "./packet.ts";
import { SecureSession } from "./session.ts";

const encoder = new TextEncoder();
const INIT_LABEL = encoder.encode("p2p-handshake/v1 init");
const RESPONSE_LABEL = encoder.encode("p2p-handshake/v1 response");
const KEY_INFO = encoder.encode("p2p-handshake/v1 keys");

// INIT layout.
const INIT_SENDER_INDEX = 1;
const INIT_SENDER_ID = 5;
const INIT_RECEIVER_ID = INIT_SENDER_ID + PEER_ID_BYTES;
const INIT_TIMESTAMP = INIT_RECEIVER_ID + PEER_ID_BYTES;
const INIT_EPHEMERAL = INIT_TIMESTAMP + 8;
const INIT_SIGNATURE = INIT_EPHEMERAL + 32;
// RESPONSE layout.
const RESPONSE_SENDER_INDEX = 1;
const RESPONSE_RECEIVER_INDEX = 5;
const RESPONSE_EPHEMERAL = 9;
const RESPONSE_SIGNATURE = RESPONSE_EPHEMERAL + 32;

/** Parameters of {@linkcode HandshakeInitiator.start}. */
export interface HandshakeInitiatorOptions {
  /** Our long-term identity. */
  identity: Identity;
  /** The peer to reach. */
  remoteId: PeerId;
  /** The peer's Ed25519 public key (32 bytes); must hash to `remoteId`. */
  remotePublicKey: Uint8Array;
  /** A u32 index the caller allocated for this session (unique among its live sessions). */
  localIndex: number;
  /**
   * Wall clock in ms since the epoch. The INIT's timestamp is `now()` in microseconds; the
   * responder accepts only strictly increasing timestamps from one peer, so start at most one
   * handshake per peer per millisecond.
   */
  now: () => number;
}

/**
 * The initiating side of a handshake: build it, send {@linkcode HandshakeInitiator.packet}
 * (resend the same bytes while waiting), and feed the HANDSHAKE_RESPONSE to
 * {@linkcode HandshakeInitiator.complete}.
 *
 * @example
 * ```ts
 * import type { Identity } from "../identity/identity.ts";
 * import type { PeerId } from "../identity/peer_id.ts";
 * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
 * import { systemRuntime } from "../runtime/mod.ts";
 * import { HandshakeInitiator } from "./handshake.ts";
 * declare const identity: Identity;
 * declare const remoteId: PeerId;
 * declare const remotePublicKey: Uint8Array;
 * declare const socket: DatagramSocket;
 * declare const peerAddress: NetAddress;
 * declare const responsePacket: Uint8Array;
 * const initiator = await HandshakeInitiator.start({
 *   identity,
 *   remoteId,
 *   remotePublicKey,
 *   localIndex: 7,
 *   now: () => systemRuntime.wallClock(),
 * });
 * socket.send(initiator.packet, peerAddress);
 * // later, for a HANDSHAKE_RESPONSE whose receiver index is 7:
 * const session = await initiator.complete(responsePacket);
 * ```
 */
export class HandshakeInitiator {
  /** The HANDSHAKE_INIT packet: send it, and resend these same bytes while waiting. */
  readonly packet: Uint8Array;
  /** The peer being reached. */
  readonly remoteId: PeerId;
  /** Our index for the session. */
  readonly localIndex: number;
  readonly #remotePublicKey: Uint8Array;
  readonly #now: () => number;
  #ephemeral: KeyObject | undefined;

  private constructor(
    packet: Uint8Array,
    options: HandshakeInitiatorOptions,
    ephemeral: KeyObject,
  ) {
    this.packet = packet;
    this.remoteId = options.remoteId;
    this.localIndex = options.localIndex;
    this.#remotePublicKey = options.remotePublicKey.slice();
    this.#now = options.now;
    this.#ephemeral = ephemeral;
  }

  /**
   * Generates a fresh ephemeral key and the signed INIT. Throws {@linkcode HandshakeError} when
   * the public key does not belong to `remoteId` or `localIndex` is not a u32.
   *
   * @example
   * ```ts
   * import type { Identity } from "../identity/identity.ts";
   * import type { PeerId } from "../identity/peer_id.ts";
   * import { systemRuntime } from "../runtime/mod.ts";
   * import { HandshakeInitiator } from "./handshake.ts";
   * declare const identity: Identity;
   * declare const remoteId: PeerId;
   * declare const remotePublicKey: Uint8Array;
   * const initiator = await HandshakeInitiator.start({
   *   identity,
   *   remoteId,
   *   remotePublicKey,
   *   localIndex: 1,
   *   now: () => systemRuntime.wallClock(),
   * });
   * ```
   */
  static async start(options: HandshakeInitiatorOptions): Promise<HandshakeInitiator> {
    const { identity, remoteId, remotePublicKey, localIndex } = options;
    if (!isU32(localIndex)) throw new HandshakeError(`localIndex is not a u32: ${localIndex}`);
    if (
      remotePublicKey.length !== 32 || (await peerIdFromPublicKey(remotePublicKey)) !== remoteId
    ) {
      throw new HandshakeError(`public key does not belong to peer ${remoteId}`);
    }
    if (remoteId === identity.id) throw new HandshakeError("cannot handshake with oneself");
    const timestamp = Math.floor(options.now() * 1000);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new HandshakeError(`clock reading out of range: ${options.now()}`);
    }
    const ephemeral = generateEphemeral();
    const packet = new Uint8Array(HANDSHAKE_INIT_BYTES);
    packet[0] = PeerPacketType.HandshakeInit;
    writeU32(packet, INIT_SENDER_INDEX, localIndex);
    packet.set(peerIdToBytes(identity.id), INIT_SENDER_ID);
    packet.set(peerIdToBytes(remoteId), INIT_RECEIVER_ID);
    writeU64(packet, INIT_TIMESTAMP, timestamp);
    packet.set(ephemeral.publicKey, INIT_EPHEMERAL);
    const signature = await identity.sign(concat(INIT_LABEL, packet.subarray(0, INIT_SIGNATURE)));
    packet.set(signature, INIT_SIGNATURE);
    return new HandshakeInitiator(packet, options, ephemeral.privateKey);
  }

  /**
   * Whether a session was already produced (further responses are ignored).
   *
   * @example
   * ```ts
   * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
   * import { type HandshakeInitiator } from "./handshake.ts";
   * declare const initiator: HandshakeInitiator;
   * declare const socket: DatagramSocket;
   * declare const peerAddress: NetAddress;
   * if (!initiator.completed) socket.send(initiator.packet, peerAddress);
   * ```
   */
  get completed(): boolean {
    return this.#ephemeral === undefined;
  }

  /**
   * Checks a HANDSHAKE_RESPONSE and derives the session. Returns `undefined`, never throws, for
   * anything that is not a valid response to this INIT from the expected peer, and for any
   * response after the first valid one.
   *
   * @example
   * ```ts
   * import { type HandshakeInitiator } from "./handshake.ts";
   * import type { SecureSession } from "./session.ts";
   * declare const initiator: HandshakeInitiator;
   * declare const packet: Uint8Array;
   * declare const sessions: Map<number, SecureSession>;
   * const session = await initiator.complete(packet);
   * if (session) sessions.set(session.localIndex, session);
   * ```
   */
  async complete(response: Uint8Array): Promise<SecureSession | undefined> {
    if (this.#ephemeral === undefined) return undefined;
    if (classifyDatagram(response) !== PeerPacketType.HandshakeResponse) return undefined;
    if (readU32(response, RESPONSE_RECEIVER_INDEX) !== this.localIndex) return undefined;
    const signed = concat(RESPONSE_LABEL, this.packet, response.subarray(0, RESPONSE_SIGNATURE));
    const signature = response.subarray(RESPONSE_SIGNATURE, HANDSHAKE_RESPONSE_BYTES);
    if (!(await verifySignature(this.#remotePublicKey, signed, signature))) return undefined;
    const ephemeral = this.#ephemeral;
    if (ephemeral === undefined) return undefined;
    const keys = deriveSessionKeys(
      ephemeral,
      response.subarray(RESPONSE_EPHEMERAL, RESPONSE_SIGNATURE),
      this.packet,
      response,
    );
    // Checked again after the awaits: a concurrent call may have completed first.
    if (keys === undefined || this.#ephemeral === undefined) return undefined;
    this.#ephemeral = undefined;
    return new SecureSession({
      remoteId: this.remoteId,
      localIndex: this.localIndex,
      remoteIndex: readU32(response, RESPONSE_SENDER_INDEX),
      isInitiator: true,
      sendKey: keys.initiatorToResponder,
      receiveKey: keys.responderToInitiator,
      createdAt: this.#now(),
    });
  }
}

/** Parameters of the {@linkcode HandshakeResponder} constructor. */
export interface HandshakeResponderOptions {
  /** Our long-term identity. */
  identity: Identity;
  /** Clock in ms (stamps the sessions' `createdAt`). */
  now: () => number;
  /**
   * The Ed25519 public key of a peer we were introduced to (already checked against its ID), or
   * `undefined` to refuse the peer.
   */
  lookupPeer: (id: PeerId) => Uint8Array | undefined;
  /** Allocates a fresh u32 index for a new session. */
  allocateIndex: () => number;
}

/** What {@linkcode HandshakeResponder.respond} gives for a valid INIT. */
export interface HandshakeResponse {
  /** The session (the same object for a retransmitted INIT). */
  session: SecureSession;
  /** The HANDSHAKE_RESPONSE packet to send back (the same bytes for a retransmitted INIT). */
  response: Uint8Array;
  /** The authenticated initiator. */
  remoteId: PeerId;
  /** False when the INIT was a retransmission of the last one accepted from this peer. */
  isNew: boolean;
}

interface ResponderPeerState {
  timestamp: number;
  init: Uint8Array;
  result: Promise<Omit<HandshakeResponse, "isNew"> | undefined>;
  /** The client declined the session (see {@linkcode HandshakeResponder.decline}). */
  declined?: boolean;
}

/**
 * The responding side of handshakes, for all peers: one per client.
 *
 * @example
 * ```ts
 * import type { Identity } from "../identity/identity.ts";
 * import type { PeerId } from "../identity/peer_id.ts";
 * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
 * import { systemRuntime } from "../runtime/mod.ts";
 * import { HandshakeResponder } from "./handshake.ts";
 * declare const identity: Identity;
 * declare const introducedPeers: Map<PeerId, { publicKey: Uint8Array }>;
 * let nextIndex = 1;
 * declare const initPacket: Uint8Array;
 * declare const socket: DatagramSocket;
 * declare const from: NetAddress;
 * const responder = new HandshakeResponder({
 *   identity,
 *   now: () => systemRuntime.wallClock(),
 *   lookupPeer: (id) => introducedPeers.get(id)?.publicKey,
 *   allocateIndex: () => nextIndex++,
 * });
 * const accepted = await responder.respond(initPacket);
 * if (accepted) socket.send(accepted.response, from);
 * ```
 */
export class HandshakeResponder {
  readonly #identity: Identity;
  readonly #idBytes: Uint8Array;
  readonly #now: () => number;
  readonly #lookupPeer: (id: PeerId) => Uint8Array | undefined;
  readonly #allocateIndex: () => number;
  readonly #peers = new Map<PeerId, ResponderPeerState>();

  /**
   * Creates the responder of one client, for all its peers.
   *
   * @example
   * ```ts
   * import type { Identity } from "../identity/identity.ts";
   * import type { PeerId } from "../identity/peer_id.ts";
   * import { systemRuntime } from "../runtime/mod.ts";
   * import { HandshakeResponder } from "./handshake.ts";
   * declare const identity: Identity;
   * declare function lookupPeer(id: PeerId): Uint8Array | undefined;
   * declare function allocateIndex(): number;
   * const responder = new HandshakeResponder({
   *   identity,
   *   now: () => systemRuntime.wallClock(),
   *   lookupPeer,
   *   allocateIndex,
   * });
   * ```
   */
  constructor(options: HandshakeResponderOptions) {
    this.#identity = options.identity;
    this.#idBytes = peerIdToBytes(options.identity.id);
    this.#now = options.now;
    this.#lookupPeer = options.lookupPeer;
    this.#allocateIndex = options.allocateIndex;
  }

  /**
   * Answers a HANDSHAKE_INIT. Returns `undefined`, never throws, when the INIT is malformed, not
   * addressed to us, from a peer `lookupPeer` does not know, badly signed, or older than (or as
   * old as) the last INIT accepted from that peer. A byte-identical retransmission of the last
   * accepted INIT gives the same session and response with `isNew: false` (or `undefined` once
   * that session was closed).
   *
   * @example
   * ```ts
   * import type { DatagramSocket, NetAddress } from "../runtime/mod.ts";
   * import { type HandshakeResponder } from "./handshake.ts";
   * import type { SecureSession } from "./session.ts";
   * declare const responder: HandshakeResponder;
   * declare const packet: Uint8Array;
   * declare const pendingSessions: Map<number, SecureSession>;
   * declare const socket: DatagramSocket;
   * declare const from: NetAddress;
   * const accepted = await responder.respond(packet);
   * if (accepted?.isNew) pendingSessions.set(accepted.session.localIndex, accepted.session);
   * if (accepted) socket.send(accepted.response, from);
   * ```
   */
  async respond(init: Uint8Array): Promise<HandshakeResponse | undefined> {
    if (classifyDatagram(init) !== PeerPacketType.HandshakeInit) return undefined;
    if (!bytesEqual(init.subarray(INIT_RECEIVER_ID, INIT_TIMESTAMP), this.#idBytes)) {
      return undefined;
    }
    const senderId = init.subarray(INIT_SENDER_ID, INIT_RECEIVER_ID).toHex();
    if (senderId === this.#identity.id) return undefined;
    const timestamp = readU64(init, INIT_TIMESTAMP);
    if (timestamp === undefined) return undefined;
    const early = this.#peers.get(senderId);
    if (early !== undefined && !declinedResend(early, init)) {
      if (bytesEqual(early.init, init)) return await retransmitted(early);
      if (timestamp <= early.timestamp) return undefined;
    }
    const publicKey = this.#lookupPeer(senderId);
    if (publicKey === undefined || publicKey.length !== 32) return undefined;
    if ((await peerIdFromPublicKey(publicKey)) !== senderId) return undefined;
    const signed = concat(INIT_LABEL, init.subarray(0, INIT_SIGNATURE));
    const signature = init.subarray(INIT_SIGNATURE, HANDSHAKE_INIT_BYTES);
    if (!(await verifySignature(publicKey, signed, signature))) return undefined;
    // Checked again after the awaits: another INIT from this peer may have been accepted.
    const current = this.#peers.get(senderId);
    if (current !== undefined && !declinedResend(current, init)) {
      if (bytesEqual(current.init, init)) return await retransmitted(current);
      if (timestamp <= current.timestamp) return undefined;
    }
    const copy = init.slice();
    const result = this.#accept(copy, senderId);
    this.#peers.set(senderId, { timestamp, init: copy, result });
    const accepted = await result;
    return accepted && { ...accepted, isNew: true };
  }

  /**
   * Forgets the replay state of a peer (call it when the peer is gone for good and `lookupPeer`
   * no longer knows it, so memory stays bounded by the peers we know).
   *
   * @example
   * ```ts
   * import type { PeerId } from "../identity/peer_id.ts";
   * import { type HandshakeResponder } from "./handshake.ts";
   * declare const responder: HandshakeResponder;
   * declare const peerId: PeerId;
   * responder.forget(peerId);
   * ```
   */
  forget(id: PeerId): void {
    this.#peers.delete(id);
  }

  /**
   * The client did not use `session` (its own INIT won a tie, or the link is closed): a resend
   * of the very same INIT is then answered afresh (a new session, `isNew: true`) instead of not
   * at all. A tie is decided when two INITs cross; an initiator still resending its INIT after
   * that never got ours, and would otherwise wait out all its resends (seed 674: 9 s without a
   * session). Only the latest INIT of the peer, byte for byte, is answered again; older ones
   * stay refused.
   *
   * @example
   * ```ts
   * import { type HandshakeResponder, type HandshakeResponse } from "./handshake.ts";
   * declare const responder: HandshakeResponder;
   * declare const accepted: HandshakeResponse;
   * accepted.session.close();
   * responder.decline(accepted.session);
   * ```
   */
  decline(session: SecureSession): void {
    const state = this.#peers.get(session.remoteId);
    if (!state) return;
    void state.result.then((accepted) => {
      if (accepted?.session === session && this.#peers.get(session.remoteId) === state) {
        state.declined = true;
      }
    });
  }

  async #accept(
    init: Uint8Array,
    remoteId: PeerId,
  ): Promise<Omit<HandshakeResponse, "isNew"> | undefined> {
    const ephemeral = generateEphemeral();
    const response = new Uint8Array(HANDSHAKE_RESPONSE_BYTES);
    response[0] = PeerPacketType.HandshakeResponse;
    response.set(ephemeral.publicKey, RESPONSE_EPHEMERAL);
    writeU32(response, RESPONSE_RECEIVER_INDEX, readU32(init, INIT_SENDER_INDEX));
    // Fail before allocating an index when the initiator's ephemeral key is unusable.
    const secret = x25519(
      ephemeral.privateKey,
      init.subarray(INIT_EPHEMERAL, INIT_SIGNATURE),
    );
    if (secret === undefined) return undefined;
    const localIndex = this.#allocateIndex();
    if (!isU32(localIndex)) throw new HandshakeError(`allocateIndex gave a non-u32: ${localIndex}`);
    writeU32(response, RESPONSE_SENDER_INDEX, localIndex);
    const signed = concat(RESPONSE_LABEL, init, response.subarray(0, RESPONSE_SIGNATURE));
    response.set(await this.#identity.sign(signed), RESPONSE_SIGNATURE);
    const keys = keysFromSecret(secret, init, response);
    const session = new SecureSession({
      remoteId,
      localIndex,
      remoteIndex: readU32(init, INIT_SENDER_INDEX),
      isInitiator: false,
      sendKey: keys.responderToInitiator,
      receiveKey: keys.initiatorToResponder,
      createdAt: this.#now(),
    });
    return { session, response, remoteId };
  }
}

/** True for a byte-identical resend of an INIT whose session the client declined. */
function declinedResend(state: ResponderPeerState, init: Uint8Array): boolean {
  return state.declined === true && bytesEqual(state.init, init);
}

async function retransmitted(state: ResponderPeerState): Promise<HandshakeResponse | undefined> {
  const accepted = await state.result;
  // A session the client has since closed is not handed out again: the initiator must start a
  // new handshake (with a newer timestamp).
  if (accepted === undefined || accepted.session.closed) return undefined;
  return { ...accepted, isNew: false };
}

interface SessionKeys {
  /** Raw AES-256-GCM key, initiator to responder. */
  initiatorToResponder: Uint8Array;
  /** Raw AES-256-GCM key, responder to initiator. */
  responderToInitiator: Uint8Array;
}

// Synchronous node:crypto throughout (X25519, SHA-256, HKDF): WebCrypto runs digest and HKDF on a
// host thread pool, which virtual time cannot control; this way a handshake is microtask-only.
function generateEphemeral(): { privateKey: KeyObject; publicKey: Uint8Array } {
  // The private key is never exported: it dies with its reference.
  const pair = generateKeyPairSync("x25519");
  const jwk = pair.publicKey.export({ format: "jwk" });
  const publicKey = Uint8Array.fromBase64(jwk.x as string, { alphabet: "base64url" });
  return { privateKey: pair.privateKey, publicKey };
}

function x25519(
  privateKey: KeyObject,
  remotePublic: Uint8Array,
): Uint8Array<ArrayBuffer> | undefined {
  try {
    if (remotePublic.length !== 32) return undefined;
    const key = createPublicKey({
      key: {
        kty: "OKP",
        crv: "X25519",
        x: remotePublic.toBase64({ alphabet: "base64url", omitPadding: true }),
      },
      format: "jwk",
    });
    const secret = new Uint8Array(diffieHellman({ privateKey, publicKey: key }));
    // A low-order public key gives the all-zero secret: refuse it (RFC 7748, section 6.1).
    return secret.some((byte) => byte !== 0) ? secret : undefined;
  } catch {
    return undefined;
  }
}

function deriveSessionKeys(
  privateKey: KeyObject,
  remotePublic: Uint8Array,
  init: Uint8Array,
  response: Uint8Array,
): SessionKeys | undefined {
  const secret = x25519(privateKey, remotePublic);
  return secret && keysFromSecret(secret, init, response);
}

function keysFromSecret(
  secret: Uint8Array<ArrayBuffer>,
  init: Uint8Array,
  response: Uint8Array,
): SessionKeys {
  const salt = createHash("sha256").update(concat(init, response)).digest();
  const okm = new Uint8Array(hkdfSync("sha256", secret, salt, KEY_INFO, 64));
  secret.fill(0);
  const initiatorToResponder = okm.slice(0, 32);
  const responderToInitiator = okm.slice(32, 64);
  okm.fill(0);
  return { initiatorToResponder, responderToInitiator };
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}
