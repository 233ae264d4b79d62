/**
 * Long-term credential checks of TURN requests (RFC 8489 section 9.2.4, RFC 8656 section 5):
 * the 401 challenge with REALM, NONCE and PASSWORD-ALGORITHMS, 438 for a stale nonce, the
 * PASSWORD-ALGORITHM bid-down check, MD5 and SHA-256 keys, MESSAGE-INTEGRITY and
 * MESSAGE-INTEGRITY-SHA256.
 *
 * @module
 */
import {
  AttributeType,
  decodeTextValue,
  getPasswordAlgorithm,
  getPasswordAlgorithms,
  longTermKey,
  PasswordAlgorithm,
  type PasswordAlgorithmEntry,
  type StunMessage,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "../../shared/stun/mod.ts";
import type { TurnCredentialSource } from "./credentials.ts";
import type { NonceIssuer } from "./nonce.ts";

/** The algorithms this server offers, in its order of preference. */
export const OFFERED_ALGORITHMS: readonly PasswordAlgorithmEntry[] = [
  { algorithm: PasswordAlgorithm.Sha256, parameters: new Uint8Array(0) },
  { algorithm: PasswordAlgorithm.Md5, parameters: new Uint8Array(0) },
];

/** An authenticated request: who, and the key to sign the answer with. */
export interface Authenticated {
  /** `true`. */
  ok: true;
  /** The USERNAME. */
  username: string;
  /** The long-term key. */
  key: Uint8Array;
  /** The request used MESSAGE-INTEGRITY-SHA256 (answer with it too). */
  sha256: boolean;
}

/** A refused request: the error to answer. */
export interface Refused {
  /** `false`. */
  ok: false;
  /** 400, 401 or 438. */
  code: 400 | 401 | 438;
  /** Why (for counters and logs; never sent). */
  reason: string;
}

/** Options of {@linkcode authenticate}. */
export interface AuthContext {
  /** The realm. */
  realm: string;
  /** The password directory. */
  credentials: TurnCredentialSource;
  /** Nonce issuer. */
  nonces: NonceIssuer;
  /** Wall-clock ms (for time-limited credentials). */
  wallClock: () => number;
}

function sameAlgorithms(list: readonly PasswordAlgorithmEntry[]): boolean {
  if (list.length !== OFFERED_ALGORITHMS.length) return false;
  return list.every((entry, i) =>
    entry.algorithm === OFFERED_ALGORITHMS[i].algorithm && entry.parameters.length === 0
  );
}

/**
 * Checks a request's long-term credentials.
 *
 * @example
 * ```ts
 * import { authenticate } from "./auth.ts";
 * import { StaticUsers } from "./credentials.ts";
 * import { NonceIssuer } from "./nonce.ts";
 * import { decodeStunMessage } from "../../shared/stun/mod.ts";
 * const verdict = authenticate(
 *   decodeStunMessage(Uint8Array.fromHex("000300002112a442000102030405060708090a0b")),
 *   "192.0.2.1",
 *   { realm: "example.org", credentials: new StaticUsers([]), nonces: new NonceIssuer(new Uint8Array(8), 1000, () => 0), wallClock: () => 0 },
 * );
 * console.log(verdict.ok ? "ok" : verdict.code); // 401
 * ```
 */
export function authenticate(
  message: StunMessage,
  client: string,
  context: AuthContext,
): Authenticated | Refused {
  const integrity = message.get(AttributeType.MessageIntegrity);
  const integritySha256 = message.get(AttributeType.MessageIntegritySha256);
  if (integrity === undefined && integritySha256 === undefined) {
    return { ok: false, code: 401, reason: "no-integrity" };
  }
  const usernameAttribute = message.get(AttributeType.Username);
  const realmAttribute = message.get(AttributeType.Realm);
  const nonceAttribute = message.get(AttributeType.Nonce);
  if (
    usernameAttribute === undefined || realmAttribute === undefined || nonceAttribute === undefined
  ) {
    return { ok: false, code: 400, reason: "missing-username-realm-nonce" };
  }
  let username: string, nonce: string;
  try {
    username = decodeTextValue(AttributeType.Username, usernameAttribute.value);
    nonce = decodeTextValue(AttributeType.Nonce, nonceAttribute.value);
    decodeTextValue(AttributeType.Realm, realmAttribute.value);
  } catch {
    return { ok: false, code: 400, reason: "bad-text" };
  }
  const verdict = context.nonces.check(nonce, client);
  if (verdict !== "valid") return { ok: false, code: 438, reason: `nonce-${verdict}` };

  let algorithm: number = PasswordAlgorithm.Md5;
  try {
    const offered = getPasswordAlgorithms(message);
    const chosen = getPasswordAlgorithm(message);
    if (offered !== undefined || chosen !== undefined) {
      if (offered === undefined || chosen === undefined || !sameAlgorithms(offered)) {
        return { ok: false, code: 400, reason: "password-algorithms-mismatch" };
      }
      if (!OFFERED_ALGORITHMS.some((entry) => entry.algorithm === chosen.algorithm)) {
        return { ok: false, code: 400, reason: "password-algorithm-unknown" };
      }
      algorithm = chosen.algorithm;
    }
  } catch {
    return { ok: false, code: 400, reason: "bad-password-algorithm" };
  }
  const password = context.credentials.passwordFor(username, context.wallClock());
  if (password === undefined) return { ok: false, code: 401, reason: "unknown-user" };
  let key: Uint8Array;
  try {
    key = longTermKey(
      username,
      context.realm,
      password,
      algorithm === PasswordAlgorithm.Sha256 ? "SHA-256" : "MD5",
    );
  } catch {
    return { ok: false, code: 401, reason: "unusable-password" };
  }
  const sha256 = integritySha256 !== undefined;
  const good = sha256
    ? verifyMessageIntegritySha256(message, key)
    : verifyMessageIntegrity(message, key);
  if (!good) return { ok: false, code: 401, reason: "bad-integrity" };
  return { ok: true, username, key, sha256 };
}
