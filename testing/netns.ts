/**
 * Test helper: a private network namespace (loopback only) for end-to-end tests that block or
 * drop UDP with nftables without touching the host, and the real server running inside it.
 *
 * @module
 */

import { programRunArgs } from "./programs.ts";

async function run(command: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

/**
 * Why namespace tests cannot run here, or undefined when they can (root, `ip` and `nft`).
 *
 * @example
 * ```ts
 * const reason = await netnsUnavailable();
 * if (reason) console.log(`skipping: ${reason}`);
 * ```
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  for (const tool of ["ip", "nft"]) {
    try {
      await run(tool, ["-V"]);
    } catch {
      return `${tool} is not installed`;
    }
  }
  const probe = `p2pprobe${Deno.pid}`;
  try {
    await run("ip", ["netns", "add", probe]);
    await run("ip", ["netns", "delete", probe]);
  } catch (error) {
    return `cannot create network namespaces: ${(error as Error).message.slice(0, 200)}`;
  }
  return undefined;
}

/**
 * A network namespace with `lo` up and an nftables table `inet p2ptest` with an output chain.
 *
 * @example
 * ```ts
 * const ns = await TestNamespace.create("p2ptest1");
 * await ns.addRule("udp sport 40001 udp dport 40002 drop");
 * await ns.delete();
 * ```
 */
export class TestNamespace {
  /** The namespace name. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates the namespace. */
  static async create(prefix: string): Promise<TestNamespace> {
    const name = `${prefix}${Deno.pid}${Math.floor(Math.random() * 1e6)}`.slice(0, 30);
    await run("ip", ["netns", "add", name]);
    const ns = new TestNamespace(name);
    try {
      await run("ip", ["-n", name, "link", "set", "lo", "up"]);
      await ns.nft(
        "add table inet p2ptest\n" +
          "add chain inet p2ptest out { type filter hook output priority 0; policy accept; }\n",
      );
    } catch (error) {
      await ns.delete();
      throw error;
    }
    return ns;
  }

  /** Runs an nft script inside the namespace. */
  async nft(script: string): Promise<void> {
    await run("ip", ["netns", "exec", this.name, "nft", "-f", "-"], script);
  }

  /** Adds a rule to the output chain; returns nothing (use {@linkcode TestNamespace.flush}). */
  async addRule(rule: string): Promise<void> {
    await this.nft(`add rule inet p2ptest out ${rule}\n`);
  }

  /** Packets counted by the rules that carry a `counter` (summed). */
  async countedPackets(): Promise<number> {
    const text = await run("ip", [
      "netns",
      "exec",
      this.name,
      "nft",
      "list",
      "chain",
      "inet",
      "p2ptest",
      "out",
    ]);
    let total = 0;
    for (const match of text.matchAll(/counter packets (\d+)/g)) total += Number(match[1]);
    return total;
  }

  /** Removes every rule. */
  async flush(): Promise<void> {
    await this.nft("flush chain inet p2ptest out\n");
  }

  /** Deletes the namespace (and with it everything in it). */
  async delete(): Promise<void> {
    try {
      await run("ip", ["netns", "delete", this.name]);
    } catch {
      // already gone
    }
  }
}

/**
 * The real server (`stun_server/main.ts`) inside a namespace, on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { NetnsServer, type TestNamespace } from "./netns.ts";
 * declare const ns: TestNamespace;
 * const server = await NetnsServer.start(ns, 3478, 54321);
 * await server.stop();
 * ```
 */
export class NetnsServer {
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>;
  #stderr = "";

  private constructor(child: Deno.ChildProcess, pumps: Promise<void>, stderr: { text: string }) {
    this.#child = child;
    this.#pumps = pumps;
    Object.defineProperty(this, "logs", { get: () => stderr.text });
  }

  /** Starts the server and waits for its `listening` announcement. */
  static async start(ns: TestNamespace, tcpPort: number, stunPort: number): Promise<NetnsServer> {
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns.name,
        Deno.execPath(),
        ...programRunArgs("stun_server", [
          "--host",
          "127.0.0.1",
          "--tcp-port",
          String(tcpPort),
          "--stun-port",
          String(stunPort),
        ]),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = { text: "" };
    const listening = Promise.withResolvers<void>();
    const decoder = new TextDecoder();
    let pending = "";
    const stdoutPump = (async () => {
      for await (const chunk of child.stdout) {
        pending += decoder.decode(chunk, { stream: true });
        if (pending.includes('"listening"')) listening.resolve();
        if (pending.length > 65_536) pending = pending.slice(-1024);
      }
    })();
    const stderrPump = (async () => {
      const errDecoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr.text = (stderr.text + errDecoder.decode(chunk, { stream: true })).slice(-100_000);
      }
    })();
    const pumps = Promise.all([stdoutPump, stderrPump]).then(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      listening.promise.then(() => "ok"),
      child.status.then((s) => `server exited with code ${s.code}`),
      new Promise<string>((resolve) =>
        timer = setTimeout(() => resolve("server did not start in 60 s"), 60_000)
      ),
    ]);
    clearTimeout(timer);
    const server = new NetnsServer(child, pumps, stderr);
    if (outcome !== "ok") {
      await server.stop();
      throw new Error(`${outcome}; stderr:\n${stderr.text}`);
    }
    return server;
  }

  /** The server's stderr. */
  declare readonly logs: string;

  /** Stops the server (SIGTERM, SIGKILL after 10 s). */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 10_000)),
    ]);
    clearTimeout(timer);
    if (!done) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
      await this.#child.status;
    }
    await this.#pumps;
    void this.#stderr;
  }
}
