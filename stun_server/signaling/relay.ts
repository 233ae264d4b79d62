/**
 * The relay: forwards relay frames between introduced clients, rewriting the peer ID to the
 * sender's, without reading the payload, without JSON and without awaiting anything per frame.
 * Limits per sender: a token bucket on payload bytes, and the receiver's queue cap; a refused
 * frame is answered with an `error` naming the peer and the byte count (never dropped silently).
 *
 * Fairness (issue 11): a frame goes straight into the receiver's write queue while that holds
 * less than {@linkcode RELAY_DIRECT_BYTES}; beyond, it waits in the receiver's {@linkcode FairQueue},
 * one sub-queue per sender served by deficit round robin with sparse senders first, and is moved
 * to the write queue as that drains. Each sender may hold its fair share of the receiver's queue
 * cap (`relayQueueBytes / active senders`, at least one frame); a sender with nothing queued can
 * always queue one frame. So 48 flooding senders cannot hold an honest sender's frame behind
 * megabytes of theirs: it waits behind at most the write queue's 64 KiB.
 *
 * Receiver-granted credit: the server can reorder only what it has not written yet; once written,
 * frames sit in kernel socket buffers (hundreds of KiB on loopback) ahead of an honest frame
 * (measured with the attack bench's 16 flooding senders: honest p50 9.35 ms, quiet 0.43 ms). A
 * receiver that declared `relay-credit` acknowledges the relay bytes it consumed (credit frames,
 * kind 0x03), and the relay keeps at most its window (plus one frame) written and unacknowledged;
 * the rest waits in the fair queue, where it can still be reordered. The window starts at
 * {@linkcode RELAY_CREDIT_BYTES} and follows the receiver's measured consumption rate × 1 ms, up
 * to 1 MiB (`credit_window.ts`, issue 14): a fixed 64 KiB made the relay stop-and-wait for a fast
 * receiver whenever the credit round trip was longer than its 64 KiB took, while the time an
 * honest frame waits behind the window stays about 1 ms (or 64 KiB's worth, if longer). A
 * receiver that never acknowledges gets its window filled and then counts as stalled like one
 * that does not read; acknowledging more than was written is a protocol violation.
 *
 * Backpressure: while a sender holds more than half its share, the relay stops reading from it
 * (TCP slows it down) until it holds less than a quarter, for at most 500 ms; a receiver that
 * makes no progress in that time counts as stalled, and frames beyond the share are refused
 * instead.
 *
 * @module
 */
import {
  decodeCreditBody,
  type ErrorCode,
  FRAME_KIND_RELAY,
  MAX_FRAME_LENGTH,
  RELAY_PEER_ID_BYTES,
  writeFrameHeader,
} from "../../shared/signaling/mod.ts";
import { TokenBucket } from "../token_bucket.ts";
import { FairQueue } from "./fair_queue.ts";
import { CreditWindow } from "./credit_window.ts";
import type { ClientConnection } from "./connection.ts";
import type { SignalingContext } from "./context.ts";
import type { RegisteredClient } from "./registered_client.ts";

/** Each relay frame counts at least this many bytes against the rate (bounds frames per second). */
const RELAY_MIN_CHARGE_BYTES = 64;
/** How long a sender is paused for a receiver that is behind before the receiver counts as stalled. */
const RELAY_STALL_MS = 500;
/** Bytes a receiver's write queue may hold before frames wait in its fair queue. */
export const RELAY_DIRECT_BYTES = 64 * 1024;
/**
 * Default granted relay window of a `relay-credit` receiver (`registered.relay.creditBytes`):
 * relay frame bytes written and not yet acknowledged. The window starts there and never goes
 * below it; a receiver that consumes faster gets more (see `CreditWindow`). Bounds what an honest
 * frame waits behind outside the fair queue.
 */
export const RELAY_CREDIT_BYTES = 64 * 1024;
/** Smallest credit frame accepted (unless it acknowledges everything outstanding). */
const MIN_CREDIT_BYTES = 1024;
/** Deficit round robin quantum (bytes per sender per round). */
const RELAY_QUANTUM_BYTES = 8 * 1024;

/** Frames waiting for one receiver, per sender. */
interface Inbox {
  readonly queue: FairQueue<string>;
  pumping: boolean;
  /** Senders paused until their sub-queue is below a limit. */
  readonly waiters: Map<string, { limit: number; resolve: () => void }>;
  /** The pump, waiting for the receiver's credit. */
  creditWaiter: (() => void) | null;
}

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
  readonly #inboxes = new Map<ClientConnection, Inbox>();

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
        // The same answer whether the ID is online (here or on another node) or not: a stranger
        // must not learn that (issue 11, consent before addresses).
        this.#refuse(sender, "relay-not-brokered", id, payloadBytes);
        return;
      }
      sender.lastTarget = target;
    }
    const receiver = target.connection;
    const frameBytes = 4 + 1 + body.length;
    const inbox = this.#inboxes.get(receiver);
    const direct = inbox === undefined &&
      receiver.queue.queuedBytes + frameBytes <= RELAY_DIRECT_BYTES && hasCredit(receiver);
    let share = limits.relayQueueBytes;
    if (!direct) {
      const mine = inbox?.queue.bytesOf(sender.id) ?? 0;
      const flows = (inbox?.queue.activeFlows ?? 0) + (mine === 0 ? 1 : 0);
      share = Math.max(frameBytes, Math.floor(limits.relayQueueBytes / flows));
      const waiting = inbox?.queue.totalBytes ?? 0;
      if (
        mine > 0 && (mine + frameBytes > share || waiting + frameBytes > limits.relayQueueBytes)
      ) {
        this.#refuse(sender, "relay-queue-full", target.id, payloadBytes);
        return;
      }
    }
    if (!this.#charge(sender, payloadBytes)) {
      this.#refuse(sender, "relay-quota", target.id, payloadBytes);
      return;
    }
    const out = direct ? receiver.queue.reserve(frameBytes) : takeFrameBuffer(frameBytes);
    writeFrameHeader(out, 0, 1 + body.length, FRAME_KIND_RELAY);
    out.set(sender.idBytes, 5);
    out.set(body.subarray(RELAY_PEER_ID_BYTES), 5 + RELAY_PEER_ID_BYTES);
    sender.relayedFrames++;
    sender.relayedBytes += payloadBytes;
    context.metrics.relayFrames++;
    context.metrics.relayBytes += payloadBytes;
    if (direct) {
      if (receiver.relayWindow > 0) receiver.relayUnacked += frameBytes;
      return;
    }
    const box = inbox ?? this.#newInbox(receiver);
    box.queue.enqueue(sender.id, out);
    this.#pump(receiver, box);
    if (
      box.queue.bytesOf(sender.id) > share / 2 &&
      receiver.stalledAt !== receiver.queue.writtenBytes
    ) {
      return this.#awaitFlow(receiver, box, sender.id, share / 4);
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
    context.metrics.relayFramesToNodes++;
    context.metrics.relayBytes += payloadBytes;
  }

  /**
   * Queues a relay frame that came from another node (from client `from`, 20 bytes) for the
   * local `receiver`, in the same fair queue as local senders (keyed by the sender's ID); the
   * refusal code when the sender's share is full. A remote sender cannot be paused (its socket
   * is read on its own node), so past its share its frames are refused, not awaited.
   */
  deliver(receiver: RegisteredClient, from: Uint8Array, payload: Uint8Array): ErrorCode | null {
    const connection = receiver.connection;
    if (connection.closed) return "relay-not-brokered";
    const limits = this.#context.limits;
    const frameBytes = 4 + 1 + RELAY_PEER_ID_BYTES + payload.length;
    const inbox = this.#inboxes.get(connection);
    const direct = inbox === undefined &&
      connection.queue.queuedBytes + frameBytes <= RELAY_DIRECT_BYTES && hasCredit(connection);
    // The sender's fair-queue key, only when the frame waits in the fair queue.
    const key = direct ? "" : from.toHex();
    if (!direct) {
      const mine = inbox?.queue.bytesOf(key) ?? 0;
      const flows = (inbox?.queue.activeFlows ?? 0) + (mine === 0 ? 1 : 0);
      const share = Math.max(frameBytes, Math.floor(limits.relayQueueBytes / flows));
      const waiting = inbox?.queue.totalBytes ?? 0;
      if (
        mine > 0 && (mine + frameBytes > share || waiting + frameBytes > limits.relayQueueBytes)
      ) {
        return "relay-queue-full";
      }
    }
    const out = direct ? connection.queue.reserve(frameBytes) : new Uint8Array(frameBytes);
    writeFrameHeader(out, 0, frameBytes - 4, FRAME_KIND_RELAY);
    out.set(from, 5);
    out.set(payload, 5 + RELAY_PEER_ID_BYTES);
    if (direct) {
      if (connection.relayWindow > 0) connection.relayUnacked += frameBytes;
      return null;
    }
    const box = inbox ?? this.#newInbox(connection);
    box.queue.enqueue(key, out);
    this.#pump(connection, box);
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

  /**
   * A credit frame body from `connection`: the receiver consumed that many relay frame bytes, so
   * as many more may be written to it. Without granted credit, malformed, smaller than
   * {@linkcode MIN_CREDIT_BYTES} (unless it acknowledges everything outstanding) or more than
   * was written and not yet acknowledged: a protocol violation (counted; the third closes).
   */
  credit(connection: ClientConnection, body: Uint8Array): void {
    const context = this.#context;
    if (connection.client === null || connection.relayWindow === 0) {
      context.violation(connection, "bad-frame", "relay credit without granted relay credit");
      return;
    }
    const bytes = decodeCreditBody(body);
    if (bytes === null) {
      context.violation(connection, "bad-frame", "relay credit body must be a u32 above 0");
      return;
    }
    const unacked = connection.relayUnacked;
    if (bytes > unacked || bytes < Math.min(MIN_CREDIT_BYTES, unacked)) {
      context.violation(
        connection,
        "bad-frame",
        `relay credit of ${bytes} bytes with ${unacked} bytes unacknowledged`,
      );
      return;
    }
    connection.relayUnacked = unacked - bytes;
    connection.relayAcked += bytes;
    const pace = connection.relayPace ??= new CreditWindow(connection.relayWindow);
    connection.relayWindow = pace.acknowledged(bytes, context.runtime.now());
    const inbox = this.#inboxes.get(connection);
    if (inbox === undefined) return;
    this.#move(connection, inbox);
    const wake = inbox.creditWaiter;
    inbox.creditWaiter = null;
    wake?.();
  }

  /** Relay frame bytes written to `receiver` and not yet acknowledged (tests, status). */
  unacknowledged(receiver: ClientConnection): number {
    return receiver.relayUnacked;
  }

  /** Bytes waiting in fair queues for `receiver` (status, tests). */
  waitingFor(receiver: ClientConnection): number {
    return this.#inboxes.get(receiver)?.queue.totalBytes ?? 0;
  }

  #newInbox(receiver: ClientConnection): Inbox {
    const inbox: Inbox = {
      queue: new FairQueue<string>(RELAY_QUANTUM_BYTES),
      pumping: false,
      waiters: new Map(),
      creditWaiter: null,
    };
    this.#inboxes.set(receiver, inbox);
    return inbox;
  }

  /** Moves frames from the fair queue into the write queue while that has room. */
  #move(receiver: ClientConnection, inbox: Inbox): void {
    while (receiver.queue.queuedBytes < RELAY_DIRECT_BYTES && hasCredit(receiver)) {
      const next = inbox.queue.dequeue();
      if (next === undefined) break;
      receiver.queue.pushOwned(next.frame, releaseFrameBuffer);
      if (receiver.relayWindow > 0) receiver.relayUnacked += next.frame.length;
      const waiter = inbox.waiters.get(next.key);
      if (waiter !== undefined && inbox.queue.bytesOf(next.key) <= waiter.limit) {
        inbox.waiters.delete(next.key);
        waiter.resolve();
      }
    }
  }

  #pump(receiver: ClientConnection, inbox: Inbox): void {
    this.#move(receiver, inbox);
    if (inbox.pumping) return;
    if (inbox.queue.totalBytes === 0) {
      this.#inboxes.delete(receiver);
      for (const waiter of inbox.waiters.values()) waiter.resolve();
      return;
    }
    inbox.pumping = true;
    (async () => {
      let idle = 0;
      while (!receiver.closed && !receiver.queue.closed && inbox.queue.totalBytes > 0) {
        const before = receiver.queue.writtenBytes;
        const ackedBefore = receiver.relayAcked;
        if (hasCredit(receiver)) {
          await receiver.queue.waitBelow(RELAY_DIRECT_BYTES / 2, RELAY_STALL_MS);
        } else {
          await this.#awaitCredit(inbox);
        }
        const progress = receiver.queue.writtenBytes !== before ||
          receiver.relayAcked !== ackedBefore;
        idle = progress ? 0 : idle + 1;
        if (idle > 240) break; // two minutes without progress: the liveness sweep's business
        this.#move(receiver, inbox);
      }
      inbox.pumping = false;
      if (receiver.closed || receiver.queue.closed || idle > 240) inbox.queue.clear();
      if (inbox.queue.totalBytes === 0) {
        if (this.#inboxes.get(receiver) === inbox) this.#inboxes.delete(receiver);
        for (const waiter of inbox.waiters.values()) waiter.resolve();
        inbox.waiters.clear();
      }
    })().catch((error) => {
      this.#context.log.error("relay pump failed: {error}", { error: String(error) });
    });
  }

  /** Resolves on the receiver's next credit frame, or after {@linkcode RELAY_STALL_MS}. */
  async #awaitCredit(inbox: Inbox): Promise<void> {
    const runtime = this.#context.runtime;
    let timer: number | undefined;
    await new Promise<void>((resolve) => {
      inbox.creditWaiter?.();
      inbox.creditWaiter = resolve;
      timer = runtime.setTimer(() => {
        if (inbox.creditWaiter === resolve) inbox.creditWaiter = null;
        resolve();
      }, RELAY_STALL_MS);
    });
    runtime.clearTimer(timer);
  }

  async #awaitFlow(
    receiver: ClientConnection,
    inbox: Inbox,
    sender: string,
    limit: number,
  ): Promise<void> {
    const runtime = this.#context.runtime;
    let timer: number | undefined;
    const drained = await new Promise<boolean>((resolve) => {
      inbox.waiters.get(sender)?.resolve();
      inbox.waiters.set(sender, { limit, resolve: () => resolve(true) });
      timer = runtime.setTimer(() => {
        if (inbox.waiters.get(sender)?.limit === limit) inbox.waiters.delete(sender);
        resolve(false);
      }, RELAY_STALL_MS);
    });
    runtime.clearTimer(timer);
    if (!drained && !receiver.closed) {
      receiver.stalledAt = receiver.queue.writtenBytes;
      this.#context.log.refusal("relay-receiver-stalled", "relay receiver {client} is stalled", {
        client: receiver.label,
        queued: receiver.queue.queuedBytes + inbox.queue.totalBytes,
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

/**
 * Recycled buffers for relay frames that wait in a fair queue (a `relay-credit` receiver's frames
 * all do once its window is full, and any receiver's once its write queue holds
 * {@linkcode RELAY_DIRECT_BYTES}). A fresh array per frame cost the server more in garbage
 * collection than everything else together: `sendfile` of 256 MiB between two clients over the
 * relay, server CPU profile: GC 505 ms of 1,290 ms; the relay bench's 16 KiB frames, 1,180–1,500
 * µs of server CPU per relayed MB. Buffers come in power-of-two classes from
 * {@linkcode POOLED_FRAME_MIN_BYTES} to one maximal frame, so a frame holds at most twice its size;
 * smaller frames get arrays of their own; each class keeps at most {@linkcode FRAME_POOL_CLASS_BYTES}
 * of free buffers.
 */
const framePools = new Map<number, Uint8Array[]>();
const FRAME_BUFFER_BYTES = 4 + MAX_FRAME_LENGTH;
const POOLED_FRAME_MIN_BYTES = 2048;
const FRAME_POOL_CLASS_BYTES = 4 << 20;

/** The buffer size a frame of `size` bytes is pooled in, or 0 when it is not pooled. */
function frameClass(size: number): number {
  if (size < POOLED_FRAME_MIN_BYTES || size > FRAME_BUFFER_BYTES) return 0;
  const power = 2 ** Math.ceil(Math.log2(size));
  return power >= FRAME_BUFFER_BYTES ? FRAME_BUFFER_BYTES : power;
}

/** A buffer for a relay frame of `size` bytes that waits in a fair queue. */
function takeFrameBuffer(size: number): Uint8Array {
  const bytes = frameClass(size);
  if (bytes === 0) return new Uint8Array(size);
  return (framePools.get(bytes)?.pop() ?? new Uint8Array(bytes)).subarray(0, size);
}

/** A frame from {@linkcode takeFrameBuffer} was written: its buffer may serve another frame. */
function releaseFrameBuffer(frame: Uint8Array): void {
  const bytes = frame.buffer.byteLength;
  if (frame.byteOffset !== 0 || frameClass(bytes) !== bytes) return;
  let pool = framePools.get(bytes);
  if (pool === undefined) framePools.set(bytes, pool = []);
  if ((pool.length + 1) * bytes <= FRAME_POOL_CLASS_BYTES) {
    pool.push(new Uint8Array(frame.buffer as ArrayBuffer));
  }
}

/** True when `receiver` may be written more relay frames now (credit left, or no credit asked). */
function hasCredit(receiver: ClientConnection): boolean {
  return receiver.relayWindow === 0 || receiver.relayUnacked < receiver.relayWindow;
}

function sameId(body: Uint8Array, id: Uint8Array): boolean {
  for (let i = 0; i < RELAY_PEER_ID_BYTES; i++) if (body[i] !== id[i]) return false;
  return true;
}
