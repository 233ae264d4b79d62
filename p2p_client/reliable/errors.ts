/**
 * Typed errors of the reliable message channel.
 *
 * @module
 */

/**
 * The channel is closed (by {@linkcode ReliableChannel.close} or after a failure): it takes no
 * more messages.
 *
 * @example
 * ```ts
 * import { ChannelClosedError, type ReliableChannel } from "./mod.ts";
 * declare const channel: ReliableChannel;
 * declare const bytes: Uint8Array;
 * try {
 *   channel.sendMessage(bytes);
 * } catch (error) {
 *   if (error instanceof ChannelClosedError) console.log("reconnect first");
 * }
 * ```
 */
export class ChannelClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why the channel is closed.
   */
  constructor(message = "channel is closed") {
    super(message);
    this.name = "ChannelClosedError";
  }
}

/**
 * The peer acknowledged nothing for the channel's failure timeout while data was outstanding.
 *
 * @example
 * ```ts
 * import { PeerUnreachableError, ReliableChannel, type ReliableChannelOptions } from "./mod.ts";
 * declare const options: ReliableChannelOptions;
 * new ReliableChannel({ ...options, onFailure: (error, ids) => {
 *   if (error instanceof PeerUnreachableError) console.log(`lost contact; ${ids.length} undelivered`);
 * } });
 * ```
 */
export class PeerUnreachableError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was observed.
   */
  constructor(message: string) {
    super(message);
    this.name = "PeerUnreachableError";
  }
}

/**
 * The send queue is full (too many messages or bytes not yet acknowledged): try again later.
 *
 * @example
 * ```ts
 * import { type ReliableChannel, SendQueueFullError } from "./mod.ts";
 * declare const channel: ReliableChannel;
 * declare const bytes: Uint8Array;
 * try {
 *   channel.sendMessage(bytes);
 * } catch (error) {
 *   if (error instanceof SendQueueFullError) console.log("slow down");
 * }
 * ```
 */
export class SendQueueFullError extends Error {
  /**
   * Creates the error.
   *
   * @param message Which limit was hit.
   */
  constructor(message: string) {
    super(message);
    this.name = "SendQueueFullError";
  }
}

/**
 * A message larger than the channel's `maxMessageBytes`.
 *
 * @example
 * ```ts
 * import { MessageTooLargeError, type ReliableChannel } from "./mod.ts";
 * declare const channel: ReliableChannel;
 * try {
 *   channel.sendMessage(new Uint8Array(2 << 20));
 * } catch (error) {
 *   if (error instanceof MessageTooLargeError) console.log(error.message);
 * }
 * ```
 */
export class MessageTooLargeError extends RangeError {
  /**
   * Creates the error.
   *
   * @param message The size and the limit.
   */
  constructor(message: string) {
    super(message);
    this.name = "MessageTooLargeError";
  }
}

/**
 * The (authenticated) peer broke the channel protocol: an acknowledgement of data never sent, a
 * fragment sequence that does not form messages, a message above our limit. The channel fails.
 *
 * @example
 * ```ts
 * import { ChannelProtocolError, ReliableChannel, type ReliableChannelOptions } from "./mod.ts";
 * declare const options: ReliableChannelOptions;
 * new ReliableChannel({ ...options, onFailure: (error) => {
 *   if (error instanceof ChannelProtocolError) console.log(`peer bug: ${error.message}`);
 * } });
 * ```
 */
export class ChannelProtocolError extends Error {
  /**
   * Creates the error.
   *
   * @param message What the peer did wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "ChannelProtocolError";
  }
}
