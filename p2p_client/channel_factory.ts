/**
 * Plugs the reliability layer (`p2p_client/reliable/`) into peer links as their
 * {@linkcode MessageChannel}.
 *
 * @module
 */
import type { AckFrame, DataFrame } from "../shared/peer/frames.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, ReliableChannel } from "./reliable/reliable_channel.ts";
import { ENVELOPE_BYTES } from "./outbox.ts";
import type { MessageChannel, MessageChannelFactory } from "./link_frames.ts";
import type { Runtime } from "../shared/runtime/mod.ts";

/** Upper bound of the channel's retransmission timeout, ms. */
export const CHANNEL_MAX_RTO_MS = 2000;

/**
 * A factory of reliable channels on the runtime's clock, each with a random stream ID.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../shared/runtime/mod.ts";
 * const factory = createChannelFactory(systemRuntime);
 * const channel = factory({
 *   send: () => {},
 *   deliver: () => {},
 *   onAcknowledged: () => {},
 *   onFailure: () => {},
 * });
 * channel.close(new Error("example over"));
 * ```
 */
export function createChannelFactory(runtime: Runtime): MessageChannelFactory {
  const now = () => runtime.now();
  return (hooks): MessageChannel => {
    const random = runtime.randomBytes(4);
    const channel = new ReliableChannel({
      now,
      // A 1 MiB message plus its envelope (the wire message ID).
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES + ENVELOPE_BYTES,
      // At most 2 s between retransmissions (15 attempts before a message's 30 s deadline): with
      // 25 % loss at each NAT (44 % end to end) a 5 s cap left one direction at one fragment per
      // 5 s, and messages unacknowledged at their deadline (NAT lab, virtual 44 % loss tests).
      maxRtoMs: CHANNEL_MAX_RTO_MS,
      streamId: new DataView(random.buffer, random.byteOffset, 4).getUint32(0),
      send: hooks.send,
      ...(hooks.sendParts ? { sendParts: hooks.sendParts } : {}),
      deliver: hooks.deliver,
      // Packets are opened in place in buffers of their own (never reused), so a one-fragment
      // message (a file chunk) is handed over as a view, not copied again (issue 14).
      deliverViews: true,
      // File data in flight: 4 MiB is far above loopback's bandwidth-delay product and halves
      // what a sender holds (issue 14: memory bounded per side).
      maxBulkBytes: 4 << 20,
      onAcknowledged: hooks.onAcknowledged,
      onFailure: hooks.onFailure,
    });
    return {
      sendMessage: (message, priority) => channel.sendMessage(message, priority),
      hasRoomFor: (length, priority) => channel.hasRoomFor(length, priority),
      setMaxFrameBytes: (frameBytes) => channel.setMaxFrameBytes(frameBytes),
      setDatagramPath: (datagram) => channel.setDatagramPath(datagram),
      setPeerReceiveBuffer: (bytes) => channel.setReceiveBufferBytes(bytes),
      wasSent: (id) => channel.wasSent(id),
      cancel: (id) => channel.cancel(id),
      receive: (frame) => channel.receive(frame as DataFrame | AckFrame),
      tick: () => channel.tick(),
      nextDeadline: () => channel.nextDeadline() ?? Infinity,
      get srttMs() {
        return channel.stats.srtt;
      },
      pathChanged: () => channel.pathChanged(),
      close: (reason) => {
        channel.close(reason);
      },
    };
  };
}
