/**
 * Error codes and reasons of the signaling protocol, and the typed error the codec throws.
 *
 * @module
 */

/** Every `error.code` the server sends. See `docs/protocol.md` for when each is used. */
export const ERROR_CODES = [
  "bad-frame",
  "bad-message",
  "frame-too-large",
  "unsupported-version",
  "not-registered",
  "auth-failed",
  "unknown-peer",
  "rate-limited",
  "relay-quota",
  "relay-queue-full",
  "relay-not-brokered",
  "peer-offline",
  "server-full",
  "too-many-connections",
  "timeout",
  "internal",
  "cluster-unavailable",
  "server-busy",
  "bad-puzzle",
] as const;

/** An `error.code` value. */
export type ErrorCode = typeof ERROR_CODES[number];

/** Every `bye.reason` the server sends. */
export const BYE_REASONS = [
  "server-shutdown",
  "replaced",
  "protocol-error",
  "timeout",
  "evicted",
] as const;

/** A server `bye.reason` value. */
export type ByeReason = typeof BYE_REASONS[number];

/** Every `peer-left.reason` value. */
export const PEER_LEFT_REASONS = ["disconnected", "timeout", "replaced", "dropped"] as const;

/** A `peer-left.reason` value. */
export type PeerLeftReason = typeof PEER_LEFT_REASONS[number];

/** The codes a {@linkcode FrameError} can carry. */
export type FrameErrorCode = "bad-frame" | "frame-too-large";

/**
 * A framing violation found while decoding or encoding signaling frames.
 *
 * @example
 * ```ts
 * try {
 *   throw new FrameError("frame-too-large", "length 70000 above 65536");
 * } catch (e) {
 *   if (e instanceof FrameError) console.log(e.code); // "frame-too-large"
 * }
 * ```
 */
export class FrameError extends Error {
  /** The protocol error code matching this violation. */
  readonly code: FrameErrorCode;

  /**
   * Creates a framing error.
   *
   * @example
   * ```ts
   * const error = new FrameError("bad-frame", "empty frame");
   * console.log(error.code);
   * ```
   */
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.name = "FrameError";
    this.code = code;
  }
}
