/**
 * Plugs the reliability layer (`p2p_client/reliable/`) into peer links as their
 * {@linkcode MessageChannel}.
 *
 * @module
 */
import type { AckFrame, DataFrame } from "../shared/peer/frames.ts";
import { ReliableChannel } from "./reliable/reliable_channel.ts";
import type { MessageChannel, MessageChannelFactory } from "./link_frames.ts";

/**
 * A factory of reliable channels on clock `now`.
 *
 * @example
 * ```ts
 * const factory = createChannelFactory(Date.now);
 * const channel = factory({
 *   send: () => {},
 *   deliver: () => {},
 *   onAcknowledged: () => {},
 *   onFailure: () => {},
 * });
 * channel.close(new Error("example over"));
 * ```
 */
export function createChannelFactory(now: () => number): MessageChannelFactory {
  return (hooks): MessageChannel => {
    const channel = new ReliableChannel({
      now,
      send: hooks.send,
      deliver: hooks.deliver,
      onAcknowledged: hooks.onAcknowledged,
      onFailure: hooks.onFailure,
    });
    return {
      sendMessage: (message) => channel.sendMessage(message),
      hasRoomFor: (length) => channel.hasRoomFor(length),
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
