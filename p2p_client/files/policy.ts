/**
 * `--accept-files`: who may send this client files without asking. `ask` (the default on a
 * terminal) shows each offer and waits for `accept <id>` or `reject <id>`; `contacts` accepts from
 * the peers this client itself connected to (`connect <peer>`) and asks for the others; `anyone`
 * accepts every offer; `none` (the default with `--json` unless given) declines every offer.
 * A partial download of the same file from the same peer resumes without asking again.
 *
 * @module
 */
import type { OfferDecision } from "./transfers.ts";

/** The values of `--accept-files`. */
export const ACCEPT_FILES_POLICIES = ["ask", "contacts", "anyone", "none"] as const;

/** One of {@linkcode ACCEPT_FILES_POLICIES}. */
export type AcceptFilesPolicy = typeof ACCEPT_FILES_POLICIES[number];

/**
 * Parses `--accept-files`; throws a `TypeError` naming the allowed values.
 *
 * @example
 * ```ts
 * console.log(parseAcceptFiles("anyone")); // "anyone"
 * ```
 */
export function parseAcceptFiles(value: string): AcceptFilesPolicy {
  if ((ACCEPT_FILES_POLICIES as readonly string[]).includes(value)) {
    return value as AcceptFilesPolicy;
  }
  throw new TypeError(
    `--accept-files must be one of ${ACCEPT_FILES_POLICIES.join(", ")}, got ${
      JSON.stringify(value)
    }`,
  );
}

/**
 * The policy when `--accept-files` is not given: `none` with `--json` (a script must opt in),
 * `ask` otherwise.
 *
 * @example
 * ```ts
 * console.log(defaultAcceptFiles({ json: true })); // "none"
 * ```
 */
export function defaultAcceptFiles(options: { json: boolean }): AcceptFilesPolicy {
  return options.json ? "none" : "ask";
}

/**
 * What to do with an offer from `peer` under `policy`.
 *
 * @example
 * ```ts
 * const connected = new Set(["c0ffee"]);
 * const decision = offerDecision("contacts", "c0ffee", (p) => connected.has(p)); // "accept" or "ask"
 * ```
 */
export function offerDecision(
  policy: AcceptFilesPolicy,
  peer: string,
  isContact: (peer: string) => boolean,
): OfferDecision {
  switch (policy) {
    case "anyone":
      return "accept";
    case "none":
      return "reject";
    case "contacts":
      return isContact(peer) ? "accept" : "ask";
    default:
      return "ask";
  }
}
