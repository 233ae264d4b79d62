/**
 * The plain Deno relay the suite uses as a reference: what a Deno read/write loop costs per
 * relayed frame on this machine, with the same wire format as the C relay (`native/tcp_relay.c`).
 * Each client first sends its raw 20-byte ID, which is echoed back; then relay frames
 * `[u32 length][0x02][20-byte destination ID][payload]` are forwarded with the ID replaced by the
 * source's, rewritten in place in the read buffer. One read, then one awaited write per
 * destination of what that read held: nothing is awaited per message. No limits, no control
 * frames: a floor, not a server.
 *
 * Run: `deno run --allow-net bench/deno_relay.ts PORT` (prints `ready PORT`).
 *
 * @module
 */

const MAX_FRAME = 65_536;
const ID_BYTES = 20;

/** A complete relay frame found in a buffer: where it starts and its total length. */
export interface FrameSpan {
  /** Offset of the frame's length field. */
  start: number;
  /** Header plus body, bytes. */
  length: number;
}

/**
 * Finds the complete frames at the start of `buffer[0, end)`. Returns them and the offset of the
 * first incomplete byte; throws a RangeError on a length field above 65,536 or below 1.
 *
 * @example
 * ```ts
 * const buffer = new Uint8Array([0, 0, 0, 2, 1, 7, 0, 0]);
 * console.log(scanFrames(buffer, buffer.length)); // { frames: [{ start: 0, length: 6 }], consumed: 6 }
 * ```
 */
export function scanFrames(
  buffer: Uint8Array,
  end: number,
): { frames: FrameSpan[]; consumed: number } {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const frames: FrameSpan[] = [];
  let offset = 0;
  while (end - offset >= 5) {
    const length = view.getUint32(offset);
    if (length < 1 || length > MAX_FRAME) throw new RangeError(`bad frame length ${length}`);
    if (end - offset < 4 + length) break;
    frames.push({ start: offset, length: 4 + length });
    offset += 4 + length;
  }
  return { frames, consumed: offset };
}

async function readExactly(conn: Deno.Conn, into: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < into.length) {
    const n = await conn.read(into.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

async function serve(conn: Deno.Conn, byId: Map<string, Deno.Conn>): Promise<void> {
  const id = new Uint8Array(ID_BYTES);
  if (!(await readExactly(conn, id))) return;
  const key = id.toHex();
  byId.set(key, conn);
  await conn.write(id);
  const buffer = new Uint8Array(2 * MAX_FRAME + 64);
  let filled = 0;
  try {
    for (;;) {
      const n = await conn.read(buffer.subarray(filled));
      if (n === null) return;
      filled += n;
      const { frames, consumed } = scanFrames(buffer, filled);
      // Group consecutive frames by destination; rewrite IDs in place.
      let runStart = -1;
      let runEnd = 0;
      let runTarget: Deno.Conn | undefined;
      for (const frame of frames) {
        let target: Deno.Conn | undefined;
        if (buffer[frame.start + 4] === 0x02 && frame.length >= 5 + ID_BYTES + 1) {
          const destination = buffer.subarray(frame.start + 5, frame.start + 5 + ID_BYTES);
          target = byId.get(destination.toHex());
          destination.set(id);
        }
        if (target !== runTarget || frame.start !== runEnd) {
          if (runTarget !== undefined) await writeAll(runTarget, buffer.subarray(runStart, runEnd));
          runStart = frame.start;
          runTarget = target;
        }
        runEnd = frame.start + frame.length;
      }
      if (runTarget !== undefined) await writeAll(runTarget, buffer.subarray(runStart, runEnd));
      buffer.copyWithin(0, consumed, filled);
      filled -= consumed;
    }
  } finally {
    if (byId.get(key) === conn) byId.delete(key);
    conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  try {
    while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
  } catch {
    // the destination went away: its frames are dropped (a reference, not a server)
  }
}

async function main(port: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const byId = new Map<string, Deno.Conn>();
  Deno.stdout.writeSync(
    new TextEncoder().encode(`ready ${(listener.addr as Deno.NetAddr).port}\n`),
  );
  for await (const conn of listener) {
    conn.setNoDelay(true);
    serve(conn, byId).catch(() => {});
  }
}

if (import.meta.main) await main(Number(Deno.args[0] ?? "0"));
