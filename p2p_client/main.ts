/**
 * Entry point of the P2P client: `deno task client [--local-file PATH] [--server HOST[:PORT]]...`.
 *
 * @module
 */
import process from "node:process";
import { getLogger } from "@logtape/logtape";
import {
  type ClientConfig,
  ConfigError,
  loadClientConfig,
  parseClientConfig,
} from "../shared/config/mod.ts";
import { buildCli, type ClientSettings, resolveServers } from "./cli.ts";
import { P2PClient } from "./client.ts";
import { FileClientStore } from "./client_store.ts";
import type { ClientEvent } from "./events.ts";
import { defaultIdentityPath, loadOrCreateIdentity } from "./identity_store.ts";
import { Identity } from "../shared/identity/mod.ts";
import { systemRuntime } from "../shared/runtime/mod.ts";
import { configureClientLogging } from "./logging.ts";
import { Prompt } from "./prompt.ts";
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

async function loadIdentity(
  settings: ClientSettings,
): Promise<{ identity: Identity; path?: string }> {
  if (settings.ephemeral) return { identity: await Identity.generate() };
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

async function run(settings: ClientSettings): Promise<number> {
  await configureClientLogging(settings.logLevel);
  const logger = getLogger(["p2p-client"]);
  const write = (event: ClientEvent) => {
    if (settings.json) process.stdout.write(JSON.stringify(event) + "\n");
  };
  try {
    const config = await loadConfig(settings);
    const servers = resolveServers(settings.servers, config.stun, settings.tcpPort);
    if (config.turn.length > 0) {
      logger.info(
        "{count} TURN server(s) configured; this client relays through its rendezvous server instead",
        {
          count: config.turn.length,
        },
      );
    }
    const { identity, path: identityPath } = await loadIdentity(settings);
    const policy = settings.acceptFiles ?? defaultAcceptFiles({ json: settings.json });
    const downloads = settings.downloads ??
      defaultDownloadsDir((name) => Deno.env.get(name)) ?? "downloads";
    /** Peers this client connected to itself: `--accept-files contacts` accepts their files. */
    const contacts = new Set<string>();
    const sink: { prompt?: Prompt } = {};
    const pendingEvents: ClientEvent[] = [];
    const emit = (event: ClientEvent) => {
      if (sink.prompt) sink.prompt.print(event);
      else pendingEvents.push(event);
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
        // Unconfirmed messages and recently received message IDs survive a restart, beside the
        // identity file (not with --ephemeral).
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
        `cannot bind UDP ${settings.bind}:${settings.udpPort}: ${(error as Error).message}`,
      );
    }
    // `connect <peer>` and `send <peer>` make a peer a contact (for `--accept-files contacts`).
    const connect = client.connect.bind(client);
    client.connect = (peer: string) => {
      contacts.add(peer);
      connect(peer);
    };
    client.on((event) => {
      if (event.type === "sent") contacts.add(event.peer);
    });
    const prompt = new Prompt(client, {
      input: process.stdin,
      output: process.stdout,
      terminal: Boolean(process.stdin.isTTY && process.stdout.isTTY),
      json: settings.json,
    });
    for (const event of pendingEvents.splice(0)) prompt.print(event);
    sink.prompt = prompt;
    client.start();
    prompt.start();
    const stop = () => prompt.close();
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    for (const signal of signals) Deno.addSignalListener(signal, stop);
    await prompt.finished;
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    await client.shutdown(settings.exitTimeout * 1000);
    prompt.flush();
    if (!settings.json && process.stdout.isTTY) process.stdout.write("bye\n");
    return 0;
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof StartupError ||
      (error as Error).name === "IdentityStoreError";
    const message = (error as Error).message;
    const code = error instanceof StartupError
      ? error.code
      : error instanceof ConfigError
      ? "bad-config"
      : known
      ? "bad-identity"
      : "internal";
    write({ type: "error", code, message });
    Deno.stderr.writeSync(new TextEncoder().encode(`error: ${message}\n`));
    if (!known) logger.error("startup failed: {error}", { error });
    return 2;
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
    if (typeof exitCode === "number") return exitCode === 0 ? 0 : 2;
    Deno.stderr.writeSync(new TextEncoder().encode(`error: ${(error as Error).message}\n`));
    return 2;
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
