/**
 * Constants of the signaling protocol (version 1): framing limits, frame kinds, default ports
 * and timings. See `docs/protocol.md`, section 2.
 *
 * @module
 */

/** The signaling protocol version this code speaks (`hello.version`, `challenge.version`). */
export const SIGNALING_VERSION = 1;

/** Bytes of the frame header: a big-endian u32 length followed by the kind byte. */
export const FRAME_HEADER_BYTES = 5;

/** Largest allowed value of a frame's length field (kind byte + body). */
export const MAX_FRAME_LENGTH = 65_536;

/** Largest allowed control-frame body (UTF-8 JSON), in bytes. */
export const MAX_CONTROL_BYTES = 16_384;

/** Frame kind of a control frame: the body is one UTF-8 JSON object with a `type`. */
export const FRAME_KIND_CONTROL = 0x01;

/** Frame kind of a relay frame: the body is a 20-byte peer ID followed by an opaque payload. */
export const FRAME_KIND_RELAY = 0x02;

/**
 * Frame kind of a relay-credit frame (client to server, only after `registered.relay.creditBytes`
 * granted credit): the body is a big-endian u32, the relay frame bytes (5-byte headers included)
 * the client has consumed since its previous credit frame.
 */
export const FRAME_KIND_CREDIT = 0x03;

/** Bytes of a relay-credit frame's body. */
export const CREDIT_BODY_BYTES = 4;

/** Bytes of a binary peer ID at the start of a relay frame's body. */
export const RELAY_PEER_ID_BYTES = 20;

/** Largest payload a relay frame can carry (the frame limit minus kind byte and peer ID). */
export const MAX_RELAY_PAYLOAD = MAX_FRAME_LENGTH - 1 - RELAY_PEER_ID_BYTES;

/** Domain-separation prefix of the registration signature (ASCII), followed by the nonce. */
export const REGISTER_SIGNATURE_DOMAIN = "p2p-register/v1";

/** Bytes of the registration challenge nonce. */
export const CHALLENGE_NONCE_BYTES = 32;

/** Most local addresses a client may announce. */
export const MAX_LOCAL_ADDRESSES = 16;

/** Default TCP port of the signaling service. */
export const DEFAULT_TCP_PORT = 3478;

/** Default UDP port of the STUN service. */
export const DEFAULT_STUN_PORT = 54321;

/** Default interval between the server's heartbeat pings, in milliseconds. */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/** A session silent for this many heartbeat intervals is dead. */
export const HEARTBEAT_DEAD_FACTOR = 2.5;

/** Time a connection has to complete registration, in milliseconds. */
export const REGISTRATION_TIMEOUT_MS = 10_000;

/** Invalid frames or messages tolerated on one connection before it is closed. */
export const MAX_PROTOCOL_ERRORS = 3;
