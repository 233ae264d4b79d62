/**
 * The {@linkcode LinkFrameCodec} over `shared/peer/frames.ts`: PATH_PROBE, PATH_RESPONSE and CLOSE
 * are handled by the link; DATA and ACK go to the reliable channel as decoded frames.
 *
 * @module
 */
import {
  decodeFrame,
  encodeFrame,
  FrameType,
  MAX_CANDIDATE_ADDRESSES,
  ParameterKey,
} from "../shared/peer/frames.ts";
import type { LinkFrame, LinkFrameCodec } from "./link_frames.ts";
import { probeIdOf } from "./pmtu/prober.ts";

/**
 * The frame codec of peer links.
 *
 * @example
 * ```ts
 * const bytes = linkFrameCodec.encodePathProbe(new Uint8Array(8));
 * console.log(linkFrameCodec.decode(bytes)?.kind); // "path-probe"
 * ```
 */
export const linkFrameCodec: LinkFrameCodec = {
  encodePathProbe: (nonce) => encodeFrame({ type: FrameType.PathProbe, nonce }),
  encodePathResponse: (nonce) => encodeFrame({ type: FrameType.PathResponse, nonce }),
  encodeClose: () => encodeFrame({ type: FrameType.Close, reason: "bye" }),
  encodeCandidates: (addresses) =>
    encodeFrame({
      type: FrameType.Candidates,
      addresses: addresses.slice(0, MAX_CANDIDATE_ADDRESSES),
    }),
  encodeRelayAddresses: (addresses) =>
    encodeFrame({
      type: FrameType.RelayAddresses,
      addresses: addresses.slice(0, MAX_CANDIDATE_ADDRESSES),
    }),
  encodeTraversal: (body) => encodeFrame({ type: FrameType.Traversal, body }),
  encodeParameters: ({ udpReceiveBuffer }) =>
    encodeFrame({
      type: FrameType.Parameters,
      parameters: [{ key: ParameterKey.UdpReceiveBuffer, value: udpReceiveBuffer }],
    }),
  decode(bytes: Uint8Array): LinkFrame | undefined {
    let frame;
    try {
      frame = decodeFrame(bytes);
    } catch {
      return undefined;
    }
    switch (frame.type) {
      case FrameType.PathProbe:
        return { kind: "path-probe", nonce: frame.nonce };
      case FrameType.PathResponse:
        return { kind: "path-response", nonce: frame.nonce };
      case FrameType.Close:
        return { kind: "close" };
      case FrameType.Candidates:
        return { kind: "candidates", addresses: frame.addresses };
      case FrameType.RelayAddresses:
        return { kind: "relay-addresses", addresses: frame.addresses };
      case FrameType.PmtuProbe:
        return { kind: "pmtu-probe", frame };
      case FrameType.PmtuAck:
        return { kind: "pmtu-ack", id: probeIdOf(frame) };
      case FrameType.Traversal:
        return { kind: "traversal", body: frame.body };
      case FrameType.Parameters:
        return {
          kind: "parameters",
          udpReceiveBuffer: frame.parameters.find((p) => p.key === ParameterKey.UdpReceiveBuffer)
            ?.value,
        };
      default:
        return { kind: "channel", frame };
    }
  },
};
