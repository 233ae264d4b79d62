/**
 * Peer packets: the datagrams two clients exchange directly over UDP or inside relay frames.
 *
 * Every peer packet starts with a type byte whose top two bits are `11`, so peer packets and
 * STUN messages (top two bits `00`) share one UDP socket. Every packet is at most
 * {@linkcode MAX_PEER_PACKET_BYTES} bytes, except TRANSPORT_LARGE (0xE5), which a client sends only
 * to a peer that has shown it reads that type and on a path probed large enough (RFC 8899). The
 * byte layouts are in `docs/protocol.md`, section 3.
 *
 * @module
 */
import { PEER_ID_BYTES, type PeerId } from "../identity/peer_id.ts";
import { readU32 } from "./bytes.ts";
import { PeerPacketError } from "./errors.ts";

/** Type bytes of peer packets. */
export const PeerPacketType = {
  /** Unauthenticated NAT-opening hint: sender ID and target ID. */
  Punch: 0xe1,
  /** First handshake message, initiator to responder. */
  HandshakeInit: 0xe2,
  /** Second handshake message, responder to initiator. */
  HandshakeResponse: 0xe3,
  /** Encrypted, authenticated payload of an established session (AES-256-GCM, ≤ 1200 bytes). */
  Transport: 0xe4,
  /**
   * The same, sealed with ChaCha20-Poly1305 and up to {@linkcode MAX_LARGE_PEER_PACKET_BYTES}
   * bytes: sent once the peer has shown it reads this type (see `session.ts`).
   */
  TransportLarge: 0xe5,
} as const;

/** One of the {@linkcode PeerPacketType} values. */
export type PeerPacketType = typeof PeerPacketType[keyof typeof PeerPacketType];

/** Largest peer packet, in bytes: a payload that fits any sane path MTU without fragmentation. */
export const MAX_PEER_PACKET_BYTES: number = 1200;

/**
 * Largest TRANSPORT_LARGE (0xE5) packet: the largest UDP payload over IPv4 (65,535 − 20 − 8).
 * Only sent on a path whose packetization-layer MTU was probed that large (RFC 8899).
 */
export const MAX_LARGE_PEER_PACKET_BYTES: number = 65_507;

/** Size of a PUNCH packet: type, sender ID, target ID. */
export const PUNCH_BYTES: number = 1 + PEER_ID_BYTES + PEER_ID_BYTES;

/**
 * Size of a HANDSHAKE_INIT packet: type u8, sender index u32, sender ID (20), receiver ID (20),
 * timestamp u64, ephemeral X25519 key (32), Ed25519 signature (64).
 */
export const HANDSHAKE_INIT_BYTES: number = 1 + 4 + PEER_ID_BYTES + PEER_ID_BYTES + 8 + 32 + 64;

/**
 * Size of a HANDSHAKE_RESPONSE packet: type u8, sender index u32, receiver index u32,
 * ephemeral X25519 key (32), Ed25519 signature (64).
 */
export const HANDSHAKE_RESPONSE_BYTES: number = 1 + 4 + 4 + 32 + 64;

/** Size of a TRANSPORT header: type u8, receiver index u32, counter u64. */
export const TRANSPORT_HEADER_BYTES: number = 1 + 4 + 8;

/** Size of the AES-GCM authentication tag that ends every TRANSPORT packet. */
export const TRANSPORT_TAG_BYTES: number = 16;

/** Smallest TRANSPORT packet: header and tag around an empty plaintext. */
export const MIN_TRANSPORT_BYTES: number = TRANSPORT_HEADER_BYTES + TRANSPORT_TAG_BYTES;

/** Largest plaintext a TRANSPORT packet can carry within {@linkcode MAX_PEER_PACKET_BYTES}. */
export const MAX_TRANSPORT_PLAINTEXT_BYTES: number = MAX_PEER_PACKET_BYTES - MIN_TRANSPORT_BYTES;

/** Largest plaintext a TRANSPORT_LARGE packet can carry. */
export const MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES: number = MAX_LARGE_PEER_PACKET_BYTES -
  MIN_TRANSPORT_BYTES;

/** A decoded PUNCH packet. */
export interface PunchPacket {
  /** The peer that sent the punch. */
  from: PeerId;
  /** The peer the punch is meant for. */
  to: PeerId;
}

/**
 * Tells what a datagram received on the shared UDP socket is, from its first byte and length
 * only (no parsing, no allocation). Peer packets of the wrong size and anything else unknown
 * give `undefined`: drop them.
 *
 * @example
 * ```ts
 * const kind = classifyDatagram(new Uint8Array(41).fill(0xe1, 0, 1));
 * console.log(kind === PeerPacketType.Punch); // true
 * ```
 */
export function classifyDatagram(bytes: Uint8Array): "stun" | PeerPacketType | undefined {
  const length = bytes.length;
  if (length === 0) return undefined;
  const first = bytes[0];
  if ((first & 0xc0) === 0) return length >= 20 ? "stun" : undefined;
  switch (first) {
    case PeerPacketType.Punch:
      return length === PUNCH_BYTES ? PeerPacketType.Punch : undefined;
    case PeerPacketType.HandshakeInit:
      return length === HANDSHAKE_INIT_BYTES ? PeerPacketType.HandshakeInit : undefined;
    case PeerPacketType.HandshakeResponse:
      return length === HANDSHAKE_RESPONSE_BYTES ? PeerPacketType.HandshakeResponse : undefined;
    case PeerPacketType.Transport:
      return length >= MIN_TRANSPORT_BYTES && length <= MAX_PEER_PACKET_BYTES
        ? PeerPacketType.Transport
        : undefined;
    case PeerPacketType.TransportLarge:
      return length >= MIN_TRANSPORT_BYTES && length <= MAX_LARGE_PEER_PACKET_BYTES
        ? PeerPacketType.TransportLarge
        : undefined;
    default:
      return undefined;
  }
}

/**
 * Converts a peer ID (40 hex digits) to its 20 raw bytes.
 *
 * @example
 * ```ts
 * console.log(peerIdToBytes("00".repeat(20)).length); // 20
 * ```
 */
export function peerIdToBytes(id: PeerId): Uint8Array {
  if (!/^[0-9a-f]{40}$/.test(id)) throw new PeerPacketError(`not a peer ID: ${JSON.stringify(id)}`);
  return Uint8Array.fromHex(id);
}

/**
 * Encodes a PUNCH packet: a NAT-opening hint that carries no secret and proves nothing. The
 * receiver may use it only as a hint that `from` is trying to reach it.
 *
 * @example
 * ```ts
 * const packet = encodePunch("aa".repeat(20), "bb".repeat(20));
 * console.log(packet.length); // 41
 * ```
 */
export function encodePunch(from: PeerId, to: PeerId): Uint8Array {
  const packet = new Uint8Array(PUNCH_BYTES);
  packet[0] = PeerPacketType.Punch;
  packet.set(peerIdToBytes(from), 1);
  packet.set(peerIdToBytes(to), 1 + PEER_ID_BYTES);
  return packet;
}

/**
 * Decodes a PUNCH packet. Throws {@linkcode PeerPacketError} when it is not one.
 *
 * @example
 * ```ts
 * const { from, to } = decodePunch(encodePunch("aa".repeat(20), "bb".repeat(20)));
 * console.log(from, to);
 * ```
 */
export function decodePunch(bytes: Uint8Array): PunchPacket {
  if (bytes.length !== PUNCH_BYTES || bytes[0] !== PeerPacketType.Punch) {
    throw new PeerPacketError(`not a PUNCH packet (${bytes.length} bytes)`);
  }
  return {
    from: bytes.subarray(1, 1 + PEER_ID_BYTES).toHex(),
    to: bytes.subarray(1 + PEER_ID_BYTES, PUNCH_BYTES).toHex(),
  };
}

/**
 * The receiver index of a TRANSPORT or TRANSPORT_LARGE packet (the session the receiver allocated it for), or
 * `undefined` when the bytes are not a well-sized TRANSPORT packet. Use it to find the
 * {@linkcode SecureSession} that must open the packet.
 *
 * @example
 * ```ts
 * const index = transportReceiverIndex(packet);
 * const session = index === undefined ? undefined : sessionsByIndex.get(index);
 * ```
 */
export function transportReceiverIndex(bytes: Uint8Array): number | undefined {
  const kind = classifyDatagram(bytes);
  if (kind !== PeerPacketType.Transport && kind !== PeerPacketType.TransportLarge) return undefined;
  return readU32(bytes, 1);
}

/**
 * The receiver index of a HANDSHAKE_RESPONSE packet (the initiator's `localIndex`), or
 * `undefined` when the bytes are not a well-sized response. Use it to find the pending
 * {@linkcode HandshakeInitiator}.
 *
 * @example
 * ```ts
 * const index = handshakeResponseReceiverIndex(packet);
 * const pending = index === undefined ? undefined : initiatorsByIndex.get(index);
 * ```
 */
export function handshakeResponseReceiverIndex(bytes: Uint8Array): number | undefined {
  if (classifyDatagram(bytes) !== PeerPacketType.HandshakeResponse) return undefined;
  return readU32(bytes, 5);
}

/**
 * The sender's peer ID in a HANDSHAKE_INIT packet (not yet authenticated), or `undefined` when
 * the bytes are not a well-sized INIT.
 *
 * @example
 * ```ts
 * const claimed = handshakeInitSenderId(packet);
 * ```
 */
export function handshakeInitSenderId(bytes: Uint8Array): PeerId | undefined {
  if (classifyDatagram(bytes) !== PeerPacketType.HandshakeInit) return undefined;
  return bytes.subarray(5, 5 + PEER_ID_BYTES).toHex();
}
