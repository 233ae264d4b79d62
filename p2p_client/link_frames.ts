/**
 * What a {@linkcode PeerLink} needs of the frame codec and of the reliable channel carried inside
 * encrypted TRANSPORT packets. The implementations live in `shared/peer/frames.ts` and
 * `p2p_client/reliable/`; `channel_factory.ts` plugs them in. Tests may plug in fakes.
 *
 * @module
 */

import type { PmtuProbeFrame } from "../shared/peer/frames.ts";

/** A frame as the link sees it: path frames are handled by the link, the rest by the channel. */
export type LinkFrame =
  | { kind: "path-probe"; nonce: Uint8Array }
  | { kind: "path-response"; nonce: Uint8Array }
  | { kind: "close" }
  | { kind: "candidates"; addresses: { host: string; port: number }[] }
  | { kind: "relay-addresses"; addresses: { host: string; port: number }[] }
  | { kind: "pmtu-probe"; frame: PmtuProbeFrame }
  | { kind: "pmtu-ack"; id: number }
  | { kind: "traversal"; body: Uint8Array }
  | { kind: "parameters"; udpReceiveBuffer: number | undefined }
  | { kind: "channel"; frame: unknown };

/** The frame codec the link uses. */
export interface LinkFrameCodec {
  /** Encodes a PATH_PROBE. */
  encodePathProbe(nonce: Uint8Array): Uint8Array;
  /** Encodes a PATH_RESPONSE. */
  encodePathResponse(nonce: Uint8Array): Uint8Array;
  /** Encodes a CLOSE. */
  encodeClose(): Uint8Array;
  /** Encodes a CANDIDATES frame (the first 16 addresses). */
  encodeCandidates(addresses: readonly { host: string; port: number }[]): Uint8Array;
  /** Encodes a RELAY_ADDRESSES frame (our TURN relayed addresses, the first 16). */
  encodeRelayAddresses?(addresses: readonly { host: string; port: number }[]): Uint8Array;
  /** Encodes a TRAVERSAL frame (`p2p_client/traversal/codec.ts` makes the body). */
  encodeTraversal?(body: Uint8Array): Uint8Array;
  /** Encodes a PARAMETERS frame: our UDP receive buffer as the kernel reports it, bytes. */
  encodeParameters?(parameters: { udpReceiveBuffer: number }): Uint8Array;
  /** Decodes a frame; undefined when malformed. */
  decode(bytes: Uint8Array): LinkFrame | undefined;
}

/** Hooks a message channel calls. */
export interface MessageChannelHooks {
  /** Sends an encoded channel frame to the peer (over whatever path is current). */
  send(frame: Uint8Array): void;
  /** Sends a DATA frame given as its header and a view of its payload (sealed without joining). */
  sendParts?(head: Uint8Array, payload: Uint8Array): void;
  /** Delivers a complete message, in order, exactly once. */
  deliver(message: Uint8Array): void;
  /** The peer acknowledged message `id`. */
  onAcknowledged(id: number): void;
  /**
   * Messages `ids` were not acknowledged (some may have arrived); `neverSentIds` (a subset) were
   * never sent at all, so they certainly did not arrive.
   */
  onFailure(error: Error, ids: number[], neverSentIds: number[]): void;
}

/** A reliable, ordered, exactly-once message channel to one peer. */
export interface MessageChannel {
  /** Queues a message; returns its channel ID. Throws when too large or the queue is full. */
  sendMessage(message: Uint8Array, priority?: "normal" | "bulk"): number;
  /** Largest DATA frame from now on (the path's probed packet size minus 29). */
  setMaxFrameBytes?(frameBytes: number): void;
  /** Whether frames now go over a lossy datagram path (direct UDP) rather than the relay. */
  setDatagramPath?(datagram: boolean): void;
  /** The peer's UDP receive buffer as its kernel reports it (from its PARAMETERS frame). */
  setPeerReceiveBuffer?(bytes: number): void;
  /** Whether any byte of message `id` was ever sent (false: it certainly did not arrive). */
  wasSent(id: number): boolean;
  /** Withdraws message `id` if none of it was sent yet (true: it never will be). */
  cancel(id: number): boolean;
  /** False exactly when `sendMessage` would now throw `SendQueueFullError` for `length` bytes. */
  hasRoomFor(length: number, priority?: "normal" | "bulk"): boolean;
  /** Feeds a decoded channel frame from the peer. */
  receive(frame: unknown): void;
  /** Runs timers (retransmissions). */
  tick(): void;
  /** When `tick` next has work, on the channel's clock (ms). */
  nextDeadline(): number;
  /** Smoothed RTT in ms, when measured. */
  readonly srttMs: number | undefined;
  /** Later frames go over another path: restart RTT estimation, resend what is unacknowledged. */
  pathChanged(): void;
  /** Stops the channel; unacknowledged messages are reported through `onFailure`. */
  close(reason: Error): void;
}

/** Makes the channel of one peer. */
export type MessageChannelFactory = (hooks: MessageChannelHooks) => MessageChannel;
