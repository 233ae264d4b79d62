/**
 * The one error type the port-mapping codecs throw, so a caller can tell a malformed answer
 * from a gateway (to be ignored) from a bug (to be fixed).
 *
 * @module
 */

/** Why an answer could not be decoded. */
export type PortMapDecodeReason =
  | "truncated"
  | "bad-version"
  | "bad-opcode"
  | "bad-length"
  | "bad-value"
  | "too-large"
  | "not-found";

/**
 * Thrown by every decoder in `p2p_client/portmap/` for bytes or text that are not a valid answer.
 *
 * @example
 * ```ts
 * const error = new PortMapDecodeError("truncated", "NAT-PMP answer of 3 bytes");
 * console.log(error.reason); // "truncated"
 * ```
 */
export class PortMapDecodeError extends Error {
  /**
   * @param reason The kind of defect.
   * @param message What was wrong.
   */
  constructor(readonly reason: PortMapDecodeReason, message: string) {
    super(message);
    this.name = "PortMapDecodeError";
  }
}
