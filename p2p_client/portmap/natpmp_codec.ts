/**
 * NAT-PMP (RFC 6886) messages: the external-address request and the UDP/TCP mapping request,
 * and their answers. Pure functions on bytes; decoders throw only {@linkcode PortMapDecodeError}.
 *
 * Why: NAT-PMP is the oldest of the three port-mapping protocols and still what many Apple and
 * consumer routers (and miniupnpd) answer; a mapping turns an endpoint-dependent NAT into an
 * open port, so two peers behind hard NATs can still meet directly. Every request is 2 or 12
 * bytes and every answer 12 or 16 (RFC 6886 sections 3.2 and 3.3), sent to the gateway's port
 * 5351.
 *
 * @module
 */
import { PortMapDecodeError } from "./errors.ts";

/** The UDP port a NAT-PMP (and PCP) server listens on (RFC 6886 section 3.1). */
export const NATPMP_PORT = 5351;

/** NAT-PMP's version number, the first byte of every message. */
export const NATPMP_VERSION = 0;

/** NAT-PMP opcodes of requests (answers add 128). */
export const NatPmpOp = {
  ExternalAddress: 0,
  MapUdp: 1,
  MapTcp: 2,
} as const;

/** NAT-PMP result codes (RFC 6886 section 3.5). */
export const NatPmpResult = {
  Success: 0,
  UnsupportedVersion: 1,
  NotAuthorized: 2,
  NetworkFailure: 3,
  OutOfResources: 4,
  UnsupportedOpcode: 5,
} as const;

/** Text of a NAT-PMP result code. */
export function natPmpResultText(code: number): string {
  switch (code) {
    case 0:
      return "success";
    case 1:
      return "unsupported version";
    case 2:
      return "not authorized or refused";
    case 3:
      return "network failure";
    case 4:
      return "out of resources";
    case 5:
      return "unsupported opcode";
    default:
      return `result ${code}`;
  }
}

/**
 * The 2-byte request for the gateway's external address (RFC 6886 section 3.2).
 *
 * @example
 * ```ts
 * console.log(encodeNatPmpExternalAddressRequest()); // Uint8Array(2) [0, 0]
 * ```
 */
export function encodeNatPmpExternalAddressRequest(): Uint8Array {
  return new Uint8Array([NATPMP_VERSION, NatPmpOp.ExternalAddress]);
}

/** A mapping request. */
export interface NatPmpMapRequest {
  /** `udp` or `tcp`. */
  protocol: "udp" | "tcp";
  /** The port on this host. */
  internalPort: number;
  /** The external port asked for (0: any); the gateway may give another. */
  suggestedExternalPort: number;
  /** Requested lifetime in seconds; 0 deletes the mapping. */
  lifetimeSeconds: number;
}

function checkPort(port: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new RangeError(`${what} must be an integer port, got ${port}`);
  }
}

function checkLifetime(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) {
    throw new RangeError(`lifetime must be an integer 0-${0xffffffff} s, got ${seconds}`);
  }
}

/**
 * The 12-byte mapping request (RFC 6886 section 3.3). A lifetime of 0 with suggested port 0
 * deletes the mapping of that internal port (section 3.4).
 *
 * @example
 * ```ts
 * const bytes = encodeNatPmpMapRequest({
 *   protocol: "udp", internalPort: 40000, suggestedExternalPort: 40000, lifetimeSeconds: 7200,
 * });
 * console.log(bytes.toHex()); // "000100009c409c4000001c20"
 * ```
 */
export function encodeNatPmpMapRequest(request: NatPmpMapRequest): Uint8Array {
  checkPort(request.internalPort, "internal port", false);
  checkPort(request.suggestedExternalPort, "suggested external port", true);
  checkLifetime(request.lifetimeSeconds);
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  bytes[0] = NATPMP_VERSION;
  bytes[1] = request.protocol === "udp" ? NatPmpOp.MapUdp : NatPmpOp.MapTcp;
  view.setUint16(4, request.internalPort);
  view.setUint16(6, request.suggestedExternalPort);
  view.setUint32(8, request.lifetimeSeconds);
  return bytes;
}

/** Any NAT-PMP answer. */
export type NatPmpResponse =
  | {
    kind: "external-address";
    resultCode: number;
    /** Seconds since the gateway's port-mapping table was (re)initialised. */
    epochSeconds: number;
    /** The external IPv4 address (`0.0.0.0` on error). */
    externalAddress: string;
  }
  | {
    kind: "map";
    protocol: "udp" | "tcp";
    resultCode: number;
    epochSeconds: number;
    internalPort: number;
    externalPort: number;
    lifetimeSeconds: number;
  }
  | {
    /** An error answer too short for its opcode (some gateways send 8 bytes for errors). */
    kind: "error";
    opcode: number;
    resultCode: number;
    epochSeconds: number;
  };

/**
 * Decodes a NAT-PMP answer.
 *
 * @throws {PortMapDecodeError} for anything that is not a NAT-PMP answer.
 *
 * @example
 * ```ts
 * const answer = Uint8Array.fromHex("0080000000000e10c6120002");
 * const decoded = decodeNatPmpResponse(answer);
 * console.log(decoded.kind === "external-address" && decoded.externalAddress); // "198.18.0.2"
 * ```
 */
export function decodeNatPmpResponse(bytes: Uint8Array): NatPmpResponse {
  if (bytes.length < 8) {
    throw new PortMapDecodeError("truncated", `NAT-PMP answer of ${bytes.length} bytes`);
  }
  if (bytes[0] !== NATPMP_VERSION) {
    throw new PortMapDecodeError("bad-version", `NAT-PMP answer of version ${bytes[0]}`);
  }
  const opcode = bytes[1];
  if (opcode < 128) {
    throw new PortMapDecodeError("bad-opcode", `NAT-PMP request opcode ${opcode}, not an answer`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const resultCode = view.getUint16(2);
  const epochSeconds = view.getUint32(4);
  const op = opcode - 128;
  if (op > 2) throw new PortMapDecodeError("bad-opcode", `NAT-PMP answer opcode ${opcode}`);
  const needed = op === NatPmpOp.ExternalAddress ? 12 : 16;
  if (bytes.length < needed) {
    if (resultCode !== NatPmpResult.Success) {
      return { kind: "error", opcode, resultCode, epochSeconds };
    }
    throw new PortMapDecodeError("truncated", `NAT-PMP answer ${opcode} of ${bytes.length} bytes`);
  }
  if (op === NatPmpOp.ExternalAddress) {
    return {
      kind: "external-address",
      resultCode,
      epochSeconds,
      externalAddress: `${bytes[8]}.${bytes[9]}.${bytes[10]}.${bytes[11]}`,
    };
  }
  return {
    kind: "map",
    protocol: op === NatPmpOp.MapUdp ? "udp" : "tcp",
    resultCode,
    epochSeconds,
    internalPort: view.getUint16(8),
    externalPort: view.getUint16(10),
    lifetimeSeconds: view.getUint32(12),
  };
}
