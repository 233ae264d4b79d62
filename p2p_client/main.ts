/**
 * Entry point of the P2P client: `deno task client [--local-file PATH] [--server HOST[:PORT]]...`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import {
  type ClientConfig,
  ConfigError,
  loadClientConfig,
  parseClientConfig,
  parseTurnUrl,
} from "../shared/config/mod.ts";
import { buildCli, type ClientSettings, resolveServers } from "./cli.ts";
import { P2PClient, type TurnServerEntry } from "./client.ts";
import { FileClientStore } from "./client_store.ts";
import { type ClientEvent, formatTextEvent } from "./events.ts";
import { defaultIdentityPath, loadOrCreateIdentity } from "./identity_store.ts";
import { acquireIdentityLock, type IdentityLock, IdentityLockedError } from "./identity_lock.ts";
import { ContactBook, ContactsError, contactsPathFor } from "./contacts.ts";
import { Identity } from "../shared/identity/mod.ts";
import { systemRuntime } from "../shared/runtime/mod.ts";
import { configureClientLogging, type LogRoute } from "./logging.ts";
import { Prompt, stdioPromptIO } from "./prompt.ts";
import { PresenceWatcher } from "./presence.ts";
import { defaultDownloadsDir, FsDownloadStore } from "./files/fs_store.ts";
import { defaultAcceptFiles, offerDecision } from "./files/policy.ts";

const DEFAULT_CONFIG_URL = new URL("../resources/stun_servers.json", import.meta.url);
const BUILTIN_CONFIG = { stun: ["127.0.0.1:54321"], turn: [] };

/** A startup failure: printed as one line, exit code 2. */
class StartupError extends Error {
  /** The error code of the `error` event. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

async function loadConfig(settings: ClientSettings): Promise<ClientConfig> {
  if (settings.localFile !== undefined) return await loadClientConfig(settings.localFile);
  try {
    return await loadClientConfig(decodeURIComponent(DEFAULT_CONFIG_URL.pathname));
  } catch (error) {
    // A compiled binary does not carry the resources directory: use the same built-in default.
    if (error instanceof ConfigError && /file not found/.test(error.message)) {
      return parseClientConfig(BUILTIN_CONFIG, "built-in default");
    }
    throw error;
  }
}

/**
 * The config's `turn` entries the client can use: `turn:` over UDP, the host resolved to an
 * address (its first A, else AAAA record). Others are skipped with a warning that names the URL
 * only (never the credentials).
 */
async function resolveTurnServers(
  config: ClientConfig,
  warn: (message: string) => void,
): Promise<TurnServerEntry[]> {
  const resolved = await Promise.all(config.turn.map(async (entry) => {
    const url = parseTurnUrl(entry.url);
    if (!url) return undefined; // the config parser already refused it
    if (url.secure || url.transport !== "udp") {
      warn(`TURN server ${entry.url} skipped: only turn: over UDP is supported (no TLS, no TCP)`);
      return undefined;
    }
    let host = url.host.toLowerCase() === "localhost" ? "127.0.0.1" : url.host;
    if (!/^[0-9.]+$/.test(host) && !host.includes(":")) {
      // Bounded: without a resolver answering, startup goes on after 3 s (entry skipped).
      const signal = AbortSignal.timeout(3000);
      const v4 = await Deno.resolveDns(host, "A", { signal }).catch(() => [] as string[]);
      const v6 = v4.length > 0
        ? []
        : await Deno.resolveDns(host, "AAAA", { signal }).catch(() => [] as string[]);
      const found = v4[0] ?? v6[0];
      if (found === undefined) {
        warn(`TURN server ${entry.url} skipped: cannot resolve ${host} (no A or AAAA record)`);
        return undefined;
      }
      host = found;
    }
    const shown = url.host.includes(":") ? `[${url.host}]` : url.host;
    return {
      host,
      port: url.port,
      label: `turn ${shown}:${url.port}`,
      username: entry.username,
      credential: entry.credential,
    };
  }));
  return resolved.filter((entry) => entry !== undefined);
}

interface LoadedIdentity {
  identity: Identity;
  /** The identity file (undefined for `--ephemeral`). */
  path: string | undefined;
}

async function loadIdentity(settings: ClientSettings): Promise<LoadedIdentity> {
  if (settings.ephemeral) return { identity: await Identity.generate(), path: undefined };
  const path = settings.identity ?? defaultIdentityPath({
    xdgConfigHome: Deno.env.get("XDG_CONFIG_HOME"),
    home: Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE"),
    appData: Deno.build.os === "windows" ? Deno.env.get("APPDATA") : undefined,
  });
  if (path === undefined) {
    throw new StartupError(
      "no-identity-path",
      "cannot find a config directory for the identity key (set HOME or XDG_CONFIG_HOME, or use --identity PATH or --ephemeral)",
    );
  }
  return { identity: await loadOrCreateIdentity(path), path };
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(text));
  } catch {
    // stderr closed too: nothing left to tell
  }
}

function startupErrorCode(error: unknown): string | undefined {
  if (error instanceof StartupError) return error.code;
  if (error instanceof ConfigError) return "bad-config";
  if (error instanceof IdentityLockedError) return "identity-in-use";
  if (error instanceof ContactsError) return "bad-contacts";
  if ((error as Error).name === "IdentityStoreError") return "bad-identity";
  return undefined;
}

async function run(settings: ClientSettings): Promise<number> {
  const logRoute: LogRoute = {};
  await configureClientLogging(settings.logLevel, logRoute);
  const logger = getLogger(["p2p-client"]);
  const io = stdioPromptIO();
  const writeJson = (event: ClientEvent) => {
    if (!settings.json) return;
    try {
      io.write(
        JSON.stringify({ ...event, ts: new Date(systemRuntime.wallClock()).toISOString() }) + "\n",
      );
    } catch {
      // stdout closed: stderr has the message
    }
  };
  let lock: IdentityLock | undefined;
  try {
    const config = await loadConfig(settings);
    const servers = resolveServers(settings.servers, config.stun, settings.tcpPort);
    const turnServers = settings.relay === "server"
      ? []
      : await resolveTurnServers(config, (message) => logger.warning(message));
    if (settings.relay === "turn" && turnServers.length === 0) {
      throw new StartupError(
        "no-turn-server",
        `--relay turn needs a usable "turn" entry (turn:host[:port], UDP) in the config file${
          config.turn.length > 0 ? " (the ones there are not usable: see the warnings)" : ""
        }`,
      );
    }
    const { identity, path: identityPath } = await loadIdentity(settings);
    // One client per identity: refused here, before it registers and evicts the other.
    if (identityPath !== undefined) lock = acquireIdentityLock(identityPath);
    const contacts = identityPath === undefined
      ? ContactBook.inMemory()
      : ContactBook.load(contactsPathFor(identityPath));
    const policy = settings.acceptFiles ?? defaultAcceptFiles({ json: settings.json });
    const downloads = settings.downloads ??
      defaultDownloadsDir((name) => Deno.env.get(name)) ?? "downloads";
    const sink: { prompt?: Prompt } = {};
    const pendingEvents: ClientEvent[] = [];
    const emit = (event: ClientEvent) => {
      const prompt = sink.prompt;
      if (!prompt) {
        pendingEvents.push(event);
        return;
      }
      if (prompt.outputClosed) {
        // Nobody reads stdout any more: what happens to messages still goes to stderr.
        if ("messageId" in event && event.messageId !== undefined && event.type !== "sent") {
          writeStderr(formatTextEvent(event) + "\n");
        }
        return;
      }
      prompt.print(event);
    };
    let client: P2PClient;
    try {
      client = new P2PClient({
        runtime: systemRuntime,
        identity,
        servers,
        bind: { hostname: settings.bind, port: settings.udpPort },
        networkInterfaces: () => Deno.networkInterfaces(),
        emit,
        relayOnly: settings.relayOnly,
        relayPolicy: settings.relay,
        turnServers,
        // Unconfirmed messages and recently received message IDs survive a restart, beside the
        // identity file (not with --ephemeral); the identity lock keeps it to one client.
        store: identityPath === undefined ? undefined : new FileClientStore(identityPath),
        files: {
          store: new FsDownloadStore(downloads),
          decide: (peer) => offerDecision(policy, peer, (p) => contacts.has(p)),
        },
        log: (message) => logger.debug(message),
      });
    } catch (error) {
      throw new StartupError(
        "bind-failed",
        `cannot bind UDP ${settings.bind}:${settings.udpPort}: ${
          (error as Error).message
        } (choose another with --bind HOST or --udp-port PORT)`,
      );
    }
    const terminal = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
    if (terminal && !settings.json) {
      // Whatever ends the process, the terminal is not left in raw mode.
      globalThis.addEventListener("unload", () => {
        try {
          Deno.stdin.setRaw(false);
        } catch {
          // not a terminal any more
        }
      });
    }
    const prompt = new Prompt(client, {
      io,
      terminal,
      json: settings.json,
      timestamps: settings.timestamps,
      contacts,
    });
    if (terminal && !settings.json && Deno.stderr.isTerminal()) {
      logRoute.write = (line) => prompt.log(line);
    }
    for (const event of pendingEvents.splice(0)) prompt.print(event);
    sink.prompt = prompt;
    client.start();
    prompt.start();
    // Presence of contacts: ask the server about offline contacts, paced (see presence.ts).
    const presence = new PresenceWatcher({ probe: (peer) => client.probe(peer) });
    let presenceTimer: number | undefined;
    const watchPresence = () => {
      if (prompt.serverState === "registered") {
        const online = new Set(
          client.list().filter((row) => row.state !== "disconnected").map((row) => row.peer),
        );
        presence.tick(systemRuntime.now(), contacts.list().map((c) => c.id), online);
      } else {
        presence.reset();
      }
      presenceTimer = systemRuntime.setTimer(watchPresence, 250);
    };
    watchPresence();
    let interrupted = false;
    let stopWaiting = () => {};
    const onSignal = () => {
      if (!interrupted) {
        interrupted = true;
        prompt.close();
      } else {
        stopWaiting();
      }
    };
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
    try {
      const end = await prompt.finished;
      systemRuntime.clearTimer(presenceTimer);
      // From here a Ctrl-C (SIGINT again, the terminal is no longer raw) stops the wait.
      interrupted = true;
      const pending = client.pendingPerPeer();
      const total = [...pending.values()].reduce((sum, count) => sum + count, 0);
      if (total > 0 && settings.exitTimeout > 0) {
        const who = [...pending].map(([peer, count]) => `${count} to ${prompt.label(peer)}`)
          .join(", ");
        const text = `waiting up to ${settings.exitTimeout} s for ${total} message(s) to be ` +
          `confirmed (${who}); Ctrl-C to stop waiting`;
        if (end === "output-closed") writeStderr(`stdout closed; ${text}\n`);
        else prompt.print({ type: "info", text });
        prompt.flush();
        await waitUntilSettled(client, settings.exitTimeout * 1000, (stop) => stopWaiting = stop);
      }
      if (identityPath !== undefined) {
        // With an identity the client keeps what is still unconfirmed and sends it again at the
        // next start: say so for each message (with --ephemeral, shutdown reports each outcome).
        for (const [peer, ids] of client.pendingMessageIds()) {
          for (const id of ids) {
            const text = `message ${id} to ${prompt.label(peer)} not confirmed yet: kept, and ` +
              "sent again at the next start";
            if (end === "output-closed") writeStderr(text + "\n");
            else prompt.print({ type: "info", text });
          }
        }
      }
      await client.shutdown(0);
      prompt.flush();
      if (!settings.json && terminal && !prompt.outputClosed) io.write("bye\n");
    } finally {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    }
    return 0;
  } catch (error) {
    const code = startupErrorCode(error);
    const message = (error as Error).message;
    writeJson({ type: "error", code: code ?? "internal", message });
    writeStderr(`error: ${message}\n`);
    if (code === undefined) logger.error("startup failed: {error}", { error });
    return 2;
  } finally {
    lock?.release();
  }
}

/** Polls until no message is pending, the time is up, or `onStop`'s callback is called. */
async function waitUntilSettled(
  client: P2PClient,
  timeoutMs: number,
  onStop: (stop: () => void) => void,
): Promise<void> {
  const deadline = systemRuntime.now() + timeoutMs;
  let stopped = false;
  let wake = () => {};
  onStop(() => {
    stopped = true;
    wake();
  });
  while (!stopped && client.pendingMessages > 0 && systemRuntime.now() < deadline) {
    await new Promise<void>((resolve) => {
      wake = resolve;
      systemRuntime.setTimer(resolve, 20);
    });
  }
}

/**
 * Runs the client with command-line `args`; resolves to the exit code.
 *
 * @example
 * ```ts
 * // Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let code = 0;
  const program = buildCli(async (settings) => {
    code = await run(settings);
  });
  program.exitOverride();
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    const exitCode = (error as { exitCode?: number }).exitCode;
    const errorCode = (error as { code?: string }).code;
    if (errorCode === "commander.helpDisplayed" || errorCode === "commander.version") return 0;
    // Commander printed its own parse errors; anything else is printed here. Usage errors exit 2.
    if (typeof exitCode === "number" && errorCode?.startsWith("commander.")) {
      return exitCode === 0 ? 0 : 2;
    }
    writeStderr(`error: ${(error as Error).message}\n`);
    return 2;
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
