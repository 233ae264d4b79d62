/**
 * The bodies of TRAVERSAL frames (`shared/peer/frames.ts`, type 0x0a): what two peers tell each
 * other, inside their authenticated session, to get past hard NATs without the server's help
 * (the server stays a broker that knows nothing of NAT classes):
 *
 * | type | message        | body |
 * |------|----------------|------|
 * | 1    | NAT_INFO       | udp u8 (0 unknown, 1 reachable, 2 blocked), mapping u8, filtering u8, has-mapped u8, [address] |
 * | 2    | BIRTHDAY_START | attempt u32, key (32 bytes), the easy side's public endpoint (address) |
 * | 3    | BIRTHDAY_STOP  | attempt u32 |
 *
 * An address is `family (4|6) | IP (4|16 bytes) | port u16`. Behaviours are indexes into
 * {@linkcode MAPPINGS} and {@linkcode FILTERINGS}.
 *
 * The birthday key travels sealed in the session (never in the clear), so only the two peers can
 * make probes the other accepts.
 *
 * @module
 */
import { formatIpAddress, parseIpAddress } from "../../shared/stun/ip.ts";
import type { FilteringBehaviour, MappingBehaviour } from "../nat_probe/classify.ts";
import type { UdpAddress } from "../path_manager.ts";

/** Mapping behaviours, by wire index. */
export const MAPPINGS: readonly MappingBehaviour[] = [
  "unknown",
  "endpoint-independent",
  "address-dependent",
  "address-and-port-dependent",
  "endpoint-dependent",
];

/** Filtering behaviours, by wire index. */
export const FILTERINGS: readonly FilteringBehaviour[] = [
  "unknown",
  "endpoint-independent",
  "address-dependent",
  "address-and-port-dependent",
];

/** Length of a birthday key. */
export const BIRTHDAY_KEY_BYTES = 32;

/** One side's NAT facts, as sent to the peer. */
export interface NatInfo {
  /** Could it reach the server's STUN port over UDP? */
  udp: "unknown" | "reachable" | "blocked";
  /** Its NAT's mapping behaviour (RFC 4787). */
  mapping: MappingBehaviour;
  /** Its NAT's filtering behaviour. */
  filtering: FilteringBehaviour;
  /** The address its gateway maps to its socket (PCP / NAT-PMP / UPnP-IGD), if any. */
  mapped?: UdpAddress;
}

/** A TRAVERSAL message. */
export type TraversalMessage =
  | ({ type: "nat-info" } & NatInfo)
  | { type: "birthday-start"; attempt: number; key: Uint8Array; easy: UdpAddress }
  | { type: "birthday-stop"; attempt: number };

const UDP = ["unknown", "reachable", "blocked"] as const;

function encodeAddress(address: UdpAddress): Uint8Array {
  const ip = parseIpAddress(address.host);
  if (!ip || !Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) {
    throw new RangeError(`bad address ${address.host}:${address.port}`);
  }
  const out = new Uint8Array(1 + ip.length + 2);
  out[0] = ip.length === 4 ? 4 : 6;
  out.set(ip, 1);
  out[1 + ip.length] = address.port >> 8;
  out[2 + ip.length] = address.port & 0xff;
  return out;
}

function decodeAddress(bytes: Uint8Array, offset: number): [UdpAddress, number] | undefined {
  const family = bytes[offset];
  const length = family === 4 ? 4 : family === 6 ? 16 : 0;
  if (length === 0 || offset + 1 + length + 2 > bytes.length) return undefined;
  const host = formatIpAddress(bytes.subarray(offset + 1, offset + 1 + length));
  const port = (bytes[offset + 1 + length] << 8) | bytes[offset + 2 + length];
  if (port === 0) return undefined;
  return [{ host, port }, offset + 3 + length];
}

function u32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`bad attempt number ${value}`);
  }
  return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) >>> 0) + (bytes[offset + 1] << 16) + (bytes[offset + 2] << 8) +
    bytes[offset + 3];
}

/**
 * Encodes a TRAVERSAL body. Throws `RangeError` for an out-of-range field.
 *
 * @example
 * ```ts
 * const body = encodeTraversal({
 *   type: "nat-info", udp: "reachable", mapping: "endpoint-independent",
 *   filtering: "address-and-port-dependent",
 * });
 * console.log(body.length); // 5
 * ```
 */
export function encodeTraversal(message: TraversalMessage): Uint8Array {
  switch (message.type) {
    case "nat-info": {
      const mapping = MAPPINGS.indexOf(message.mapping);
      const filtering = FILTERINGS.indexOf(message.filtering);
      if (mapping < 0 || filtering < 0) throw new RangeError("unknown NAT behaviour");
      const head = [1, UDP.indexOf(message.udp), mapping, filtering, message.mapped ? 1 : 0];
      const address = message.mapped ? encodeAddress(message.mapped) : new Uint8Array(0);
      const out = new Uint8Array(head.length + address.length);
      out.set(head, 0);
      out.set(address, head.length);
      return out;
    }
    case "birthday-start": {
      if (message.key.length !== BIRTHDAY_KEY_BYTES) throw new RangeError("bad birthday key");
      const address = encodeAddress(message.easy);
      const out = new Uint8Array(1 + 4 + BIRTHDAY_KEY_BYTES + address.length);
      out[0] = 2;
      out.set(u32(message.attempt), 1);
      out.set(message.key, 5);
      out.set(address, 5 + BIRTHDAY_KEY_BYTES);
      return out;
    }
    case "birthday-stop": {
      const out = new Uint8Array(5);
      out[0] = 3;
      out.set(u32(message.attempt), 1);
      return out;
    }
  }
}

/**
 * Decodes a TRAVERSAL body; `undefined` for anything malformed (never throws).
 *
 * @example
 * ```ts
 * const body = encodeTraversal({ type: "birthday-stop", attempt: 7 });
 * console.log(decodeTraversal(body)); // { type: "birthday-stop", attempt: 7 }
 * console.log(decodeTraversal(new Uint8Array([9]))); // undefined
 * ```
 */
export function decodeTraversal(body: Uint8Array): TraversalMessage | undefined {
  try {
    switch (body[0]) {
      case 1: {
        if (body.length < 5) return undefined;
        const udp = UDP[body[1]];
        const mapping = MAPPINGS[body[2]];
        const filtering = FILTERINGS[body[3]];
        if (udp === undefined || mapping === undefined || filtering === undefined) return undefined;
        if (body[4] > 1) return undefined;
        if (body[4] === 0) {
          return body.length === 5 ? { type: "nat-info", udp, mapping, filtering } : undefined;
        }
        const decoded = decodeAddress(body, 5);
        if (decoded === undefined || decoded[1] !== body.length) return undefined;
        return { type: "nat-info", udp, mapping, filtering, mapped: decoded[0] };
      }
      case 2: {
        if (body.length < 5 + BIRTHDAY_KEY_BYTES) return undefined;
        const decoded = decodeAddress(body, 5 + BIRTHDAY_KEY_BYTES);
        if (decoded === undefined || decoded[1] !== body.length) return undefined;
        return {
          type: "birthday-start",
          attempt: readU32(body, 1),
          key: body.slice(5, 5 + BIRTHDAY_KEY_BYTES),
          easy: decoded[0],
        };
      }
      case 3:
        return body.length === 5 ? { type: "birthday-stop", attempt: readU32(body, 1) } : undefined;
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}
