/**
 * Frames: the plaintext inside a TRANSPORT packet. One frame per packet; the first byte is the
 * frame type. Byte layouts are in `docs/protocol.md`, section 3.
 *
 * | type | frame         | body |
 * |------|---------------|------|
 * | 0x01 | DATA          | flags u8, stream u32, seq u48, [message length u32 when FIRST], payload |
 * | 0x02 | ACK           | stream u32, cumulative u48, window u32, range count u8, ranges (offset u32, length u32) |
 * | 0x03 | PATH_PROBE    | nonce (8 bytes) |
 * | 0x04 | PATH_RESPONSE | nonce (8 bytes) |
 * | 0x05 | CLOSE         | reason (UTF-8, at most 256 bytes) |
 * | 0x07 | PMTU_PROBE    | nonce (8 bytes), padding (zero bytes, any length) |
 * | 0x08 | PMTU_ACK      | nonce (8 bytes), probed frame size u32 |
 * | 0x09 | RELAY_ADDRESSES | count u8, then per address family (4/6), IP, port u16 (as CANDIDATES) |
 * | 0x0a | TRAVERSAL     | body (at most 256 bytes: NAT facts, birthday punching; `p2p_client/traversal/`) |
 * | 0x0b | PARAMETERS    | count u8, then per parameter key u8, value u32 (unknown keys are ignored) |
 *
 * Frames fit a 1200-byte TRANSPORT packet ({@linkcode MAX_FRAME_BYTES}) unless the path was probed
 * larger (PMTU_PROBE / PMTU_ACK, RFC 8899): then DATA and PMTU_PROBE frames up to
 * {@linkcode MAX_LARGE_FRAME_BYTES} travel in TRANSPORT_LARGE packets.
 *
 * @module
 */
import { readU32, readU48, writeU32, writeU48 } from "./bytes.ts";
import { FrameError } from "./errors.ts";
import { MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES, MAX_TRANSPORT_PLAINTEXT_BYTES } from "./packet.ts";
import { formatIpAddress, parseIpAddress } from "../stun/ip.ts";

/** Frame type bytes. */
export const FrameType = {
  /** A fragment of a reliable message. */
  Data: 0x01,
  /** Cumulative and selective acknowledgement of DATA frames. */
  Ack: 0x02,
  /** Path validation / keepalive / RTT probe; answered with PATH_RESPONSE. */
  PathProbe: 0x03,
  /** The answer to a PATH_PROBE, echoing its nonce. */
  PathResponse: 0x04,
  /** The sender is closing the connection. */
  Close: 0x05,
  /** A padded probe of the path's packet size (RFC 8899); answered with PMTU_ACK. */
  PmtuProbe: 0x07,
  /** The answer to a PMTU_PROBE: its nonce and the probe frame's size. */
  PmtuAck: 0x08,
  /**
   * The sender's current UDP candidates (a public endpoint learned after the introduction, a
   * new mapping), so a peer already introduced can punch to them.
   */
  Candidates: 0x06,
  /**
   * The sender's TURN relayed addresses (RFC 8656): its peer reaches it through them, and knows
   * not to take them for direct paths.
   */
  RelayAddresses: 0x09,
  /**
   * NAT traversal between the peers (their NAT facts, port-mapped address, birthday punching);
   * the body's codec is the client's (`p2p_client/traversal/codec.ts`).
   */
  Traversal: 0x0a,
  /**
   * Facts about the sender's end a peer sends by, as (key, u32 value) pairs; today
   * {@linkcode ParameterKey.UdpReceiveBuffer}. Keys the receiver does not know are ignored, and
   * a peer that does not know the frame drops it, so any key can be added later.
   */
  Parameters: 0x0b,
} as const;

/** Keys of a PARAMETERS frame. */
export const ParameterKey = {
  /**
   * The sender's UDP receive buffer as its kernel reports it (`SO_RCVBUF`, bytes): on a path of
   * a few milliseconds the data in flight waits there, so a peer keeps within it.
   */
  UdpReceiveBuffer: 0x01,
} as const;

/** Most parameters in one PARAMETERS frame. */
export const MAX_PARAMETERS = 16;

/** Longest TRAVERSAL body. */
export const MAX_TRAVERSAL_BODY_BYTES = 256;

/** Most addresses in a CANDIDATES frame. */
export const MAX_CANDIDATE_ADDRESSES = 16;

/** One of the {@linkcode FrameType} values. */
export type FrameType = typeof FrameType[keyof typeof FrameType];

/** Largest encoded frame: a sealed TRANSPORT packet of this plaintext is 1200 bytes. */
export const MAX_FRAME_BYTES: number = MAX_TRANSPORT_PLAINTEXT_BYTES;

/** Largest frame of all: the plaintext of the largest TRANSPORT_LARGE packet. */
export const MAX_LARGE_FRAME_BYTES: number = MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES;

/** DATA header without the message length: type, flags, stream, seq. */
export const DATA_HEADER_BYTES: number = 1 + 1 + 4 + 6;

/** DATA header of a FIRST fragment, which also carries the message length. */
export const DATA_FIRST_HEADER_BYTES: number = DATA_HEADER_BYTES + 4;

/** Largest payload of a DATA frame in a 1200-byte packet (fragments are cut to this size). */
export const MAX_DATA_PAYLOAD_BYTES: number = MAX_FRAME_BYTES - DATA_FIRST_HEADER_BYTES;

/** Largest payload of a DATA frame in the largest TRANSPORT_LARGE packet. */
export const MAX_LARGE_DATA_PAYLOAD_BYTES: number = MAX_LARGE_FRAME_BYTES - DATA_FIRST_HEADER_BYTES;

/** Size of a PMTU_PROBE frame without padding: type and nonce. */
export const PMTU_PROBE_MIN_BYTES: number = 1 + 8;

/** Size of a PMTU_ACK frame: type, nonce, probed size. */
export const PMTU_ACK_BYTES: number = 1 + 8 + 4;

/** ACK header before its ranges: type, stream, cumulative, window, range count. */
export const ACK_HEADER_BYTES: number = 1 + 4 + 6 + 4 + 1;

/** Most selective-acknowledgement ranges one ACK carries. */
export const MAX_ACK_RANGES: number = 64;

/** Largest sequence number (u48). */
export const MAX_SEQUENCE: number = 2 ** 48 - 1;

/** Size of a PATH_PROBE / PATH_RESPONSE nonce. */
export const PATH_NONCE_BYTES: number = 8;

/** Longest CLOSE reason in UTF-8 bytes. */
export const MAX_CLOSE_REASON_BYTES: number = 256;

const FLAG_FIRST = 0x01;
const FLAG_LAST = 0x02;

/** A fragment of a reliable message. */
export interface DataFrame {
  /** Frame type. */
  type: typeof FrameType.Data;
  /** The sending channel's stream ID (random per channel instance). */
  streamId: number;
  /** Fragment sequence number, counting from 0 per stream. */
  seq: number;
  /** This fragment starts a message (and carries `messageLength`). */
  first: boolean;
  /** This fragment ends a message. */
  last: boolean;
  /** Total length of the message, on FIRST fragments only. */
  messageLength?: number;
  /** Fragment bytes (a view into the decoded buffer). */
  payload: Uint8Array;
}

/** A range of received sequence numbers, `start` inclusive, `end` exclusive. */
export interface AckRange {
  /** First sequence number received. */
  start: number;
  /** One past the last sequence number received. */
  end: number;
}

/** Cumulative and selective acknowledgement. */
export interface AckFrame {
  /** Frame type. */
  type: typeof FrameType.Ack;
  /** The stream acknowledged (the DATA sender's stream ID). */
  streamId: number;
  /** Every sequence number below this was received. */
  cumulative: number;
  /** The sender may have sequence numbers below `cumulative + window` outstanding. */
  window: number;
  /** Received ranges above `cumulative`: ascending, disjoint, non-adjacent, at most 64. */
  ranges: AckRange[];
}

/** A path probe (validation, keepalive, RTT). */
export interface PathProbeFrame {
  /** Frame type. */
  type: typeof FrameType.PathProbe;
  /** 8 random bytes to be echoed. */
  nonce: Uint8Array;
}

/** The answer to a path probe. */
export interface PathResponseFrame {
  /** Frame type. */
  type: typeof FrameType.PathResponse;
  /** The probe's nonce. */
  nonce: Uint8Array;
}

/** The sender is closing. */
export interface CloseFrame {
  /** Frame type. */
  type: typeof FrameType.Close;
  /** Human-readable reason. */
  reason: string;
}

/** A padded probe of the path's packet size. */
export interface PmtuProbeFrame {
  /** Frame type. */
  type: typeof FrameType.PmtuProbe;
  /** 8 bytes echoed in the PMTU_ACK. */
  nonce: Uint8Array;
  /** Size of the whole frame, padding included (at least {@linkcode PMTU_PROBE_MIN_BYTES}). */
  size: number;
}

/** The answer to a PMTU_PROBE. */
export interface PmtuAckFrame {
  /** Frame type. */
  type: typeof FrameType.PmtuAck;
  /** The probe's nonce. */
  nonce: Uint8Array;
  /** The probe frame's size as received. */
  size: number;
}

/** Any frame. */
/** The sender's UDP candidates: `[type][count]` then per address `[4|6][IP][port u16]`. */
export interface CandidatesFrame {
  /** Frame type. */
  type: typeof FrameType.Candidates;
  /** Literal IPs and ports, at most {@linkcode MAX_CANDIDATE_ADDRESSES}. */
  addresses: { host: string; port: number }[];
}

/** The sender's TURN relayed addresses, encoded as {@linkcode CandidatesFrame}. */
export interface RelayAddressesFrame {
  /** Frame type. */
  type: typeof FrameType.RelayAddresses;
  /** Literal IPs and ports, at most {@linkcode MAX_CANDIDATE_ADDRESSES}. */
  addresses: { host: string; port: number }[];
}

/** A NAT-traversal message: `[type][body]`, the body opaque here. */
export interface TraversalFrame {
  /** Frame type. */
  type: typeof FrameType.Traversal;
  /** The body, at most {@linkcode MAX_TRAVERSAL_BODY_BYTES} (a view on decode). */
  body: Uint8Array;
}

/** Facts about the sender's end: `[type][count]` then per parameter `[key u8][value u32]`. */
export interface ParametersFrame {
  /** Frame type. */
  type: typeof FrameType.Parameters;
  /** Keys ({@linkcode ParameterKey}, others kept as they came) and u32 values. */
  parameters: { key: number; value: number }[];
}

/** Any frame. */
export type Frame =
  | DataFrame
  | AckFrame
  | PathProbeFrame
  | PathResponseFrame
  | CloseFrame
  | PmtuProbeFrame
  | PmtuAckFrame
  | CandidatesFrame
  | RelayAddressesFrame
  | TraversalFrame
  | ParametersFrame;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a frame. Throws {@linkcode FrameError} when a field is out of range or the frame would
 * exceed {@linkcode MAX_FRAME_BYTES}.
 *
 * @example
 * ```ts
 * const bytes = encodeFrame({ type: FrameType.PathProbe, nonce: new Uint8Array(8) });
 * console.log(bytes.length); // 9
 * ```
 */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.Data:
      return encodeData(frame);
    case FrameType.Ack:
      return encodeAck(frame);
    case FrameType.PathProbe:
    case FrameType.PathResponse: {
      if (frame.nonce.length !== PATH_NONCE_BYTES) {
        throw new FrameError(`path nonce must be ${PATH_NONCE_BYTES} bytes`);
      }
      const out = new Uint8Array(1 + PATH_NONCE_BYTES);
      out[0] = frame.type;
      out.set(frame.nonce, 1);
      return out;
    }
    case FrameType.Close: {
      const reason = utf8.encode(frame.reason);
      if (reason.length > MAX_CLOSE_REASON_BYTES) {
        throw new FrameError(`close reason longer than ${MAX_CLOSE_REASON_BYTES} bytes`);
      }
      const out = new Uint8Array(1 + reason.length);
      out[0] = FrameType.Close;
      out.set(reason, 1);
      return out;
    }
    case FrameType.PmtuProbe: {
      if (frame.nonce.length !== PATH_NONCE_BYTES) {
        throw new FrameError(`PMTU nonce must be ${PATH_NONCE_BYTES} bytes`);
      }
      if (
        !Number.isInteger(frame.size) || frame.size < PMTU_PROBE_MIN_BYTES ||
        frame.size > MAX_LARGE_FRAME_BYTES
      ) {
        throw new FrameError(`bad PMTU probe size ${frame.size}`);
      }
      const out = new Uint8Array(frame.size);
      out[0] = FrameType.PmtuProbe;
      out.set(frame.nonce, 1);
      return out;
    }
    case FrameType.PmtuAck: {
      if (frame.nonce.length !== PATH_NONCE_BYTES) {
        throw new FrameError(`PMTU nonce must be ${PATH_NONCE_BYTES} bytes`);
      }
      if (!isU32(frame.size)) throw new FrameError(`bad PMTU size ${frame.size}`);
      const out = new Uint8Array(PMTU_ACK_BYTES);
      out[0] = FrameType.PmtuAck;
      out.set(frame.nonce, 1);
      writeU32(out, 9, frame.size);
      return out;
    }
    case FrameType.Candidates:
    case FrameType.RelayAddresses:
      return encodeCandidates(frame);
    case FrameType.Traversal: {
      if (frame.body.length > MAX_TRAVERSAL_BODY_BYTES) {
        throw new FrameError(`TRAVERSAL body longer than ${MAX_TRAVERSAL_BODY_BYTES} bytes`);
      }
      const out = new Uint8Array(1 + frame.body.length);
      out[0] = FrameType.Traversal;
      out.set(frame.body, 1);
      return out;
    }
    case FrameType.Parameters: {
      if (frame.parameters.length > MAX_PARAMETERS) {
        throw new FrameError(`more than ${MAX_PARAMETERS} parameters`);
      }
      const out = new Uint8Array(2 + frame.parameters.length * 5);
      out[0] = FrameType.Parameters;
      out[1] = frame.parameters.length;
      frame.parameters.forEach(({ key, value }, i) => {
        if (!Number.isInteger(key) || key < 0 || key > 0xff) {
          throw new FrameError(`bad parameter key ${key}`);
        }
        if (!isU32(value)) throw new FrameError(`bad parameter value ${value}`);
        out[2 + i * 5] = key;
        writeU32(out, 3 + i * 5, value);
      });
      return out;
    }
    default:
      throw new FrameError(`unknown frame type ${(frame as { type: unknown }).type}`);
  }
}

/**
 * Decodes a frame. Throws {@linkcode FrameError}, and nothing else, for malformed input. A DATA
 * payload and a path nonce are views into `bytes` (no copy).
 *
 * @example
 * ```ts
 * const frame = decodeFrame(encodeFrame({ type: FrameType.PathProbe, nonce: new Uint8Array(8) }));
 * if (frame.type === FrameType.PathProbe) console.log(frame.nonce.length); // 8
 * ```
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length === 0) throw new FrameError("empty frame");
  if (bytes.length > MAX_LARGE_FRAME_BYTES) throw new FrameError(`frame of ${bytes.length} bytes`);
  switch (bytes[0]) {
    case FrameType.Data:
      return decodeData(bytes);
    case FrameType.Ack:
      return decodeAck(bytes);
    case FrameType.PathProbe:
    case FrameType.PathResponse:
      if (bytes.length !== 1 + PATH_NONCE_BYTES) throw new FrameError("bad path frame length");
      return { type: bytes[0], nonce: bytes.subarray(1) };
    case FrameType.Close: {
      if (bytes.length - 1 > MAX_CLOSE_REASON_BYTES) throw new FrameError("close reason too long");
      try {
        return { type: FrameType.Close, reason: strictUtf8.decode(bytes.subarray(1)) };
      } catch {
        throw new FrameError("close reason is not UTF-8");
      }
    }
    case FrameType.PmtuProbe:
      if (bytes.length < PMTU_PROBE_MIN_BYTES) throw new FrameError("truncated PMTU probe");
      for (let i = PMTU_PROBE_MIN_BYTES; i < bytes.length; i++) {
        if (bytes[i] !== 0) throw new FrameError("PMTU probe padding is not zero");
      }
      return { type: FrameType.PmtuProbe, nonce: bytes.subarray(1, 9), size: bytes.length };
    case FrameType.PmtuAck:
      if (bytes.length !== PMTU_ACK_BYTES) throw new FrameError("bad PMTU ACK length");
      return { type: FrameType.PmtuAck, nonce: bytes.subarray(1, 9), size: readU32(bytes, 9) };
    case FrameType.Candidates:
    case FrameType.RelayAddresses:
      return decodeCandidates(bytes);
    case FrameType.Traversal:
      if (bytes.length - 1 > MAX_TRAVERSAL_BODY_BYTES) throw new FrameError("TRAVERSAL too long");
      return { type: FrameType.Traversal, body: bytes.subarray(1) };
    case FrameType.Parameters: {
      const count = bytes[1];
      if (bytes.length < 2 || count > MAX_PARAMETERS || bytes.length !== 2 + count * 5) {
        throw new FrameError("bad PARAMETERS length");
      }
      const parameters = [];
      for (let i = 0; i < count; i++) {
        parameters.push({ key: bytes[2 + i * 5], value: readU32(bytes, 3 + i * 5) });
      }
      return { type: FrameType.Parameters, parameters };
    }
    default:
      throw new FrameError(`unknown frame type 0x${bytes[0].toString(16).padStart(2, "0")}`);
  }
}

function encodeCandidates(frame: CandidatesFrame | RelayAddressesFrame): Uint8Array {
  if (frame.addresses.length > MAX_CANDIDATE_ADDRESSES) {
    throw new FrameError(`more than ${MAX_CANDIDATE_ADDRESSES} candidates`);
  }
  const out = new Uint8Array(2 + frame.addresses.length * 19);
  out[0] = frame.type;
  out[1] = frame.addresses.length;
  let offset = 2;
  for (const { host, port } of frame.addresses) {
    const ip = parseIpAddress(host);
    if (!ip || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new FrameError(`bad candidate ${host}:${port}`);
    }
    out[offset] = ip.length === 4 ? 4 : 6;
    out.set(ip, offset + 1);
    offset += 1 + ip.length;
    out[offset] = port >> 8;
    out[offset + 1] = port & 0xff;
    offset += 2;
  }
  return out.slice(0, offset);
}

function decodeCandidates(bytes: Uint8Array): CandidatesFrame | RelayAddressesFrame {
  if (bytes.length < 2) throw new FrameError("truncated CANDIDATES frame");
  const count = bytes[1];
  if (count > MAX_CANDIDATE_ADDRESSES) throw new FrameError("too many candidates");
  const addresses: { host: string; port: number }[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const family = bytes[offset];
    const length = family === 4 ? 4 : family === 6 ? 16 : 0;
    if (length === 0 || offset + 1 + length + 2 > bytes.length) {
      throw new FrameError("bad CANDIDATES entry");
    }
    const host = formatIpAddress(bytes.subarray(offset + 1, offset + 1 + length));
    offset += 1 + length;
    const port = (bytes[offset] << 8) | bytes[offset + 1];
    offset += 2;
    if (port === 0) throw new FrameError("candidate port 0");
    addresses.push({ host, port });
  }
  if (offset !== bytes.length) throw new FrameError("bad CANDIDATES length");
  return bytes[0] === FrameType.RelayAddresses
    ? { type: FrameType.RelayAddresses, addresses }
    : { type: FrameType.Candidates, addresses };
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

function isSequence(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_SEQUENCE;
}

/**
 * Encodes the header of a DATA frame only (validated as {@linkcode encodeFrame} does): the whole
 * frame is these bytes followed by `frame.payload`, which the caller seals in place of a copy
 * (`SecureSession.sealPartsSync`).
 *
 * @example
 * ```ts
 * const payload = new Uint8Array(100);
 * const head = encodeDataHead({ type: FrameType.Data, streamId: 1, seq: 0, first: true, last: true, messageLength: 100, payload });
 * console.log(head.length); // 16
 * ```
 */
export function encodeDataHead(frame: DataFrame): Uint8Array {
  return encodeData(frame, false);
}

function encodeData(frame: DataFrame, withPayload = true): Uint8Array {
  if (!isU32(frame.streamId)) throw new FrameError(`bad stream ID ${frame.streamId}`);
  if (!isSequence(frame.seq)) throw new FrameError(`bad sequence number ${frame.seq}`);
  const headerBytes = frame.first ? DATA_FIRST_HEADER_BYTES : DATA_HEADER_BYTES;
  if (frame.first) {
    if (frame.messageLength === undefined || !isU32(frame.messageLength)) {
      throw new FrameError("a FIRST fragment needs a u32 messageLength");
    }
  } else if (frame.messageLength !== undefined) {
    throw new FrameError("only a FIRST fragment carries messageLength");
  }
  checkDataPayload(frame.first, frame.last, frame.messageLength, frame.payload.length);
  const out = new Uint8Array(headerBytes + (withPayload ? frame.payload.length : 0));
  out[0] = FrameType.Data;
  out[1] = (frame.first ? FLAG_FIRST : 0) | (frame.last ? FLAG_LAST : 0);
  writeU32(out, 2, frame.streamId);
  writeU48(out, 6, frame.seq);
  if (frame.first) writeU32(out, DATA_HEADER_BYTES, frame.messageLength as number);
  if (withPayload) out.set(frame.payload, headerBytes);
  return out;
}

function checkDataPayload(
  first: boolean,
  last: boolean,
  messageLength: number | undefined,
  payloadLength: number,
): void {
  if (payloadLength > MAX_LARGE_DATA_PAYLOAD_BYTES) {
    throw new FrameError(`DATA payload of ${payloadLength} bytes`);
  }
  if (first && messageLength !== undefined) {
    if (payloadLength > messageLength) throw new FrameError("payload longer than the message");
    if (last && payloadLength !== messageLength) {
      throw new FrameError("single-fragment message with a wrong length");
    }
    if (messageLength > 0 && payloadLength === 0) throw new FrameError("empty FIRST fragment");
  } else if (payloadLength === 0) {
    throw new FrameError("empty DATA fragment");
  }
}

function decodeData(bytes: Uint8Array): DataFrame {
  if (bytes.length < DATA_HEADER_BYTES) throw new FrameError("truncated DATA frame");
  const flags = bytes[1];
  if ((flags & ~(FLAG_FIRST | FLAG_LAST)) !== 0) throw new FrameError("unknown DATA flags");
  const first = (flags & FLAG_FIRST) !== 0;
  const last = (flags & FLAG_LAST) !== 0;
  const streamId = readU32(bytes, 2);
  const seq = readU48(bytes, 6);
  if (first) {
    if (bytes.length < DATA_FIRST_HEADER_BYTES) throw new FrameError("truncated DATA frame");
    const messageLength = readU32(bytes, DATA_HEADER_BYTES);
    const payload = bytes.subarray(DATA_FIRST_HEADER_BYTES);
    checkDataPayload(true, last, messageLength, payload.length);
    return { type: FrameType.Data, streamId, seq, first, last, messageLength, payload };
  }
  const payload = bytes.subarray(DATA_HEADER_BYTES);
  checkDataPayload(false, last, undefined, payload.length);
  return { type: FrameType.Data, streamId, seq, first, last, payload };
}

function encodeAck(frame: AckFrame): Uint8Array {
  if (!isU32(frame.streamId)) throw new FrameError(`bad stream ID ${frame.streamId}`);
  if (!isSequence(frame.cumulative)) throw new FrameError(`bad cumulative ${frame.cumulative}`);
  if (!isU32(frame.window)) throw new FrameError(`bad window ${frame.window}`);
  if (frame.ranges.length > MAX_ACK_RANGES) throw new FrameError("too many ACK ranges");
  checkRanges(frame.cumulative, frame.ranges);
  const out = new Uint8Array(ACK_HEADER_BYTES + 8 * frame.ranges.length);
  out[0] = FrameType.Ack;
  writeU32(out, 1, frame.streamId);
  writeU48(out, 5, frame.cumulative);
  writeU32(out, 11, frame.window);
  out[15] = frame.ranges.length;
  let offset = ACK_HEADER_BYTES;
  for (const range of frame.ranges) {
    writeU32(out, offset, range.start - frame.cumulative);
    writeU32(out, offset + 4, range.end - range.start);
    offset += 8;
  }
  return out;
}

function checkRanges(cumulative: number, ranges: readonly AckRange[]): void {
  let floor = cumulative; // the next range must start above this (a gap is required)
  for (const { start, end } of ranges) {
    if (!isSequence(start) || !isSequence(end) || start <= floor || end <= start) {
      throw new FrameError("ACK ranges must be ascending, disjoint and above the cumulative");
    }
    if (start - cumulative > 0xffff_ffff || end - start > 0xffff_ffff) {
      throw new FrameError("ACK range too far from the cumulative");
    }
    floor = end;
  }
}

function decodeAck(bytes: Uint8Array): AckFrame {
  if (bytes.length < ACK_HEADER_BYTES) throw new FrameError("truncated ACK frame");
  const count = bytes[15];
  if (count > MAX_ACK_RANGES) throw new FrameError("too many ACK ranges");
  if (bytes.length !== ACK_HEADER_BYTES + 8 * count) throw new FrameError("bad ACK length");
  const cumulative = readU48(bytes, 5);
  const ranges: AckRange[] = [];
  let offset = ACK_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const start = cumulative + readU32(bytes, offset);
    ranges.push({ start, end: start + readU32(bytes, offset + 4) });
    offset += 8;
  }
  checkRanges(cumulative, ranges);
  return {
    type: FrameType.Ack,
    streamId: readU32(bytes, 1),
    cumulative,
    window: readU32(bytes, 11),
    ranges,
  };
}
