/**
 * Identities and peer IDs: Ed25519 key pairs and the 160-bit IDs bound to them.
 *
 * @example
 * ```ts
 * import { Identity, isPeerId } from "./mod.ts";
 * const me = await Identity.generate();
 * console.log(isPeerId(me.id)); // true
 * ```
 *
 * @module
 */
export * from "./peer_id.ts";
export * from "./identity.ts";
