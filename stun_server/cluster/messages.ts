/**
 * The messages nodes of a server cluster exchange over NATS, their subjects, and their codec.
 *
 * Why: a client registered on node A must be able to `connect` to, be introduced to and relay to a
 * client on node B exactly as on one server (docs/protocol.md, "Cluster bus"). Control messages
 * are strict JSON (validated with zod like the client protocol, so a buggy or foreign publisher
 * cannot crash a node); relay frames are binary and never parsed beyond their two IDs, so a relayed
 * frame costs one copy on each node and the payload (end-to-end ciphertext) is never looked at.
 *
 * Every bus payload starts with one kind byte:
 *
 * ```
 * 0x01 control: UTF-8 JSON of one BusControl object (at most 64 KiB)
 * 0x02 relay:   from peer ID (20 B) | to peer ID (20 B) | opaque payload (1..65,515 B)
 * 0x03 changes: node name length (1 B) | node name | count (2 B) | count × change, where a
 *               change is op (1 B: 1 announce, 2 withdraw) | peer ID (20 B) | epoch (u64) |
 *               nonce length (1 B, 0: none) | nonce (UTF-8)
 * ```
 *
 * `changes` carries a node's announcements and withdrawals of a few milliseconds in one bus
 * message (see `ClusterNode`): one JSON message per registration, encoded, passed through NATS,
 * parsed and validated by every other node, cost more than half again the CPU of a batch.
 * Binary like relay frames, all integers big-endian.
 *
 * @module
 */
import { z } from "zod";
import {
  candidateSchema,
  ERROR_CODES,
  MAX_LOCAL_ADDRESSES,
  MAX_RELAY_PAYLOAD,
  PEER_LEFT_REASONS,
  peerIdSchema,
  RELAY_PEER_ID_BYTES,
} from "../../shared/signaling/mod.ts";

/** Bus payload kind: a JSON control message. */
export const BUS_KIND_CONTROL = 0x01;
/** Bus payload kind: a relay frame between two clients on different nodes. */
export const BUS_KIND_RELAY = 0x02;
/** Largest control payload accepted from the bus (bytes of JSON). */
export const MAX_BUS_CONTROL_BYTES = 64 * 1024;
/** Bus payload kind: a batch of presence changes (announcements and withdrawals) of one node. */
export const BUS_KIND_CHANGES = 0x03;
/** Most changes in one `changes` payload (at most 222 bytes each: under 64 KiB). */
export const MAX_CHANGES_BATCH = 200;
/** Most presence entries in one `presence` message (about 60 bytes each: under the control limit). */
export const MAX_PRESENCE_BATCH = 800;

/** A node name: letters, digits, `-` and `_`, 1 to 64 characters (it is part of NATS subjects). */
export const nodeNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

const epochSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const requestIdSchema = z.string().max(64);

/** A node's heartbeat: it is alive, with this incarnation, for `leaseMs` more. */
export const leaseSchema = z.strictObject({
  type: z.literal("lease"),
  node: nodeNameSchema,
  incarnation: z.string().regex(/^[0-9a-f]{16}$/),
  leaseMs: z.number().int().min(100).max(600_000),
});

/**
 * `id` is registered on `node` since `epoch` (a newer epoch replaces an older one anywhere);
 * `nonce` is the registration's `registrationNonce`, echoed in the `bye replaced` of the session
 * it replaces.
 */
export const announceSchema = z.strictObject({
  type: z.literal("announce"),
  node: nodeNameSchema,
  id: peerIdSchema,
  epoch: epochSchema,
  nonce: z.string().min(1).max(64).optional(),
});

/** `id`'s session of `epoch` on `node` has ended. */
export const withdrawSchema = z.strictObject({
  type: z.literal("withdraw"),
  node: nodeNameSchema,
  id: peerIdSchema,
  epoch: epochSchema,
});

/** Many announcements at once (after a node joins or the bus comes back). */
export const presenceSchema = z.strictObject({
  type: z.literal("presence"),
  node: nodeNameSchema,
  entries: z.array(z.tuple([peerIdSchema, epochSchema])).max(MAX_PRESENCE_BATCH),
});

/** A node that just joined (or came back) asks every node to publish its `presence`. */
export const syncSchema = z.strictObject({
  type: z.literal("sync"),
  node: nodeNameSchema,
});

/** `from` (on `node`) asked to connect to `to`: introduce them. Sent to `to`'s node. */
export const introduceRequestSchema = z.strictObject({
  type: z.literal("introduce"),
  node: nodeNameSchema,
  from: peerIdSchema,
  to: peerIdSchema,
  publicKey: z.string().max(64),
  candidates: z.array(candidateSchema).max(MAX_LOCAL_ADDRESSES + 1),
  rttMs: z.number().min(-1).max(60_000),
  requestId: requestIdSchema.optional(),
});

/** `to` accepted the introduction from `from`: its key and candidates, and the punch lead. */
export const introducedSchema = z.strictObject({
  type: z.literal("introduced"),
  node: nodeNameSchema,
  from: peerIdSchema,
  to: peerIdSchema,
  publicKey: z.string().max(64),
  candidates: z.array(candidateSchema).max(MAX_LOCAL_ADDRESSES + 1),
  leadMs: z.number().int().min(0).max(10_000),
  requestId: requestIdSchema.optional(),
});

/** A request of `from` concerning `to` was refused on `to`'s node: tell `from` this error. */
export const refusedSchema = z.strictObject({
  type: z.literal("refused"),
  node: nodeNameSchema,
  from: peerIdSchema,
  to: peerIdSchema,
  code: z.enum(ERROR_CODES),
  message: z.string().max(500),
  requestId: requestIdSchema.optional(),
  bytes: z.number().int().min(0).max(MAX_RELAY_PAYLOAD).optional(),
});

/** New candidates of `from` (learned after the introduction): pass them to its peer `to`. */
export const candidatesSchema = z.strictObject({
  type: z.literal("candidates"),
  node: nodeNameSchema,
  from: peerIdSchema,
  to: peerIdSchema,
  candidates: z.array(candidateSchema).max(MAX_LOCAL_ADDRESSES + 1),
});

/** `from` has left (or was replaced, or timed out): tell `to`, which was brokered with it. */
export const peerLeftSchema = z.strictObject({
  type: z.literal("peer-left"),
  node: nodeNameSchema,
  from: peerIdSchema,
  to: peerIdSchema,
  reason: z.enum(PEER_LEFT_REASONS),
});

/**
 * A `--workers` worker's link announcement (on `<prefix>.link`, not part of
 * {@linkcode busControlSchema}: only workers subscribe): its siblings of the same `group` dial
 * `port` on 127.0.0.1, or the abstract Unix socket `p2p-worker-link-<socket>`, for relay frames
 * (see `sibling_links.ts`). Exactly one of `port` and `socket`.
 */
export const linkAnnouncementSchema = z.strictObject({
  type: z.literal("link"),
  node: nodeNameSchema,
  group: z.string().regex(/^[0-9a-f]{16}$/),
  port: z.number().int().min(1).max(65_535).optional(),
  socket: z.string().regex(/^[0-9a-f]{32}$/).optional(),
}).refine((link) => (link.port === undefined) !== (link.socket === undefined), {
  message: "a link announcement names a port or a socket",
});

/** A worker's link announcement. */
export type LinkAnnouncement = z.infer<typeof linkAnnouncementSchema>;

/**
 * Encodes a link announcement (a control payload, kind 0x01).
 *
 * @example
 * ```ts
 * const bytes = encodeLinkAnnouncement({ type: "link", node: "w-1", group: "0".repeat(16), port: 4000 });
 * console.log(decodeLinkAnnouncement(bytes)?.port); // 4000
 * ```
 */
export function encodeLinkAnnouncement(message: LinkAnnouncement): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  const out = new Uint8Array(1 + json.length);
  out[0] = BUS_KIND_CONTROL;
  out.set(json, 1);
  return out;
}

/**
 * Decodes a link announcement; null when malformed (never throws).
 *
 * @example
 * ```ts
 * console.log(decodeLinkAnnouncement(new Uint8Array([1, 123]))); // null
 * ```
 */
export function decodeLinkAnnouncement(bytes: Uint8Array): LinkAnnouncement | null {
  if (bytes.length < 2 || bytes[0] !== BUS_KIND_CONTROL || bytes.length > 1024) return null;
  try {
    const result = linkAnnouncementSchema.safeParse(JSON.parse(decoder.decode(bytes.subarray(1))));
    return result.success ? result.data : null;
  } catch {
    return null;
  }
}

/** Every control message on the bus. */
export const busControlSchema = z.discriminatedUnion("type", [
  leaseSchema,
  announceSchema,
  withdrawSchema,
  presenceSchema,
  syncSchema,
  introduceRequestSchema,
  introducedSchema,
  refusedSchema,
  candidatesSchema,
  peerLeftSchema,
]);

/** A control message on the bus. */
export type BusControl = z.infer<typeof busControlSchema>;

/** The control message of one `type`. */
export type BusControlOf<T extends BusControl["type"]> = Extract<BusControl, { type: T }>;

/** A relay frame between nodes: `payload` from client `from` to client `to` (hex IDs). */
export interface BusRelay {
  /** Always `"relay"`. */
  type: "relay";
  /** The sending client's peer ID (40 hex digits). */
  from: string;
  /** The receiving client's peer ID (40 hex digits). */
  to: string;
  /** The opaque payload (a view into the received bytes). */
  payload: Uint8Array;
  /** The sending client's 20-byte peer ID (a view into the received bytes). */
  fromId: Uint8Array;
}

/** One presence change in a {@linkcode BusChanges} batch: as an `announce` or a `withdraw`. */
export interface PresenceChange {
  /** `announce`: `id` is on the node since `epoch`; `withdraw`: that session ended. */
  op: "announce" | "withdraw";
  /** The peer ID (40 hex digits). */
  id: string;
  /** The session's epoch. */
  epoch: number;
  /** An announcement's registration nonce (1..64 characters), when the client gave one. */
  nonce?: string;
}

/** A node's presence changes, in the order it made them. */
export interface BusChanges {
  /** Always `"changes"`. */
  type: "changes";
  /** The node whose clients these are. */
  node: string;
  /** The changes, oldest first. */
  changes: PresenceChange[];
}

/** Anything that arrives from the bus. */
export type BusMessage = BusControl | BusRelay | BusChanges;

/** The outcome of decoding a bus payload. */
export type BusDecodeResult = { ok: true; message: BusMessage } | { ok: false; error: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a control message as a bus payload.
 *
 * @example
 * ```ts
 * const bytes = encodeBusControl({ type: "sync", node: "a" });
 * console.log(bytes[0]); // 1
 * ```
 */
export function encodeBusControl(message: BusControl): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  const out = new Uint8Array(1 + json.length);
  out[0] = BUS_KIND_CONTROL;
  out.set(json, 1);
  return out;
}

/**
 * Encodes a relay frame as a bus payload. `from` and `to` are the 20 raw bytes of each peer ID.
 *
 * @example
 * ```ts
 * const id = new Uint8Array(20);
 * const bytes = encodeBusRelay(id, id, new Uint8Array([1, 2, 3]));
 * console.log(bytes.length); // 44
 * ```
 */
export function encodeBusRelay(from: Uint8Array, to: Uint8Array, payload: Uint8Array): Uint8Array {
  if (from.length !== RELAY_PEER_ID_BYTES || to.length !== RELAY_PEER_ID_BYTES) {
    throw new RangeError("peer IDs are 20 bytes");
  }
  if (payload.length < 1 || payload.length > MAX_RELAY_PAYLOAD) {
    throw new RangeError(`relay payload must be 1..${MAX_RELAY_PAYLOAD} bytes`);
  }
  const out = new Uint8Array(1 + 2 * RELAY_PEER_ID_BYTES + payload.length);
  out[0] = BUS_KIND_RELAY;
  out.set(from, 1);
  out.set(to, 1 + RELAY_PEER_ID_BYTES);
  out.set(payload, 1 + 2 * RELAY_PEER_ID_BYTES);
  return out;
}

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PEER_ID = /^[0-9a-f]{40}$/;

/**
 * Encodes a node's presence changes (at most {@linkcode MAX_CHANGES_BATCH}) as one bus payload.
 *
 * @example
 * ```ts
 * const bytes = encodeBusChanges("a", [{ op: "announce", id: "ab".repeat(20), epoch: 7 }]);
 * const result = decodeBusMessage(bytes);
 * if (result.ok && result.message.type === "changes") console.log(result.message.changes[0].epoch); // 7
 * ```
 */
export function encodeBusChanges(node: string, changes: readonly PresenceChange[]): Uint8Array {
  if (!NODE_NAME.test(node)) throw new RangeError("bad node name");
  if (changes.length > MAX_CHANGES_BATCH) throw new RangeError("too many changes in one batch");
  const nonces = changes.map((c) => c.nonce === undefined ? null : encoder.encode(c.nonce));
  let length = 1 + 1 + node.length + 2;
  for (const [i, change] of changes.entries()) {
    const nonce = nonces[i];
    if (!PEER_ID.test(change.id)) throw new RangeError("bad peer ID");
    if (!Number.isSafeInteger(change.epoch) || change.epoch < 0) throw new RangeError("bad epoch");
    if (nonce !== null && (nonce.length === 0 || (change.nonce?.length ?? 0) > 64)) {
      throw new RangeError("bad nonce");
    }
    length += 1 + RELAY_PEER_ID_BYTES + 8 + 1 + (nonce?.length ?? 0);
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  out[0] = BUS_KIND_CHANGES;
  out[1] = node.length;
  encoder.encodeInto(node, out.subarray(2));
  let at = 2 + node.length;
  view.setUint16(at, changes.length);
  at += 2;
  for (const [i, change] of changes.entries()) {
    out[at++] = change.op === "announce" ? 1 : 2;
    out.subarray(at).setFromHex(change.id);
    at += RELAY_PEER_ID_BYTES;
    view.setBigUint64(at, BigInt(change.epoch));
    at += 8;
    const nonce = nonces[i];
    out[at++] = nonce?.length ?? 0;
    if (nonce !== null) {
      out.set(nonce, at);
      at += nonce.length;
    }
  }
  return out;
}

function decodeChanges(bytes: Uint8Array): BusDecodeResult {
  const bad = (error: string): BusDecodeResult => ({ ok: false, error: `changes: ${error}` });
  if (bytes.length - 1 > MAX_BUS_CONTROL_BYTES) return bad("too large");
  if (bytes.length < 4) return bad("truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nameLength = bytes[1];
  if (bytes.length < 2 + nameLength + 2) return bad("truncated");
  let node: string;
  try {
    node = decoder.decode(bytes.subarray(2, 2 + nameLength));
  } catch {
    return bad("node name is not UTF-8");
  }
  if (!NODE_NAME.test(node)) return bad("bad node name");
  let at = 2 + nameLength;
  const count = view.getUint16(at);
  at += 2;
  if (count > MAX_CHANGES_BATCH) return bad("too many changes");
  const changes: PresenceChange[] = [];
  for (let i = 0; i < count; i++) {
    if (bytes.length < at + 1 + RELAY_PEER_ID_BYTES + 8 + 1) return bad("truncated");
    const op = bytes[at++];
    if (op !== 1 && op !== 2) return bad(`unknown op ${op}`);
    const id = bytes.subarray(at, at + RELAY_PEER_ID_BYTES).toHex();
    at += RELAY_PEER_ID_BYTES;
    const epoch = view.getBigUint64(at);
    at += 8;
    if (epoch > BigInt(Number.MAX_SAFE_INTEGER)) return bad("epoch too large");
    const nonceLength = bytes[at++];
    if (bytes.length < at + nonceLength) return bad("truncated");
    let nonce: string | undefined;
    if (nonceLength > 0) {
      if (op !== 1) return bad("a withdrawal has no nonce");
      try {
        nonce = decoder.decode(bytes.subarray(at, at + nonceLength));
      } catch {
        return bad("nonce is not UTF-8");
      }
      if (nonce.length > 64) return bad("nonce too long");
      at += nonceLength;
    }
    changes.push(
      nonce === undefined
        ? { op: op === 1 ? "announce" : "withdraw", id, epoch: Number(epoch) }
        : { op: "announce", id, epoch: Number(epoch), nonce },
    );
  }
  if (at !== bytes.length) return bad("trailing bytes");
  return { ok: true, message: { type: "changes", node, changes } };
}

/**
 * Decodes a bus payload. Never throws: anything malformed gives `{ok: false, error}`.
 *
 * @example
 * ```ts
 * const result = decodeBusMessage(encodeBusControl({ type: "sync", node: "a" }));
 * if (result.ok) console.log(result.message.type); // "sync"
 * ```
 */
export function decodeBusMessage(bytes: Uint8Array): BusDecodeResult {
  if (bytes.length === 0) return { ok: false, error: "empty bus message" };
  const kind = bytes[0];
  if (kind === BUS_KIND_RELAY) {
    const header = 1 + 2 * RELAY_PEER_ID_BYTES;
    if (bytes.length <= header) return { ok: false, error: "relay frame without payload" };
    if (bytes.length - header > MAX_RELAY_PAYLOAD) {
      return { ok: false, error: "relay payload too large" };
    }
    return {
      ok: true,
      message: {
        type: "relay",
        from: bytes.subarray(1, 1 + RELAY_PEER_ID_BYTES).toHex(),
        to: bytes.subarray(1 + RELAY_PEER_ID_BYTES, header).toHex(),
        payload: bytes.subarray(header),
        fromId: bytes.subarray(1, 1 + RELAY_PEER_ID_BYTES),
      },
    };
  }
  if (kind === BUS_KIND_CHANGES) return decodeChanges(bytes);
  if (kind !== BUS_KIND_CONTROL) return { ok: false, error: `unknown bus message kind ${kind}` };
  if (bytes.length - 1 > MAX_BUS_CONTROL_BYTES) return { ok: false, error: "control too large" };
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes.subarray(1)));
  } catch {
    return { ok: false, error: "control message is not UTF-8 JSON" };
  }
  const result = busControlSchema.safeParse(value);
  if (result.success) return { ok: true, message: result.data };
  const issue = result.error.issues[0];
  const where = issue?.path.length ? issue.path.join(".") : "message";
  return { ok: false, error: `${where}: ${issue?.message ?? "invalid"}`.slice(0, 200) };
}

/**
 * The NATS subjects of one cluster. `prefix` separates clusters sharing one NATS (default `p2p`).
 *
 * - `<prefix>.lease`: every node's heartbeat (broadcast);
 * - `<prefix>.presence`: `announce`, `withdraw`, `presence`, `sync` (broadcast);
 * - `<prefix>.node.<node>`: control messages for one node (introductions, answers, `peer-left`);
 * - `<prefix>.relay.<node>`: relay frames for clients on one node;
 * - `<prefix>.any`: control messages for whichever node holds their `to` (an ID not yet known);
 * - `<prefix>.link`: where a `--workers` worker's link listens for its siblings (`link`, see
 *   `sibling_links.ts`; only workers subscribe).
 *
 * @example
 * ```ts
 * const subjects = clusterSubjects("p2p");
 * console.log(subjects.node("a")); // "p2p.node.a"
 * ```
 */
export function clusterSubjects(prefix = "p2p"): {
  lease: string;
  presence: string;
  node: (node: string) => string;
  relay: (node: string) => string;
  any: string;
  link: string;
} {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new RangeError(`bad subject prefix ${JSON.stringify(prefix)}`);
  }
  return {
    lease: `${prefix}.lease`,
    presence: `${prefix}.presence`,
    node: (node) => `${prefix}.node.${node}`,
    relay: (node) => `${prefix}.relay.${node}`,
    any: `${prefix}.any`,
    link: `${prefix}.link`,
  };
}
