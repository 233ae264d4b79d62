/**
 * The relay: forwards relay frames between introduced clients, rewriting the peer ID to the
 * sender's, without reading the payload, without JSON and without awaiting anything per frame.
 * Limits per sender: a token bucket on payload bytes, and the receiver's queue cap; a refused
 * frame is answered with an `error` naming the peer and the byte count (never dropped silently).
 *
 * Backpressure: while the receiver has more than half its queue cap waiting, the relay stops
 * reading from the sender (TCP slows it down) until the receiver is below a quarter, for at most
 * 500 ms; a receiver that makes no progress in that time counts as stalled, and frames beyond its
 * cap are refused instead.
 *
 * @module
 */
import {
  type ErrorCode,
  FRAME_KIND_RELAY,
  RELAY_PEER_ID_BYTES,
  writeFrameHeader,
} from "../../shared/signaling/mod.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { ClientConnection } from "./connection.ts";
import type { SignalingContext } from "./context.ts";
import type { RegisteredClient } from "./registered_client.ts";

/** Each relay frame counts at least this many bytes against the rate (bounds frames per second). */
const RELAY_MIN_CHARGE_BYTES = 64;
/** How long a sender is paused for a receiver that is behind before the receiver counts as stalled. */
const RELAY_STALL_MS = 500;

const REFUSAL_MESSAGES: Partial<Record<ErrorCode, string>> = {
  "relay-quota": "relay rate quota exceeded; frame not forwarded",
  "relay-queue-full": "the receiver's relay queue is full; frame not forwarded",
  "relay-not-brokered": "relay only to a peer you were introduced to; frame not forwarded",
  "peer-offline": "that peer is not online; frame not forwarded",
};

/**
 * Forwards relay frames.
 *
 * @example
 * ```ts
 * import type { SignalingContext } from "./context.ts";
 * import type { ClientConnection } from "./connection.ts";
 * declare const context: SignalingContext;
 * declare const connection: ClientConnection;
 * const relay = new Relay(context);
 * await relay.forward(connection, new Uint8Array(21));
 * ```
 */
export class Relay {
  readonly #context: SignalingContext;

  /** @param context The service's shared context. */
  constructor(context: SignalingContext) {
    this.#context = context;
  }

  /** Forwards one relay frame body (peer ID + payload) from `connection`. */
  forward(connection: ClientConnection, body: Uint8Array): void | Promise<void> {
    const sender = connection.client;
    const context = this.#context;
    if (sender === null) {
      context.metrics.protocolErrors.inc("not-registered");
      context.close(connection, {
        reason: "not-registered",
        error: ["not-registered", "relay before registration"],
        bye: "protocol-error",
        peerLeft: "disconnected",
      });
      return;
    }
    if (body.length <= RELAY_PEER_ID_BYTES) {
      context.violation(connection, "bad-frame", "relay frame without peer ID and payload");
      return;
    }
    const limits = context.limits;
    const payloadBytes = body.length - RELAY_PEER_ID_BYTES;
    let target = sender.lastTarget;
    if (target === null || !sameId(body, target.idBytes)) {
      const id = body.subarray(0, RELAY_PEER_ID_BYTES).toHex();
      target = sender.peers.get(id) ?? null;
      if (target === null) {
        const node = context.cluster.relayNode(sender, id);
        if (node !== undefined) {
          this.#forwardToNode(sender, node, body, id, payloadBytes);
          return;
        }
        const online = context.registry.get(id) !== undefined || context.cluster.isOnline(id);
        this.#refuse(sender, online ? "relay-not-brokered" : "peer-offline", id, payloadBytes);
        return;
      }
      sender.lastTarget = target;
    }
    const receiver = target.connection;
    const frameBytes = 4 + 1 + body.length;
    if (receiver.queue.queuedBytes + frameBytes > limits.relayQueueBytes) {
      this.#refuse(sender, "relay-queue-full", target.id, payloadBytes);
      return;
    }
    if (!this.#charge(sender, payloadBytes)) {
      this.#refuse(sender, "relay-quota", target.id, payloadBytes);
      return;
    }
    const out = receiver.queue.reserve(frameBytes);
    writeFrameHeader(out, 0, 1 + body.length, FRAME_KIND_RELAY);
    out.set(sender.idBytes, 5);
    out.set(body.subarray(RELAY_PEER_ID_BYTES), 5 + RELAY_PEER_ID_BYTES);
    sender.relayedFrames++;
    sender.relayedBytes += payloadBytes;
    context.metrics.relayFrames++;
    context.metrics.relayBytes += payloadBytes;
    if (
      receiver.queue.queuedBytes > limits.relayQueueBytes / 2 &&
      receiver.stalledAt !== receiver.queue.writtenBytes
    ) {
      return this.#awaitDrain(receiver);
    }
  }

  /**
   * A frame for a peer on another node: the sender's quota is charged here, the receiver's queue
   * limit on the receiver's node (which answers a refusal back over the bus).
   */
  #forwardToNode(
    sender: RegisteredClient,
    node: string,
    body: Uint8Array,
    id: string,
    payloadBytes: number,
  ): void {
    const context = this.#context;
    if (!this.#charge(sender, payloadBytes)) {
      this.#refuse(sender, "relay-quota", id, payloadBytes);
      return;
    }
    const code = context.cluster.forwardRelay(
      node,
      sender.idBytes,
      body.subarray(0, RELAY_PEER_ID_BYTES),
      body.subarray(RELAY_PEER_ID_BYTES),
    );
    if (code !== null) {
      this.#refuse(sender, code, id, payloadBytes);
      return;
    }
    sender.relayedFrames++;
    sender.relayedBytes += payloadBytes;
    context.metrics.relayFrames++;
    context.metrics.relayBytes += payloadBytes;
  }

  /**
   * Queues a relay frame that came from another node (from client `from`, 20 bytes) for the
   * local `receiver`; the refusal code when its queue is full or it is gone.
   */
  deliver(receiver: RegisteredClient, from: Uint8Array, payload: Uint8Array): ErrorCode | null {
    const connection = receiver.connection;
    if (connection.closed) return "peer-offline";
    const frameBytes = 4 + 1 + RELAY_PEER_ID_BYTES + payload.length;
    if (connection.queue.queuedBytes + frameBytes > this.#context.limits.relayQueueBytes) {
      return "relay-queue-full";
    }
    const out = connection.queue.reserve(frameBytes);
    writeFrameHeader(out, 0, frameBytes - 4, FRAME_KIND_RELAY);
    out.set(from, 5);
    out.set(payload, 5 + RELAY_PEER_ID_BYTES);
    return null;
  }

  #charge(sender: RegisteredClient, payloadBytes: number): boolean {
    const context = this.#context;
    const bucket = sender.relayBucket ??= new TokenBucket(
      context.limits.relayBytesPerSecond,
      context.limits.relayBurstBytes,
      () => context.runtime.now(),
    );
    const charge = Math.max(payloadBytes, RELAY_MIN_CHARGE_BYTES);
    return bucket.take(charge) && context.relayBudget?.take(charge) !== false;
  }

  async #awaitDrain(receiver: ClientConnection): Promise<void> {
    const limits = this.#context.limits;
    const caughtUp = await receiver.queue.waitBelow(limits.relayQueueBytes / 4, RELAY_STALL_MS);
    if (!caughtUp && !receiver.closed) {
      receiver.stalledAt = receiver.queue.writtenBytes;
      this.#context.log.refusal("relay-receiver-stalled", "relay receiver {client} is stalled", {
        client: receiver.label,
        queued: receiver.queue.queuedBytes,
      });
    }
  }

  #refuse(sender: RegisteredClient, code: ErrorCode, peer: string, bytes: number): void {
    const context = this.#context;
    sender.refusedFrames++;
    context.metrics.relayRefused.inc(code);
    context.log.refusal(code, "relay frame from {client} to {peer} refused: {code}", {
      client: sender.connection.label,
      peer: peer.slice(0, 12),
      code,
      bytes,
    });
    context.sendBounded(sender.connection, {
      type: "error",
      code,
      message: REFUSAL_MESSAGES[code] ?? code,
      peer,
      bytes,
    });
  }
}

function sameId(body: Uint8Array, id: Uint8Array): boolean {
  for (let i = 0; i < RELAY_PEER_ID_BYTES; i++) if (body[i] !== id[i]) return false;
  return true;
}
