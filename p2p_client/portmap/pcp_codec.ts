/**
 * PCP (RFC 6887) messages: the ANNOUNCE probe and the MAP request, and their answers. Pure
 * functions on bytes; decoders throw only {@linkcode PortMapDecodeError}.
 *
 * Why: PCP is NAT-PMP's successor (same port 5351, version 2) and the protocol carrier-grade
 * NATs and newer routers speak; a MAP gives a port on the external address for a lifetime the
 * client renews. Requests are a 24-byte header plus a 36-byte MAP payload (RFC 6887 sections
 * 7.1 and 11.1); addresses are always 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
 * A NAT-PMP-only server answers a PCP request with NAT-PMP's "unsupported version" (RFC 6887
 * section 9), which {@linkcode decodePcpResponse} reports as such.
 *
 * @module
 */
import { formatIpAddress, parseIpAddress } from "../../shared/stun/ip.ts";
import { PortMapDecodeError } from "./errors.ts";

/** PCP's version number (RFC 6887 section 9). */
export const PCP_VERSION = 2;

/** Length of the PCP common header. */
export const PCP_HEADER_LENGTH = 24;

/** Length of the MAP opcode payload. */
export const PCP_MAP_LENGTH = 36;

/** The largest PCP message (RFC 6887 section 7). */
export const PCP_MAX_MESSAGE = 1100;

/** PCP opcodes. */
export const PcpOpcode = {
  Announce: 0,
  Map: 1,
  Peer: 2,
} as const;

/** PCP result codes (RFC 6887 section 7.4). */
export const PcpResult = {
  Success: 0,
  UnsuppVersion: 1,
  NotAuthorized: 2,
  MalformedRequest: 3,
  UnsuppOpcode: 4,
  UnsuppOption: 5,
  MalformedOption: 6,
  NetworkFailure: 7,
  NoResources: 8,
  UnsuppProtocol: 9,
  UserExQuota: 10,
  CannotProvideExternal: 11,
  AddressMismatch: 12,
  ExcessiveRemotePeers: 13,
} as const;

const RESULT_TEXT = [
  "success",
  "unsupported version",
  "not authorized",
  "malformed request",
  "unsupported opcode",
  "unsupported option",
  "malformed option",
  "network failure",
  "no resources",
  "unsupported protocol",
  "user exceeded quota",
  "cannot provide external",
  "address mismatch",
  "excessive remote peers",
];

/** Text of a PCP result code. */
export function pcpResultText(code: number): string {
  return RESULT_TEXT[code] ?? `result ${code}`;
}

/** IANA protocol numbers PCP carries. */
const PROTOCOL_NUMBER = { udp: 17, tcp: 6 } as const;

/**
 * Writes an address as PCP's 16-byte field (IPv4 as `::ffff:a.b.c.d`).
 *
 * @example
 * ```ts
 * console.log(pcpAddressBytes("10.0.1.2").toHex()); // "00000000000000000000ffff0a000102"
 * ```
 */
export function pcpAddressBytes(address: string): Uint8Array {
  const bytes = parseIpAddress(address);
  if (bytes === undefined) throw new RangeError(`not an IP address: ${address}`);
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/** Reads PCP's 16-byte address field, IPv4-mapped addresses as plain IPv4. */
function readAddress(bytes: Uint8Array): string {
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[i] === 0;
  return formatIpAddress(mapped ? bytes.subarray(12, 16) : bytes);
}

function header(opcode: number, lifetimeSeconds: number, clientAddress: string, length: number) {
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 0 || lifetimeSeconds > 0xffffffff) {
    throw new RangeError(`lifetime must be an integer 0-${0xffffffff} s, got ${lifetimeSeconds}`);
  }
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  bytes[0] = PCP_VERSION;
  bytes[1] = opcode;
  view.setUint32(4, lifetimeSeconds);
  bytes.set(pcpAddressBytes(clientAddress), 8);
  return { bytes, view };
}

/**
 * The 24-byte ANNOUNCE request: a probe that a PCP server answers with success without creating
 * anything (RFC 6887 section 14.1).
 *
 * @example
 * ```ts
 * const bytes = encodePcpAnnounceRequest("10.0.1.2");
 * console.log(bytes.length, bytes[0], bytes[1]); // 24 2 0
 * ```
 */
export function encodePcpAnnounceRequest(clientAddress: string): Uint8Array {
  return header(PcpOpcode.Announce, 0, clientAddress, PCP_HEADER_LENGTH).bytes;
}

/** A MAP request. */
export interface PcpMapRequest {
  /** The requesting host's own address: it must equal the packet's source address. */
  clientAddress: string;
  /** 12 random bytes that tie the answers and later renewals to this mapping. */
  nonce: Uint8Array;
  /** `udp` or `tcp`. */
  protocol: "udp" | "tcp";
  /** The port on this host. */
  internalPort: number;
  /** The external port asked for (0: any). */
  suggestedExternalPort: number;
  /** The external address asked for (default: any, `::ffff:0.0.0.0`). */
  suggestedExternalAddress?: string;
  /** Requested lifetime in seconds; 0 deletes the mapping. */
  lifetimeSeconds: number;
}

/**
 * The 60-byte MAP request (RFC 6887 section 11.1).
 *
 * @example
 * ```ts
 * const bytes = encodePcpMapRequest({
 *   clientAddress: "10.0.1.2", nonce: new Uint8Array(12).fill(7), protocol: "udp",
 *   internalPort: 40000, suggestedExternalPort: 40000, lifetimeSeconds: 7200,
 * });
 * console.log(bytes.length, bytes[36]); // 60 17
 * ```
 */
export function encodePcpMapRequest(request: PcpMapRequest): Uint8Array {
  if (request.nonce.length !== 12) throw new RangeError("a PCP nonce has 12 bytes");
  for (
    const [port, zero] of [[request.internalPort, false], [request.suggestedExternalPort, true]]
  ) {
    if (!Number.isInteger(port) || (port as number) < (zero ? 0 : 1) || (port as number) > 65535) {
      throw new RangeError(`bad port ${port}`);
    }
  }
  const { bytes, view } = header(
    PcpOpcode.Map,
    request.lifetimeSeconds,
    request.clientAddress,
    PCP_HEADER_LENGTH + PCP_MAP_LENGTH,
  );
  const at = PCP_HEADER_LENGTH;
  bytes.set(request.nonce, at);
  bytes[at + 12] = PROTOCOL_NUMBER[request.protocol];
  view.setUint16(at + 16, request.internalPort);
  view.setUint16(at + 18, request.suggestedExternalPort);
  bytes.set(pcpAddressBytes(request.suggestedExternalAddress ?? "0.0.0.0"), at + 20);
  return bytes;
}

/** A decoded PCP answer. */
export type PcpResponse =
  | {
    kind: "announce";
    resultCode: number;
    lifetimeSeconds: number;
    epochSeconds: number;
  }
  | {
    kind: "map";
    resultCode: number;
    lifetimeSeconds: number;
    epochSeconds: number;
    nonce: Uint8Array;
    protocol: "udp" | "tcp" | number;
    internalPort: number;
    externalPort: number;
    externalAddress: string;
  }
  | {
    /** A NAT-PMP server's "unsupported version" answer: the gateway speaks NAT-PMP only. */
    kind: "natpmp-only";
    resultCode: number;
  }
  | {
    /** An answer to an opcode this codec does not read (PEER), or an error without payload. */
    kind: "other";
    opcode: number;
    resultCode: number;
    lifetimeSeconds: number;
    epochSeconds: number;
  };

/**
 * Decodes a PCP answer.
 *
 * @throws {PortMapDecodeError} for anything that is not a PCP answer.
 *
 * @example
 * ```ts
 * const request = encodePcpAnnounceRequest("10.0.1.2");
 * const answer = request.slice();
 * answer[1] = 0x80; // R bit, ANNOUNCE
 * console.log(decodePcpResponse(answer).kind); // "announce"
 * ```
 */
export function decodePcpResponse(bytes: Uint8Array): PcpResponse {
  if (bytes.length < 4) {
    throw new PortMapDecodeError("truncated", `PCP answer of ${bytes.length} bytes`);
  }
  if (bytes.length > PCP_MAX_MESSAGE) {
    throw new PortMapDecodeError("too-large", `PCP answer of ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] === 0) {
    // NAT-PMP's answer to a version it does not know: version 0, opcode 128 + ours, result 1.
    if (bytes[1] >= 128 && view.getUint16(2) === 1) {
      return { kind: "natpmp-only", resultCode: 1 };
    }
    throw new PortMapDecodeError("bad-version", "a NAT-PMP answer, not PCP");
  }
  if (bytes[0] !== PCP_VERSION) {
    throw new PortMapDecodeError("bad-version", `PCP answer of version ${bytes[0]}`);
  }
  if ((bytes[1] & 0x80) === 0) {
    throw new PortMapDecodeError("bad-opcode", "a PCP request, not an answer");
  }
  if (bytes.length < PCP_HEADER_LENGTH || bytes.length % 4 !== 0) {
    throw new PortMapDecodeError("bad-length", `PCP answer of ${bytes.length} bytes`);
  }
  const opcode = bytes[1] & 0x7f;
  const resultCode = bytes[3];
  const lifetimeSeconds = view.getUint32(4);
  const epochSeconds = view.getUint32(8);
  if (opcode === PcpOpcode.Announce) {
    return { kind: "announce", resultCode, lifetimeSeconds, epochSeconds };
  }
  if (opcode !== PcpOpcode.Map || bytes.length < PCP_HEADER_LENGTH + PCP_MAP_LENGTH) {
    if (opcode === PcpOpcode.Map && resultCode === PcpResult.Success) {
      throw new PortMapDecodeError("truncated", `PCP MAP answer of ${bytes.length} bytes`);
    }
    return { kind: "other", opcode, resultCode, lifetimeSeconds, epochSeconds };
  }
  const at = PCP_HEADER_LENGTH;
  const number = bytes[at + 12];
  return {
    kind: "map",
    resultCode,
    lifetimeSeconds,
    epochSeconds,
    nonce: bytes.slice(at, at + 12),
    protocol: number === 17 ? "udp" : number === 6 ? "tcp" : number,
    internalPort: view.getUint16(at + 16),
    externalPort: view.getUint16(at + 18),
    externalAddress: readAddress(bytes.subarray(at + 20, at + 36)),
  };
}
