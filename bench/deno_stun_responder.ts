/**
 * The plain Deno STUN responder the suite uses as a reference: what `Deno.listenDatagram` costs
 * per request on this machine with nothing else in the way. It reuses one receive buffer, answers
 * every Binding request (20-byte header, magic cookie, IPv4 source) with XOR-MAPPED-ADDRESS, and
 * does not await its sends. It does no other validation, so it is a floor, not a server.
 *
 * Run: `deno run --allow-net bench/deno_stun_responder.ts PORT` (prints `ready PORT`).
 *
 * @module
 */

const MAGIC_COOKIE = 0x2112a442;

/**
 * Writes a Binding success response with XOR-MAPPED-ADDRESS for `request` from an IPv4 `source`
 * into `out` (32 bytes). Returns false when `request` is not a Binding request.
 *
 * @example
 * ```ts
 * const request = new Uint8Array(20);
 * request.set([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
 * const out = new Uint8Array(32);
 * console.log(writeBindingResponse(request, request.length, "127.0.0.1", 4000, out)); // true
 * ```
 */
export function writeBindingResponse(
  request: Uint8Array,
  length: number,
  hostname: string,
  port: number,
  out: Uint8Array,
): boolean {
  if (length < 20 || request[0] !== 0 || request[1] !== 1) return false;
  const view = new DataView(request.buffer, request.byteOffset, length);
  if (view.getUint32(4) !== MAGIC_COOKIE) return false;
  const parts = hostname.split(".");
  if (parts.length !== 4) return false;
  const o = new DataView(out.buffer, out.byteOffset, 32);
  o.setUint16(0, 0x0101);
  o.setUint16(2, 12);
  out.set(request.subarray(4, 20), 4);
  o.setUint16(20, 0x0020);
  o.setUint16(22, 8);
  o.setUint16(24, 0x0001);
  o.setUint16(26, port ^ (MAGIC_COOKIE >>> 16));
  const address = ((+parts[0] << 24) | (+parts[1] << 16) | (+parts[2] << 8) | +parts[3]) >>> 0;
  o.setUint32(28, (address ^ MAGIC_COOKIE) >>> 0);
  return true;
}

async function main(port: number): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  Deno.stdout.writeSync(new TextEncoder().encode(`ready ${(socket.addr as Deno.NetAddr).port}\n`));
  const buffer = new Uint8Array(1500);
  for (;;) {
    const [data, from] = await socket.receive(buffer);
    const source = from as Deno.NetAddr;
    const out = new Uint8Array(32);
    if (writeBindingResponse(data, data.length, source.hostname, source.port, out)) {
      socket.send(out, source).catch(() => {});
    }
  }
}

if (import.meta.main) await main(Number(Deno.args[0] ?? "0"));
