/**
 * The rendezvous server program: `deno task server [flags]` (see `--help`).
 *
 * Prints one JSON line `{"event":"listening",...}` on stdout once it listens (see
 * `ListeningAnnouncement` in `server.ts`); logs are JSON lines on stderr. SIGINT and SIGTERM shut it
 * down gracefully with exit code 0.
 *
 * @module
 */
import { dispose, getLogger } from "@logtape/logtape";
import { parseServerArgs } from "./cli.ts";
import { configureServerLogging } from "./logging.ts";
import { announce, startServer } from "./server.ts";

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
}

function hostPort(address: { hostname: string; port: number }): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

async function main(): Promise<number> {
  const parsed = parseServerArgs(Deno.args, {
    writeOut: (text) => writeAll(Deno.stdout, text),
    writeErr: (text) => writeAll(Deno.stderr, text),
  });
  if ("exitCode" in parsed) return parsed.exitCode;
  const config = parsed.config;
  await configureServerLogging(config.logLevel);
  const log = getLogger(["stun-server"]);

  // Nothing one connection does may bring the server down: log strays, keep serving.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("unhandled rejection: {reason}", { reason: String(event.reason) });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("uncaught error: {message}", { message: String(event.error ?? event.message) });
  });

  // Signals are caught before anything is announced, so a stop right after start is graceful.
  const stopped = Promise.withResolvers<string>();
  const onSignal = (name: string) => () => stopped.resolve(name);
  const listeners: [Deno.Signal, () => void][] = [["SIGINT", onSignal("SIGINT")]];
  if (Deno.build.os !== "windows") listeners.push(["SIGTERM", onSignal("SIGTERM")]);
  for (const [signal, handler] of listeners) Deno.addSignalListener(signal, handler);

  let server;
  try {
    server = startServer({
      hostname: config.host,
      tcpPort: config.tcpPort,
      stunPort: config.stunPort,
      maxClients: config.maxClients,
      maxConnectionsPerAddress: config.maxConnsPerIp,
      relayBytesPerSecond: config.relayRate,
      relayQueueBytes: config.relayQueue,
      heartbeatMs: config.heartbeatMs,
      registrationTimeoutMs: config.registrationTimeoutMs,
    });
  } catch (error) {
    log.fatal("cannot start: {error}", { error: String(error) });
    for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
    await dispose();
    return 1;
  }
  const announcement = announce(server, Deno.pid);
  writeAll(Deno.stdout, JSON.stringify(announcement) + "\n");
  log.info("listening: signaling on TCP {tcp}, STUN on UDP {stun}", {
    tcp: hostPort(announcement.tcp),
    stun: announcement.stun.map(hostPort).join(", "),
  });

  const signal = await stopped.promise;
  log.info("{signal} received: shutting down", { signal });
  for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
  await server.close();
  log.info("stopped");
  await dispose();
  return 0;
}

if (import.meta.main) Deno.exit(await main());
