/**
 * The signaling control messages (version 1) as strict zod schemas, with their TypeScript types
 * and parsers for each direction. See `docs/protocol.md`, section 2.
 *
 * @module
 */
import { z } from "zod";
import { MAX_LOCAL_ADDRESSES, SIGNALING_VERSION } from "./constants.ts";
import { BYE_REASONS, ERROR_CODES, PEER_LEFT_REASONS } from "./errors.ts";
import { MAX_PUZZLE_BITS } from "./puzzle.ts";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Base64 text of exactly `bytes` raw bytes. */
function base64Of(bytes: number) {
  return z.string().length(Math.ceil(bytes / 3) * 4).regex(BASE64);
}

/** A peer ID: 40 lowercase hex digits. */
export const peerIdSchema = z.string().regex(/^[0-9a-f]{40}$/);

/** An endpoint: a literal IPv4 or IPv6 address and a port (1-65535). */
export const addressSchema = z.strictObject({
  host: z.union([z.ipv4(), z.ipv6()]),
  port: z.number().int().min(1).max(65_535),
});

/** An endpoint `{host, port}`. */
export type Address = z.infer<typeof addressSchema>;

/** An endpoint offered to a peer in `introduce`, with where it was learned. */
export const candidateSchema = z.strictObject({
  host: z.union([z.ipv4(), z.ipv6()]),
  port: z.number().int().min(1).max(65_535),
  kind: z.enum(["public", "local"]),
});

/** A candidate endpoint in `introduce`. */
export type Candidate = z.infer<typeof candidateSchema>;

const localAddresses = z.array(addressSchema).max(MAX_LOCAL_ADDRESSES);
const timestamp = z.number().finite();
const requestId = z.string().max(64);
/** A client-chosen value echoed back (see `register.registrationNonce`). */
const registrationNonce = z.string().min(1).max(64);

/**
 * What a client may declare it supports in `hello.features`: `puzzle` (it solves the admission
 * puzzle in `challenge.puzzle`), `consent` (it answers `introduce-request`s itself),
 * `relay-credit` (it acknowledges the relay bytes it consumed with credit frames, kind 0x03, when
 * `registered.relay.creditBytes` grants credit).
 */
export const CLIENT_FEATURES = ["puzzle", "consent", "relay-credit"] as const;

/** A feature a client declares in `hello`. */
export type ClientFeature = typeof CLIENT_FEATURES[number];

/**
 * `hello`: opens registration. `version` is checked by the server (`unsupported-version`).
 * `features` (optional) lists what the client supports beyond version 1's core
 * ({@linkcode CLIENT_FEATURES}; names it does not know the server ignores).
 */
export const helloSchema = z.strictObject({
  type: z.literal("hello"),
  version: z.number().int(),
  publicKey: base64Of(32),
  // Unknown features are ignored (a newer client may name more), not refused.
  features: z.array(z.string().min(1).max(32)).max(16).optional(),
});
/**
 * `register`: the signed challenge and the local addresses of the client's UDP socket.
 * `registrationNonce` (optional) is echoed in `registered` and in the `bye {reason: "replaced"}`
 * the replaced connection gets, so a client tells its own retried registration from another
 * instance holding its identity.
 */
export const registerSchema = z.strictObject({
  type: z.literal("register"),
  signature: base64Of(64),
  localAddresses,
  registrationNonce: registrationNonce.optional(),
  /** The admission puzzle's solution (base64 of 8 bytes) when `challenge.puzzle` asked for one. */
  work: base64Of(8).optional(),
});
/** `addresses`: replaces the client's local addresses. */
export const addressesSchema = z.strictObject({
  type: z.literal("addresses"),
  localAddresses,
});
/** `connect`: asks the server to broker a connection to `peer`. */
export const connectSchema = z.strictObject({
  type: z.literal("connect"),
  peer: peerIdSchema,
  requestId: requestId.optional(),
});
/**
 * `introduce-answer`: the callee's answer to an `introduce-request` about `peer` (only clients
 * that declared the `consent` feature get requests).
 */
export const introduceAnswerSchema = z.strictObject({
  type: z.literal("introduce-answer"),
  peer: peerIdSchema,
  accept: z.boolean(),
});
/** `drop`: ends the brokering with `peer` (it gets `peer-left {reason: "dropped"}`), freeing a slot. */
export const dropSchema = z.strictObject({
  type: z.literal("drop"),
  peer: peerIdSchema,
});
/** `ping`: a heartbeat, answered with `pong` carrying the same `t` (either direction). */
export const pingSchema = z.strictObject({ type: z.literal("ping"), t: timestamp });
/** `pong`: the answer to a `ping` (either direction). */
export const pongSchema = z.strictObject({ type: z.literal("pong"), t: timestamp });
/** `bye` from a client: a polite goodbye. */
export const clientByeSchema = z.strictObject({
  type: z.literal("bye"),
  reason: z.string().max(200).optional(),
});

/** Any message a client may send. */
export const clientMessageSchema = z.discriminatedUnion("type", [
  helloSchema,
  registerSchema,
  addressesSchema,
  connectSchema,
  introduceAnswerSchema,
  dropSchema,
  pingSchema,
  pongSchema,
  clientByeSchema,
]);

/** A message from client to server. */
export type ClientMessage = z.infer<typeof clientMessageSchema>;

/** `challenge`: the registration challenge. */
export const challengeSchema = z.strictObject({
  type: z.literal("challenge"),
  version: z.literal(SIGNALING_VERSION),
  nonce: base64Of(32),
  serverTime: timestamp,
  /** Under load, to a client that declared `puzzle`: solve this before `register` (`puzzle.ts`). */
  puzzle: z.strictObject({ bits: z.number().int().min(1).max(MAX_PUZZLE_BITS) }).optional(),
});
/** `registered`: registration accepted, with the STUN credentials and the server's limits. */
export const registeredSchema = z.strictObject({
  type: z.literal("registered"),
  id: peerIdSchema,
  stunUsername: z.string().min(1).max(128),
  stunPassword: z.string().min(1).max(128),
  stunPort: z.number().int().min(0).max(65_535),
  heartbeatMs: z.number().int().positive(),
  relay: z.strictObject({
    bytesPerSecond: z.number().int().nonnegative(),
    queueBytes: z.number().int().nonnegative(),
    maxPayload: z.number().int().positive(),
    /**
     * Only to a client that declared `relay-credit`: the most relay frame bytes the server writes
     * to it before the client acknowledges them with credit frames (kind 0x03).
     */
    creditBytes: z.number().int().positive().optional(),
  }),
  serverTime: timestamp,
  registrationNonce: registrationNonce.optional(),
});
/** `endpoint`: the public UDP endpoint the server saw in an authenticated STUN Binding. */
export const endpointSchema = z.strictObject({
  type: z.literal("endpoint"),
  public: addressSchema,
});
/**
 * `introduce`: a brokered connection, the other side's candidates and key, and when to punch.
 * `punchInMs` (when present) is this receiver's delay from receipt to the common punch instant,
 * computed by the server from this receiver's own measured RTT (`punchAt - serverTime - rtt/2`);
 * a client should prefer it to converting `punchAt` itself.
 */
export const introduceSchema = z.strictObject({
  type: z.literal("introduce"),
  peer: peerIdSchema,
  publicKey: base64Of(32),
  candidates: z.array(candidateSchema).max(MAX_LOCAL_ADDRESSES + 1),
  role: z.enum(["initiator", "responder"]),
  punchAt: timestamp,
  serverTime: timestamp,
  punchInMs: z.number().int().nonnegative().max(60_000).optional(),
  requestId: requestId.optional(),
});
/**
 * `candidates`: the server learned new candidates of `from` (its public endpoint over STUN, or new
 * local addresses) after it had introduced `from` to this client: the complete, current list in
 * the same order as `introduce.candidates`.
 */
export const candidatesSchema = z.strictObject({
  type: z.literal("candidates"),
  from: peerIdSchema,
  candidates: z.array(candidateSchema).max(MAX_LOCAL_ADDRESSES + 1),
});
/**
 * `introduce-request`: `peer` asks to be introduced to this client (which declared `consent`).
 * Nothing about this client has been given out yet; answer with `introduce-answer`.
 */
export const introduceRequestSchema = z.strictObject({
  type: z.literal("introduce-request"),
  peer: peerIdSchema,
});
/** `peer-left`: a peer this client was brokered with has gone. */
export const peerLeftSchema = z.strictObject({
  type: z.literal("peer-left"),
  peer: peerIdSchema,
  reason: z.enum(PEER_LEFT_REASONS),
});
/** `error`: a typed error; `peer` and `bytes` accompany relay refusals. */
export const errorSchema = z.strictObject({
  type: z.literal("error"),
  code: z.enum(ERROR_CODES),
  message: z.string().max(1024),
  requestId: requestId.optional(),
  peer: peerIdSchema.optional(),
  bytes: z.number().int().nonnegative().optional(),
});
/**
 * `bye` from the server: it is closing this connection, and why. With `reason: "replaced"`,
 * `registrationNonce` is the one the newer registration sent (when it sent one).
 */
export const serverByeSchema = z.strictObject({
  type: z.literal("bye"),
  reason: z.enum(BYE_REASONS),
  registrationNonce: registrationNonce.optional(),
});

/** Any message the server may send. */
export const serverMessageSchema = z.discriminatedUnion("type", [
  challengeSchema,
  registeredSchema,
  endpointSchema,
  introduceSchema,
  introduceRequestSchema,
  candidatesSchema,
  peerLeftSchema,
  pingSchema,
  pongSchema,
  errorSchema,
  serverByeSchema,
]);

/** A message from server to client. */
export type ServerMessage = z.infer<typeof serverMessageSchema>;

/** The server message whose `type` is `T`. */
export type ServerMessageOf<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

/** The client message whose `type` is `T`. */
export type ClientMessageOf<T extends ClientMessage["type"]> = Extract<ClientMessage, { type: T }>;

/** The outcome of parsing a message: the typed message, or a short reason it was refused. */
export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseWith<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, message: result.data };
  const issue = result.error.issues[0];
  const where = issue?.path.length ? issue.path.join(".") : "message";
  return { ok: false, error: `${where}: ${issue?.message ?? "invalid"}`.slice(0, 200) };
}

/**
 * Validates a decoded control body as a client message (strict: unknown fields and types fail).
 *
 * @example
 * ```ts
 * const result = parseClientMessage({ type: "ping", t: 5 });
 * if (result.ok) console.log(result.message.type); // "ping"
 * ```
 */
export function parseClientMessage(value: unknown): ParseResult<ClientMessage> {
  return parseWith(clientMessageSchema, value);
}

/**
 * Validates a decoded control body as a server message (strict).
 *
 * @example
 * ```ts
 * const result = parseServerMessage({ type: "pong", t: 5 });
 * console.log(result.ok); // true
 * ```
 */
export function parseServerMessage(value: unknown): ParseResult<ServerMessage> {
  return parseWith(serverMessageSchema, value);
}
