/**
 * The {@linkcode StunBindingCodec} over `shared/stun`: authenticated Binding requests (USERNAME,
 * short-term MESSAGE-INTEGRITY, FINGERPRINT) and their responses.
 *
 * @module
 */
import {
  addFingerprint,
  addMessageIntegrity,
  addUsername,
  decodeStunMessage,
  getErrorCode,
  getXorMappedAddress,
  shortTermKey,
  StunClass,
  StunDecodeError,
  StunMessageWriter,
  StunMethod,
  unmapIpv4,
  verifyFingerprint,
  verifyMessageIntegrity,
} from "../shared/stun/mod.ts";
import { encodeFreshness, P2P_FRESHNESS_ATTRIBUTE } from "../shared/stun/freshness.ts";
import type { StunBindingCodec } from "./stun_client.ts";

/**
 * The P2P-FRESHNESS counter of this process: strictly increasing across every request encoded,
 * so the server can refuse a captured request replayed from another address (issue 11). A
 * retransmission reuses its request's bytes, counter included.
 */
let freshnessCounter = 0n;

/**
 * Encodes and checks the client's Binding transactions.
 *
 * @example
 * ```ts
 * const request = stunBindingCodec.encodeRequest(new Uint8Array(12), "user", "password");
 * console.log(request[0], request[1]); // 0 1 (Binding request)
 * ```
 */
export const stunBindingCodec: StunBindingCodec = {
  encodeRequest(transactionId, username, password) {
    const writer = new StunMessageWriter(512);
    writer.start(StunMethod.Binding, StunClass.Request, transactionId);
    addUsername(writer, username);
    writer.addAttribute(P2P_FRESHNESS_ATTRIBUTE, encodeFreshness(++freshnessCounter));
    addMessageIntegrity(writer, shortTermKey(password));
    addFingerprint(writer);
    return writer.bytes().slice();
  },
  decodeResponse(bytes, password) {
    // Anything malformed (a StunDecodeError from decoding or from an attribute) is not a response.
    try {
      const message = decodeStunMessage(bytes);
      if (message.method !== StunMethod.Binding) return undefined;
      const transactionId = message.transactionId.slice();
      if (message.messageClass === StunClass.ErrorResponse) {
        return { transactionId, errorCode: getErrorCode(message)?.code ?? 0 };
      }
      if (message.messageClass !== StunClass.SuccessResponse) return undefined;
      if (!verifyFingerprint(message)) return undefined;
      if (!verifyMessageIntegrity(message, shortTermKey(password))) return undefined;
      const mapped = getXorMappedAddress(message);
      if (!mapped) return undefined;
      return { transactionId, mapped: { host: unmapIpv4(mapped.hostname), port: mapped.port } };
    } catch (error) {
      if (error instanceof StunDecodeError) return undefined;
      throw error;
    }
  },
};
