/**
 * The outbox of one peer: it owns our queued messages, their IDs and their outcomes, and the
 * reliable channel that carries them (replaced, never dead-ended, after a failure).
 *
 * Every message ends with exactly one outcome, by its deadline (`deliveryTimeoutMs` after it was
 * queued, 30 s by default):
 * - `delivered`: the peer acknowledged it (it has it);
 * - `failed`: not one byte of it ever left this client (no path, no session, refused): the peer
 *   certainly does not have it, and sending it again cannot make a duplicate;
 * - `unconfirmed`: it was sent but not acknowledged in time: the peer may have it or not.
 *
 * Each message travels with a random 64-bit ID (`uid`, an envelope of 8 bytes before the text),
 * so it can be sent again after a channel failure, a re-handshake or a restart: the receiver
 * keeps a window of recently received IDs ({@linkcode ReceivedWindow}) and drops duplicates.
 * A channel that fails (30 s without progress) hands its unacknowledged messages back to the
 * queue, in order, and the peer link re-handshakes: both sides then start fresh channels on the
 * new session.
 *
 * @module
 */
import type { MessageChannel, MessageChannelFactory } from "./link_frames.ts";
import { RingBuffer } from "./reliable/ring_buffer.ts";

/** The outcome of a message. */
export type MessageOutcome = "delivered" | "failed" | "unconfirmed";

/** A message waiting in an outbox (also the form persisted across restarts). */
export interface OutboxMessage {
  /** Our message ID (as reported in `sent`). */
  id: number;
  /** The random wire ID, 16 hex digits. */
  uid: string;
  /** The message bytes (UTF-8 text). */
  bytes: Uint8Array;
  /** Deadline on the runtime's clock. */
  deadline: number;
  /** Whether any of it may have left this client. */
  sent: boolean;
}

/** Hooks and settings of an {@linkcode Outbox}. */
export interface OutboxOptions {
  /** The runtime's clock. */
  now: () => number;
  /** Makes a reliable channel whose frames go to the peer. */
  createChannel: MessageChannelFactory;
  /** Sends an encoded channel frame over the current path. */
  sendFrame: (frame: Uint8Array) => void;
  /** A complete message from the peer (envelope removed); `uid` for duplicate checks. */
  deliver: (uid: string, bytes: Uint8Array) => void;
  /** A message's one outcome (`code` names why a message failed, when known). */
  onOutcome: (id: number, outcome: MessageOutcome, reason: string, code?: string) => void;
  /** The channel failed: the caller re-handshakes, then calls `resetChannel`. */
  onChannelFailed: (reason: string) => void;
  /** Sends a DATA frame as its header and payload view (sealed without joining them). */
  sendFrameParts?: (head: Uint8Array, payload: Uint8Array) => void;
  /** A file message from the peer (`shared/files/codec.ts`), wire ID removed. */
  onFileMessage?: (bytes: Uint8Array) => void;
  /** The channel acknowledged something: bulk file data may have room again. */
  onFileRoom?: () => void;
  /**
   * A file message sent as its own envelope (`sendFile(wire, "bulk", true)`) was acknowledged:
   * the channel no longer refers to its bytes, so a pooled buffer may be reused.
   */
  onFileReleased?: (wire: Uint8Array) => void;
  /** The channel was replaced: file messages in it are lost (the transfers offer again). */
  onFileReset?: () => void;
  /** The set of queued messages changed (for persistence). */
  onChange?: () => void;
  /** Most queued messages (default 100,000). */
  maxMessages?: number;
  /** Most queued bytes (default 256 MiB). */
  maxBytes?: number;
}

const UID_BYTES = 8;

/**
 * The wire ID of file messages: all zeros, never drawn for a text (see `PeerLink.send`). File
 * messages are not deduplicated by ID: the transfer protocol tolerates repeats.
 */
export const FILE_MESSAGE_UID = "0000000000000000";

/** Most `normal` file messages held while the peer has no path. */
const MAX_HELD_FILE_MESSAGES = 1024;

/** Bytes the envelope (the wire message ID) adds to each message. */
export const ENVELOPE_BYTES: number = UID_BYTES;

/**
 * Prefixes `bytes` with the 8-byte wire ID `uid`.
 *
 * @example
 * ```ts
 * encodeEnvelope("0102030405060708", new Uint8Array([9])).length; // 9
 * ```
 */
export function encodeEnvelope(uid: string, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(UID_BYTES + bytes.length);
  out.set(Uint8Array.fromHex(uid), 0);
  out.set(bytes, UID_BYTES);
  return out;
}

/**
 * Splits a received message into its wire ID and its bytes; undefined when too short.
 *
 * @example
 * ```ts
 * decodeEnvelope(encodeEnvelope("0102030405060708", new Uint8Array([9])))?.uid; // "0102030405060708"
 * ```
 */
export function decodeEnvelope(
  message: Uint8Array,
): { uid: string; bytes: Uint8Array } | undefined {
  if (message.length < UID_BYTES) return undefined;
  return { uid: message.subarray(0, UID_BYTES).toHex(), bytes: message.subarray(UID_BYTES) };
}

/**
 * One peer's queued messages and their channel.
 *
 * @example
 * ```ts
 * // const outbox = new Outbox({ now, createChannel, sendFrame, deliver, onOutcome, onChannelFailed });
 * // outbox.enqueue({ id: 1, uid, bytes, deadline: now() + 30_000, sent: false });
 * // outbox.setReady(true); // a session and a path exist: messages go out
 * ```
 */
export class Outbox {
  readonly #options: OutboxOptions;
  /** Messages not handed to the channel yet, in order. */
  readonly #queue = new RingBuffer<OutboxMessage>();
  #queuedBytes = 0;
  /** Channel message ID → message, in order. */
  #inChannel = new Map<number, OutboxMessage>();
  #channel: MessageChannel | undefined;
  /** After a channel failure no channel is made until the next session (`resetChannel`). */
  #blocked = false;
  #ready = false;
  /** `normal` file messages waiting for a path. */
  #fileHeld: Uint8Array[] = [];
  /** Enveloped bulk file messages in the channel, by channel ID (released when acknowledged). */
  #fileLent = new Map<number, Uint8Array>();
  #maxFrameBytes: number | undefined;
  #datagramPath: boolean | undefined;
  /** The peer's UDP receive buffer, from its PARAMETERS frame in this session. */
  #peerReceiveBuffer: number | undefined;

  /**
   * Creates an empty outbox.
   *
   * @param options Hooks and limits.
   */
  constructor(options: OutboxOptions) {
    this.#options = options;
  }

  /** Messages without an outcome yet. */
  get pending(): number {
    return this.#queue.length + this.#inChannel.size;
  }

  /** The channel's smoothed RTT, when measured. */
  get srttMs(): number | undefined {
    return this.#channel?.srttMs;
  }

  /** Messages without an outcome, in order, the newest `limit` of them (for persistence). */
  messages(limit = Infinity): OutboxMessage[] {
    const out: OutboxMessage[] = [];
    // The newest `limit` only: the queue's tail, then (if room is left) the channel's.
    for (let i = this.#queue.length - 1; i >= 0 && out.length < limit; i--) {
      out.push(this.#queue.at(i)!);
    }
    const inChannel = [...this.#inChannel];
    for (let i = inChannel.length - 1; i >= 0 && out.length < limit; i--) {
      const [channelId, message] = inChannel[i];
      const sent = message.sent || (this.#channel?.wasSent(channelId) ?? true);
      out.push({ ...message, sent });
    }
    return out.reverse();
  }

  /**
   * Queues a message. Returns false (and reports `failed`) when the outbox is full.
   *
   * @example
   * ```ts
   * // outbox.enqueue({ id, uid, bytes, deadline, sent: false });
   * ```
   */
  enqueue(message: OutboxMessage): boolean {
    const maxMessages = this.#options.maxMessages ?? 100_000;
    const maxBytes = this.#options.maxBytes ?? 256 << 20;
    if (this.#queue.length >= maxMessages || this.#queuedBytes + message.bytes.length > maxBytes) {
      this.#options.onOutcome(
        message.id,
        "failed",
        `${this.#queue.length} messages (${this.#queuedBytes} bytes) already wait`,
        "queue-full",
      );
      return false;
    }
    this.#queue.push(message);
    this.#queuedBytes += message.bytes.length;
    this.#options.onChange?.();
    this.#flush();
    return true;
  }

  /**
   * Sends a file message on the channel: `bulk` ones only when there is room now (false: call
   * again after `onFileRoom`), `normal` ones held while the peer has no path.
   *
   * @example
   * ```ts
   * // outbox.sendFile(encodeFileMessage(offer), "normal");
   * ```
   */
  sendFile(bytes: Uint8Array, priority: "normal" | "bulk", enveloped = false): boolean {
    // `enveloped`: the bytes already start with the file messages' wire ID (no copy per chunk).
    const wire = enveloped ? bytes : encodeEnvelope(FILE_MESSAGE_UID, bytes);
    const channel = this.#ready ? this.#ensureChannel() : undefined;
    if (channel && this.#fileHeld.length === 0 && channel.hasRoomFor(wire.length, priority)) {
      try {
        const id = channel.sendMessage(wire, priority);
        if (enveloped && priority === "bulk") this.#fileLent.set(id, wire);
        return true;
      } catch {
        // full or closed: as below
      }
    }
    if (priority === "bulk") return false;
    if (this.#fileHeld.length >= MAX_HELD_FILE_MESSAGES) this.#fileHeld.shift();
    this.#fileHeld.push(wire);
    return true;
  }

  /**
   * The largest DATA frame the channel may cut (the path's probed size minus 29).
   *
   * @example
   * ```ts
   * // outbox.setMaxFrameBytes(prober.size - 29);
   * ```
   */
  setMaxFrameBytes(frameBytes: number): void {
    this.#maxFrameBytes = frameBytes;
    this.#channel?.setMaxFrameBytes?.(frameBytes);
  }

  /**
   * Whether the channel's frames now go over a lossy datagram path (direct UDP) or the relay.
   *
   * @example
   * ```ts
   * // outbox.setDatagramPath(route.udp !== undefined && !route.relay);
   * ```
   */
  setDatagramPath(datagram: boolean): void {
    this.#datagramPath = datagram;
    this.#channel?.setDatagramPath?.(datagram);
  }

  /**
   * The peer's UDP receive buffer (its PARAMETERS frame): kept for this session's channels.
   *
   * @example
   * ```ts
   * // outbox.setPeerReceiveBuffer(425_984);
   * ```
   */
  setPeerReceiveBuffer(bytes: number): void {
    this.#peerReceiveBuffer = bytes;
    this.#channel?.setPeerReceiveBuffer?.(bytes);
  }

  /**
   * Whether messages may go out (a session and a path exist). Going ready flushes the queue.
   *
   * @example
   * ```ts
   * // outbox.setReady(true);
   * ```
   */
  setReady(ready: boolean): void {
    this.#ready = ready;
    if (ready) this.#flush();
  }

  /**
   * A channel frame from the peer (DATA or ACK).
   *
   * @example
   * ```ts
   * // outbox.receiveFrame(frame);
   * ```
   */
  receiveFrame(frame: unknown): void {
    const channel = this.#ensureChannel();
    if (!channel) return;
    channel.receive(frame);
    this.#flush();
  }

  /**
   * A new session with the peer: the old channel's unacknowledged messages go back to the front
   * of the queue (to be sent again; the receiver drops duplicates) and a fresh channel starts.
   *
   * @example
   * ```ts
   * // outbox.resetChannel("new session");
   * ```
   */
  resetChannel(reason: string): void {
    const channel = this.#channel;
    this.#channel = undefined;
    this.#blocked = false;
    // A new session may be a restarted peer with another buffer: it says so again.
    this.#peerReceiveBuffer = undefined;
    if (channel) {
      const inChannel = this.#inChannel;
      this.#inChannel = new Map();
      for (const [channelId, message] of inChannel) {
        if (channel.wasSent(channelId)) message.sent = true;
      }
      this.#requeue([...inChannel.values()]);
      channel.close(new Error(reason));
      this.#fileHeld = [];
      this.#fileLent = new Map(); // the old channel may still refer to them: left to the GC
      this.#options.onFileReset?.();
    }
    this.#flush();
  }

  /** Puts a closed channel's messages back at the front of the queue, in order. */
  #requeue(back: OutboxMessage[]): void {
    for (let i = back.length - 1; i >= 0; i--) {
      this.#queue.unshift(back[i]);
      this.#queuedBytes += back[i].bytes.length;
    }
  }

  /**
   * Runs the channel's timers and the messages' deadlines.
   *
   * @example
   * ```ts
   * // outbox.tick();
   * ```
   */
  tick(): void {
    this.#channel?.tick();
    this.#expire();
    this.#flush();
  }

  /** When {@linkcode Outbox.tick} next has work (runtime ms), or `Infinity`. */
  nextDeadline(): number {
    let at = this.#channel?.nextDeadline() ?? Infinity;
    const head = this.#queue.at(0);
    if (head) at = Math.min(at, head.deadline);
    for (const message of this.#inChannel.values()) {
      at = Math.min(at, message.deadline);
      break;
    }
    return at;
  }

  /**
   * Later frames go over another path: the channel restarts its RTT estimate and resends.
   *
   * @example
   * ```ts
   * // outbox.pathChanged();
   * ```
   */
  pathChanged(): void {
    this.#channel?.pathChanged();
  }

  /**
   * Ends every message now (`failed` if it never left, `unconfirmed` otherwise) and closes the
   * channel.
   *
   * @example
   * ```ts
   * // outbox.close("client exiting before delivery");
   * ```
   */
  close(reason: string): void {
    const channel = this.#channel;
    this.#channel = undefined;
    const inChannel = this.#inChannel;
    this.#inChannel = new Map();
    for (const [channelId, message] of inChannel) {
      const sent = message.sent || (channel?.wasSent(channelId) ?? true);
      this.#options.onOutcome(message.id, sent ? "unconfirmed" : "failed", reason);
    }
    while (this.#queue.length > 0) {
      const message = this.#queue.shift()!;
      this.#options.onOutcome(message.id, message.sent ? "unconfirmed" : "failed", reason);
    }
    this.#queuedBytes = 0;
    channel?.close(new Error(reason));
    this.#options.onChange?.();
  }

  /**
   * Ends the messages `ids` now (`failed` if they never left, `unconfirmed` otherwise): those a
   * client exiting cannot keep for its next start.
   *
   * @example
   * ```ts
   * // outbox.resolve(new Set([3, 4]), "not kept at exit: the stored outbox is full");
   * ```
   */
  resolve(ids: ReadonlySet<number>, reason: string): void {
    for (const [channelId, message] of this.#inChannel) {
      if (!ids.has(message.id)) continue;
      this.#inChannel.delete(channelId);
      const sent = !this.#withdraw(message, channelId);
      this.#options.onOutcome(message.id, sent ? "unconfirmed" : "failed", reason);
    }
    const keep: OutboxMessage[] = [];
    while (this.#queue.length > 0) {
      const message = this.#queue.shift()!;
      if (ids.has(message.id)) {
        this.#options.onOutcome(message.id, message.sent ? "unconfirmed" : "failed", reason);
      } else keep.push(message);
    }
    this.#queuedBytes = 0;
    for (const message of keep) {
      this.#queue.push(message);
      this.#queuedBytes += message.bytes.length;
    }
  }

  /** True when `message` never left and is now withdrawn from the channel for good. */
  #withdraw(message: OutboxMessage, channelId: number): boolean {
    if (message.sent) return false;
    return this.#channel?.cancel(channelId) ?? false;
  }

  #expire(): void {
    const now = this.#options.now();
    let changed = false;
    for (const [channelId, message] of this.#inChannel) {
      if (message.deadline > now) break;
      this.#inChannel.delete(channelId);
      // A message still waiting whole in the channel is withdrawn (then it never leaves, and is
      // `failed`); one that (partly) left may still arrive (`unconfirmed`).
      const sent = !this.#withdraw(message, channelId);
      this.#options.onOutcome(
        message.id,
        sent ? "unconfirmed" : "failed",
        sent ? "no acknowledgement in time" : "no path to the peer in time",
      );
      changed = true;
    }
    while (this.#queue.length > 0 && this.#queue.at(0)!.deadline <= now) {
      const message = this.#queue.shift()!;
      this.#queuedBytes -= message.bytes.length;
      this.#options.onOutcome(
        message.id,
        message.sent ? "unconfirmed" : "failed",
        message.sent ? "no acknowledgement in time" : "no path to the peer in time",
      );
      changed = true;
    }
    if (changed) this.#options.onChange?.();
  }

  #ensureChannel(): MessageChannel | undefined {
    if (this.#blocked) return undefined;
    if (this.#channel) return this.#channel;
    const sendParts = this.#options.sendFrameParts;
    this.#channel = this.#options.createChannel({
      send: (frame) => this.#options.sendFrame(frame),
      ...(sendParts
        ? { sendParts: (head: Uint8Array, payload: Uint8Array) => sendParts(head, payload) }
        : {}),
      deliver: (message) => {
        const envelope = decodeEnvelope(message);
        if (!envelope) return;
        if (envelope.uid === FILE_MESSAGE_UID) this.#options.onFileMessage?.(envelope.bytes);
        else this.#options.deliver(envelope.uid, envelope.bytes);
      },
      onAcknowledged: (channelId) => {
        const message = this.#inChannel.get(channelId);
        if (!message) {
          const lent = this.#fileLent.get(channelId);
          if (lent !== undefined) {
            this.#fileLent.delete(channelId);
            this.#options.onFileReleased?.(lent);
          }
          this.#options.onFileRoom?.();
          return;
        }
        this.#inChannel.delete(channelId);
        this.#options.onOutcome(message.id, "delivered", "acknowledged");
        this.#options.onChange?.();
      },
      onFailure: (error, _ids, neverSent) => this.#channelFailed(error, neverSent),
    });
    if (this.#maxFrameBytes !== undefined) this.#channel.setMaxFrameBytes?.(this.#maxFrameBytes);
    if (this.#datagramPath !== undefined) this.#channel.setDatagramPath?.(this.#datagramPath);
    if (this.#peerReceiveBuffer !== undefined) {
      this.#channel.setPeerReceiveBuffer?.(this.#peerReceiveBuffer);
    }
    return this.#channel;
  }

  #channelFailed(error: Error, neverSent: number[]): void {
    if (!this.#channel) return; // closed by us
    const unsent = new Set(neverSent);
    const inChannel = this.#inChannel;
    this.#inChannel = new Map();
    this.#channel = undefined;
    this.#blocked = true;
    for (const [channelId, message] of inChannel) {
      if (!unsent.has(channelId)) message.sent = true;
    }
    this.#requeue([...inChannel.values()]);
    this.#fileHeld = [];
    this.#fileLent = new Map();
    this.#options.onFileReset?.();
    this.#options.onChannelFailed(error.message);
  }

  #flush(): void {
    if (!this.#ready) return;
    if (this.#fileHeld.length > 0) {
      const channel = this.#ensureChannel();
      while (channel && this.#fileHeld.length > 0) {
        const wire = this.#fileHeld[0];
        if (!channel.hasRoomFor(wire.length)) break;
        channel.sendMessage(wire);
        this.#fileHeld.shift();
      }
    }
    if (this.#queue.length === 0) return;
    const channel = this.#ensureChannel();
    if (!channel) return;
    while (this.#queue.length > 0) {
      const message = this.#queue.at(0)!;
      const wire = encodeEnvelope(message.uid, message.bytes);
      // The channel's window of unacknowledged messages is full: the rest waits here and goes
      // out as acknowledgements arrive.
      if (!channel.hasRoomFor(wire.length)) break;
      this.#queue.shift();
      this.#queuedBytes -= message.bytes.length;
      try {
        this.#inChannel.set(channel.sendMessage(wire), message);
      } catch (error) {
        const name = (error as Error).name;
        if (name === "SendQueueFullError") {
          this.#queue.unshift(message);
          this.#queuedBytes += message.bytes.length;
          break;
        }
        this.#options.onOutcome(
          message.id,
          message.sent ? "unconfirmed" : "failed",
          (error as Error).message,
          name === "MessageTooLargeError" ? "message-too-large" : undefined,
        );
        this.#options.onChange?.();
        if (name !== "MessageTooLargeError") break;
      }
      if (!this.#channel) break; // failed while sending
    }
  }
}
