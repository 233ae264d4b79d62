/**
 * TURN (RFC 8656) and RFC 5780 constants beyond RFC 8489's: methods, attribute types and error
 * codes. Kept apart from `constants.ts` so a Binding-only agent's notion of "understood
 * comprehension-required attributes" does not silently grow with TURN's.
 *
 * @module
 */

/**
 * TURN methods (RFC 8656 section 18).
 *
 * @example
 * ```ts
 * import { TurnMethod } from "./turn_constants.ts";
 * console.log(TurnMethod.Allocate); // 3
 * ```
 */
export const TurnMethod = {
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

/**
 * TURN attribute types (RFC 8656 section 18, RFC 8489's ADDITIONAL-ADDRESS-FAMILY area) and the
 * RFC 5780 ones not in `AttributeType` (RESPONSE-PORT, PADDING).
 *
 * @example
 * ```ts
 * import { TurnAttributeType } from "./turn_constants.ts";
 * console.log(TurnAttributeType.XorRelayedAddress.toString(16)); // "16"
 * ```
 */
export const TurnAttributeType = {
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  ReservationToken: 0x0022,
  Padding: 0x0026,
  ResponsePort: 0x0027,
  AdditionalAddressFamily: 0x8000,
  AddressErrorCode: 0x8001,
  Icmp: 0x8004,
} as const;

/**
 * TURN error codes (RFC 8656 section 19) and RFC 8489's 300 and 438.
 *
 * @example
 * ```ts
 * import { TurnErrorCodes } from "./turn_constants.ts";
 * console.log(TurnErrorCodes.AllocationMismatch); // 437
 * ```
 */
export const TurnErrorCodes = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthenticated: 401,
  Forbidden: 403,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
  AddressFamilyNotSupported: 440,
  WrongCredentials: 441,
  UnsupportedTransportProtocol: 442,
  PeerAddressFamilyMismatch: 443,
  AllocationQuotaReached: 486,
  ServerError: 500,
  InsufficientCapacity: 508,
} as const;

/** IANA protocol number of UDP, the only REQUESTED-TRANSPORT value RFC 8656 defines. */
export const PROTOCOL_UDP = 17;
/** IANA protocol number of TCP (RFC 6062 TCP allocations). */
export const PROTOCOL_TCP = 6;
