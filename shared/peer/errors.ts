/**
 * Typed errors of the peer protocol core.
 *
 * @module
 */

/**
 * A peer packet (PUNCH, HANDSHAKE_INIT, HANDSHAKE_RESPONSE, TRANSPORT) that cannot be parsed.
 *
 * @example
 * ```ts
 * import { decodePunch, PeerPacketError } from "./mod.ts";
 * try {
 *   decodePunch(new Uint8Array(3));
 * } catch (error) {
 *   if (error instanceof PeerPacketError) console.log(error.message);
 * }
 * ```
 */
export class PeerPacketError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the packet.
   */
  constructor(message: string) {
    super(message);
    this.name = "PeerPacketError";
  }
}

/**
 * A frame (the plaintext inside a TRANSPORT packet) that cannot be parsed or encoded.
 *
 * @example
 * ```ts
 * import { decodeFrame, FrameError } from "./mod.ts";
 * try {
 *   decodeFrame(new Uint8Array([0xff]));
 * } catch (error) {
 *   if (error instanceof FrameError) console.log(error.message);
 * }
 * ```
 */
export class FrameError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the frame.
   */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * A secure session that may not seal any more packets (its counter is exhausted or it was
 * closed): the caller must run a new handshake.
 *
 * @example
 * ```ts
 * import { type SecureSession, SessionExpiredError } from "./mod.ts";
 * declare const session: SecureSession;
 * declare function startNewHandshake(): void;
 * try {
 *   await session.seal(new Uint8Array(1));
 * } catch (error) {
 *   if (error instanceof SessionExpiredError) startNewHandshake();
 * }
 * ```
 */
export class SessionExpiredError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why the session is no longer usable.
   */
  constructor(message: string) {
    super(message);
    this.name = "SessionExpiredError";
  }
}

/**
 * A handshake that cannot start: the peer's public key does not match its ID, or a parameter is
 * out of range. (Bad packets from the network never throw: they give `undefined`.)
 *
 * @example
 * ```ts
 * import { HandshakeError, HandshakeInitiator, type HandshakeInitiatorOptions } from "./mod.ts";
 * declare const options: HandshakeInitiatorOptions;
 * const { identity, remoteId, remotePublicKey, localIndex, now } = options;
 * try {
 *   await HandshakeInitiator.start({ identity, remoteId, remotePublicKey, localIndex, now });
 * } catch (error) {
 *   if (error instanceof HandshakeError) console.log(error.message);
 * }
 * ```
 */
export class HandshakeError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why the handshake cannot start.
   */
  constructor(message: string) {
    super(message);
    this.name = "HandshakeError";
  }
}
