/**
 * Every datagram (from the UDP socket or out of a relay frame) is classified once, here, into a
 * typed packet with the fields its routing needs; the rest of the client never looks at raw
 * first bytes again.
 *
 * @module
 */
import type { PeerId } from "../shared/identity/peer_id.ts";
import {
  classifyDatagram,
  decodePunch,
  handshakeInitSenderId,
  handshakeResponseReceiverIndex,
  MAX_LARGE_PEER_PACKET_BYTES,
  PeerPacketType,
  transportReceiverIndex,
} from "../shared/peer/packet.ts";

/** A classified packet. */
export type InboundPacket =
  | { kind: "stun"; bytes: Uint8Array }
  | { kind: "punch"; from: PeerId; to: PeerId }
  | { kind: "handshake-init"; bytes: Uint8Array; sender: PeerId }
  | { kind: "handshake-response"; bytes: Uint8Array; receiverIndex: number }
  | { kind: "transport"; bytes: Uint8Array; receiverIndex: number };

/**
 * Classifies one datagram; undefined for anything malformed or unknown (drop it).
 *
 * @example
 * ```ts
 * import { encodePunch } from "../shared/peer/packet.ts";
 * classifyPacket(encodePunch("aa".repeat(20), "bb".repeat(20)))?.kind; // "punch"
 * classifyPacket(new Uint8Array([0x42])); // undefined
 * ```
 */
export function classifyPacket(bytes: Uint8Array): InboundPacket | undefined {
  const type = classifyDatagram(bytes);
  if (type === undefined) return undefined;
  if (type === "stun") return { kind: "stun", bytes };
  if (bytes.length > MAX_LARGE_PEER_PACKET_BYTES) return undefined;
  switch (type) {
    case PeerPacketType.Punch: {
      try {
        const punch = decodePunch(bytes);
        return { kind: "punch", from: punch.from, to: punch.to };
      } catch {
        return undefined;
      }
    }
    case PeerPacketType.HandshakeInit: {
      const sender = handshakeInitSenderId(bytes);
      return sender === undefined ? undefined : { kind: "handshake-init", bytes, sender };
    }
    case PeerPacketType.HandshakeResponse: {
      const receiverIndex = handshakeResponseReceiverIndex(bytes);
      return receiverIndex === undefined
        ? undefined
        : { kind: "handshake-response", bytes, receiverIndex };
    }
    case PeerPacketType.Transport:
    case PeerPacketType.TransportLarge: {
      const receiverIndex = transportReceiverIndex(bytes);
      return receiverIndex === undefined ? undefined : { kind: "transport", bytes, receiverIndex };
    }
    default:
      return undefined;
  }
}
