/**
 * The lab's probe: a small UDP/TCP tool run inside a namespace (`ip netns exec ... deno run
 * natlab/udp_probe.ts`) to show what a NAT does.
 *
 * Flags: `--udp HOST:PORT` (repeatable; port 0 for an ephemeral one), `--tcp HOST:PORT` (a TCP
 * listener), `--echo` (answer each datagram or TCP line with `seen <source address>`),
 * `--lifetime-ms N` (exit after N ms; default 120000).
 *
 * Commands on stdin, one per line: `send <socket> <host:port> <text>`,
 * `burst <socket> <host:port> <count> <prefix>` (sends `<prefix>-0` ...), `tcp <host:port> <text>`
 * (connect, send one line, read one line back), `exit`.
 *
 * Events on stdout, one JSON object per line: `{"type":"ready","udp":[...],"tcp":...}`,
 * `{"type":"recv","socket":i,"from":"ip:port","text":...}`,
 * `{"type":"tcp-accept","from":"ip:port","text":...}`, `{"type":"tcp-reply","text":...}`,
 * `{"type":"error","message":...}`.
 *
 * @module
 */

import { readLines } from "./json_lines.ts";

/** The probe's settings. */
export interface ProbeOptions {
  /** UDP sockets to bind. */
  udp: { hostname: string; port: number }[];
  /** A TCP listener to open, if any. */
  tcp: { hostname: string; port: number } | undefined;
  /** Answer what arrives with `seen <source>`. */
  echo: boolean;
  /** Exit after this many milliseconds. */
  lifetimeMs: number;
}

/** Thrown for a bad probe argument or command. */
export class ProbeUsageError extends Error {
  /** @param message What is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProbeUsageError";
  }
}

const MAX_DATAGRAMS_PER_SOCKET = 100_000;
const MAX_BURST = 10_000;
const MAX_TCP_LINE = 4096;
const TCP_TIMEOUT_MS = 10_000;

/**
 * Parses `HOST:PORT` (IPv4 or a name; the last colon splits).
 *
 * @example
 * ```ts
 * parseHostPort("198.18.0.1:3478"); // { hostname: "198.18.0.1", port: 3478 }
 * ```
 */
export function parseHostPort(text: string): { hostname: string; port: number } {
  const colon = text.lastIndexOf(":");
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ProbeUsageError(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  }
  return { hostname: text.slice(0, colon), port };
}

/**
 * Parses the probe's command line.
 *
 * @example
 * ```ts
 * parseProbeArgs(["--udp", "0.0.0.0:0", "--echo"]).echo; // true
 * ```
 */
export function parseProbeArgs(args: readonly string[]): ProbeOptions {
  const options: ProbeOptions = { udp: [], tcp: undefined, echo: false, lifetimeMs: 120_000 };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new ProbeUsageError(`${flag} needs a value`);
      return next;
    };
    if (flag === "--udp") options.udp.push(parseHostPort(value()));
    else if (flag === "--tcp") options.tcp = parseHostPort(value());
    else if (flag === "--echo") options.echo = true;
    else if (flag === "--lifetime-ms") {
      const ms = Number(value());
      if (!Number.isInteger(ms) || ms <= 0) throw new ProbeUsageError("bad --lifetime-ms");
      options.lifetimeMs = ms;
    } else throw new ProbeUsageError(`unknown argument ${flag}`);
  }
  if (options.udp.length === 0 && options.tcp === undefined) {
    throw new ProbeUsageError("nothing to open: give --udp and/or --tcp");
  }
  return options;
}

function formatAddr(addr: Deno.Addr): string {
  return addr.transport === "udp" || addr.transport === "tcp"
    ? `${addr.hostname}:${addr.port}`
    : String(addr.transport);
}

/** Where the probe's events go and its commands come from. */
export interface ProbeIo {
  /** Command lines. */
  commands: AsyncIterable<string>;
  /** Writes one event. */
  emit: (event: Record<string, unknown>) => void;
}

/**
 * Runs the probe until `exit`, the end of the commands, or its lifetime.
 *
 * @example
 * ```ts
 * const lines = async function* () { yield "exit"; };
 * await runProbe(parseProbeArgs(["--udp", "127.0.0.1:0"]), {
 *   commands: lines(),
 *   emit: (event) => console.log(JSON.stringify(event)),
 * });
 * ```
 */
export async function runProbe(options: ProbeOptions, io: ProbeIo): Promise<void> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const sockets = options.udp.map((addr) =>
    Deno.listenDatagram({ transport: "udp", hostname: addr.hostname, port: addr.port })
  );
  const listener = options.tcp === undefined
    ? undefined
    : Deno.listen({ transport: "tcp", hostname: options.tcp.hostname, port: options.tcp.port });
  let stopping = false;
  const tasks: Promise<void>[] = [];
  for (const [index, socket] of sockets.entries()) {
    tasks.push((async () => {
      try {
        for (let n = 0; n < MAX_DATAGRAMS_PER_SOCKET; n++) {
          const [data, from] = await socket.receive();
          const text = decoder.decode(data);
          io.emit({ type: "recv", socket: index, from: formatAddr(from), text });
          if (options.echo) {
            await socket.send(encoder.encode(`seen ${formatAddr(from)}`), from);
          }
        }
      } catch (error) {
        if (!stopping) io.emit({ type: "error", message: String(error) });
      }
    })());
  }
  if (listener !== undefined) {
    tasks.push((async () => {
      try {
        for (let n = 0; n < 1000; n++) {
          const conn = await listener.accept();
          try {
            const line = await readTcpLine(conn);
            io.emit({ type: "tcp-accept", from: formatAddr(conn.remoteAddr), text: line });
            if (options.echo) {
              await conn.write(encoder.encode(`seen ${formatAddr(conn.remoteAddr)}\n`));
            }
          } catch (error) {
            io.emit({ type: "error", message: String(error) });
          } finally {
            conn.close();
          }
        }
      } catch (error) {
        if (!stopping) io.emit({ type: "error", message: String(error) });
      }
    })());
  }
  io.emit({
    type: "ready",
    udp: sockets.map((s) => formatAddr(s.addr)),
    tcp: listener === undefined ? null : formatAddr(listener.addr),
  });
  let lifetimeTimer: ReturnType<typeof setTimeout> | undefined;
  const lifetime = new Promise<"lifetime">((resolve) => {
    lifetimeTimer = setTimeout(() => resolve("lifetime"), options.lifetimeMs);
  });
  const commands = (async () => {
    for await (const line of io.commands) {
      if (line.trim() === "exit") return;
      try {
        await runCommandLine(line, sockets, io, encoder);
      } catch (error) {
        io.emit({ type: "error", message: String(error) });
      }
    }
  })();
  await Promise.race([commands, lifetime]);
  clearTimeout(lifetimeTimer);
  stopping = true;
  for (const socket of sockets) socket.close();
  listener?.close();
  await Promise.allSettled(tasks);
}

async function readTcpLine(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(MAX_TCP_LINE);
  let length = 0;
  const timer = setTimeout(() => conn.close(), TCP_TIMEOUT_MS);
  try {
    while (length < buffer.length) {
      const n = await conn.read(buffer.subarray(length));
      if (n === null) break;
      length += n;
      if (buffer.subarray(0, length).includes(10)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  const text = new TextDecoder().decode(buffer.subarray(0, length));
  return text.split("\n")[0];
}

async function runCommandLine(
  line: string,
  sockets: Deno.DatagramConn[],
  io: ProbeIo,
  encoder: TextEncoder,
): Promise<void> {
  const [verb, ...rest] = line.trim().split(" ");
  const socketAt = (text: string | undefined) => {
    const socket = sockets[Number(text)];
    if (socket === undefined) throw new ProbeUsageError(`no socket ${text}`);
    return socket;
  };
  if (verb === "send" && rest.length >= 3) {
    const target = parseHostPort(rest[1]);
    await socketAt(rest[0]).send(encoder.encode(rest.slice(2).join(" ")), {
      transport: "udp",
      ...target,
    });
  } else if (verb === "burst" && rest.length === 4) {
    const socket = socketAt(rest[0]);
    const target = parseHostPort(rest[1]);
    const count = Number(rest[2]);
    if (!Number.isInteger(count) || count < 1 || count > MAX_BURST) {
      throw new ProbeUsageError(`burst count must be 1-${MAX_BURST}`);
    }
    for (let i = 0; i < count; i++) {
      await socket.send(encoder.encode(`${rest[3]}-${i}`), { transport: "udp", ...target });
    }
    io.emit({ type: "burst-sent", count });
  } else if (verb === "tcp" && rest.length >= 2) {
    const target = parseHostPort(rest[0]);
    const conn = await Deno.connect({ transport: "tcp", ...target });
    try {
      await conn.write(encoder.encode(rest.slice(1).join(" ") + "\n"));
      io.emit({ type: "tcp-reply", text: await readTcpLine(conn) });
    } finally {
      try {
        conn.close();
      } catch {
        // Closed by the read timeout.
      }
    }
  } else {
    throw new ProbeUsageError(`bad command ${JSON.stringify(line)}`);
  }
}

if (import.meta.main) {
  const encoder = new TextEncoder();
  const write = (event: Record<string, unknown>) => {
    const bytes = encoder.encode(JSON.stringify(event) + "\n");
    for (let written = 0; written < bytes.length;) {
      written += Deno.stdout.writeSync(bytes.subarray(written));
    }
  };
  try {
    await runProbe(parseProbeArgs(Deno.args), {
      commands: readLines(Deno.stdin.readable, MAX_TCP_LINE),
      emit: write,
    });
  } catch (error) {
    write({ type: "error", message: String(error) });
    Deno.exit(2);
  }
  Deno.exit(0);
}
