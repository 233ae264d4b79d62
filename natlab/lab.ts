/**
 * The NAT lab: a public segment and hosts behind NAT routers, each in its own Linux network
 * namespace, built with `ip` and `nft` and always torn down.
 *
 * ```
 *   [pub]  bridge br0: 198.18.0.1 (server), 198.18.0.200, 198.18.0.201 (observers)
 *     |-- [<host>-nat] wan 198.18.0.(2+i)  lan 10.0.(1+i).1 --- [<host>] eth0 10.0.(1+i).2
 *     |-- [<host>] eth0 198.18.0.(2+i)        (kind "none": directly on the public segment)
 * ```
 *
 * Every namespace name starts with a prefix holding the creating process's ID
 * (`nlab<pid>x<number>-`), so a later run can sweep what a killed run left behind without touching
 * the namespaces of runs still alive. No interface is ever created in the caller's namespace, and
 * nothing routes out of the lab, so its traffic stays inside.
 *
 * @module
 */

import { type CommandRunner, LabCommandError, runCommand } from "./command.ts";
import { delayHolderBinary } from "./delay_holder.ts";
import { EventLog } from "./json_lines.ts";
import {
  DELAY_QUEUE,
  delayRuleCommands,
  hostLossRuleset,
  LAB_TABLE,
  NatConfigError,
  type NatKind,
  natRuleset,
  REMAP_PRIVATE_PORTS,
  validDelayMs,
  validLossPercent,
} from "./nat_kind.ts";
import {
  coturnArgs,
  MINIUPNPD_FATAL,
  MINIUPNPD_READY,
  miniupnpdConfig,
  miniupnpdRuleset,
  RFC5780_PORT,
  stunAnswersRule,
} from "./port_mapping.ts";

/** The server host's address on the public segment. */
export const SERVER_ADDRESS = "198.18.0.1";

/**
 * The server host's second address: the alternate address of the lab's RFC 5780 STUN service
 * (`--alt-host`), so clients can measure their NAT. Like the server's, it is not a peer.
 */
export const SERVER_ALT_ADDRESS = "198.18.0.199";

/** More addresses of the public namespace, for observers that must differ from the server. */
export const OBSERVER_ADDRESSES = ["198.18.0.200", "198.18.0.201"] as const;

/** Prefix length of the public segment (198.18.0.0/15, the benchmarking range). */
export const PUBLIC_PREFIX_LENGTH = 15;

/** The most hosts one lab holds. */
export const MAX_LAB_HOSTS = 32;

const NAMESPACE_PREFIX = "nlab";

/** The bridge table in the public namespace that cuts UDP between two hosts. */
const CUT_TABLE = "natlab_cut";

/** The table in every host that counts what arrives there, whatever its NAT. */
export const OBSERVATION_TABLE = "natlab_obs";

/** "BDAY", the first bytes of a birthday-punching probe (`p2p_client/birthday/probe_codec.ts`). */
const BIRTHDAY_MAGIC = "0x42444159";

/**
 * Counts the UDP datagrams a host receives from anyone but the server host (and its own LAN): with
 * two clients in a lab, that is the peer's traffic over a direct path (or a punch that got
 * through).
 */
const OBSERVATION_RULESET = [
  `table ip ${OBSERVATION_TABLE} {`,
  "  counter udp_from_peers {",
  "  }",
  "  counter birthday_out {",
  "  }",
  "  chain input {",
  "    type filter hook input priority filter; policy accept;",
  // Not the server's addresses, nor the LAN's (the gateway answering port-mapping requests).
  `    meta l4proto udp ip saddr != { ${SERVER_ADDRESS}, ${SERVER_ALT_ADDRESS}, 10.0.0.0/8 } ` +
  `counter name "udp_from_peers"`,
  "  }",
  // Birthday-punching probes leaving the host: 29-byte UDP payloads starting with "BDAY".
  "  chain output {",
  "    type filter hook output priority filter; policy accept;",
  `    meta l4proto udp udp length ${
    8 + 29
  } @th,64,32 ${BIRTHDAY_MAGIC} counter name "birthday_out"`,
  "  }",
  "}",
  "",
].join("\n");

/** One host to build, and the NAT in front of it. */
export interface LabHostSpec {
  /** Short name (letters, digits, dashes; at most 12 characters), e.g. "a". */
  name: string;
  /** The NAT in front of the host. */
  kind: NatKind;
  /** Remap UDP ports on the NAT (cone kinds only). */
  remap?: boolean;
  /** Random loss in percent on the NAT's public side (or the host's, for kind none). */
  lossPercent?: number;
  /** Delay in ms on the NAT's public side (or the host's), each way. Needs gcc. */
  delayMs?: number;
  /**
   * Run miniupnpd on the NAT router (NAT-PMP, PCP and UPnP-IGD; not for kind none). Needs the
   * `miniupnpd-nftables` and `coturn` packages (see `port_mapping.ts`).
   */
  portMapping?: boolean;
}

/** A host of a built lab. */
export interface LabHost extends Required<LabHostSpec> {
  /** The namespace the host's programs run in. */
  namespace: string;
  /** The NAT router's namespace; `undefined` for kind none. */
  natNamespace: string | undefined;
  /** The host's own address (private behind a NAT). */
  address: string;
  /** The address the host has on the public segment (the NAT's, or its own). */
  publicAddress: string;
}

/** Options for {@linkcode NatLab.create}. */
export interface NatLabOptions {
  /** The hosts to build behind their NATs. */
  hosts: readonly LabHostSpec[];
  /** Runs `ip`, `nft` and `sysctl` (tests may record calls). */
  runner?: CommandRunner;
}

/** Options for {@linkcode NatLab.spawn}. */
export interface LabSpawnOptions {
  /** Pipe stdin (default true). */
  stdin?: boolean;
  /** What to do with stderr (default "piped"). */
  stderr?: "piped" | "null" | "inherit";
}

const liveLabs = new Set<NatLab>();
let labCounter = 0;

/** The namespaces (by full name) a list from `ip netns list` holds. */
function parseNetnsList(output: string): string[] {
  return output.split("\n").map((line) => line.trim().split(/\s+/)[0]).filter((name) =>
    name !== undefined && name !== ""
  );
}

/** Is a process with this ID alive (on this machine's PID namespace)? */
function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes lab namespaces left behind by runs whose process is gone, killing any program still
 * running inside them. Returns their names.
 *
 * @example
 * ```ts
 * const removed = await sweepStaleNamespaces();
 * ```
 */
export async function sweepStaleNamespaces(
  runner: CommandRunner = runCommand,
): Promise<string[]> {
  const removed: string[] = [];
  const pattern = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)x\\d+-`);
  for (const name of parseNetnsList(await runner(["ip", "netns", "list"]))) {
    const match = pattern.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === Deno.pid || processAlive(pid)) continue;
    // Programs a killed run left running inside its namespaces go first, by their IDs.
    const pids = await runner(["ip", "netns", "pids", name]).catch(() => "");
    for (const text of pids.split("\n")) {
      const orphan = Number(text.trim());
      if (!Number.isInteger(orphan) || orphan <= 1) continue;
      try {
        Deno.kill(orphan, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await runner(["ip", "netns", "del", name]).catch(() => {});
    removed.push(name);
  }
  return removed;
}

/**
 * Destroys every lab this process still has (for signal handlers).
 *
 * @example
 * ```ts
 * Deno.addSignalListener("SIGINT", () => destroyAllLabs().finally(() => Deno.exit(130)));
 * ```
 */
export async function destroyAllLabs(): Promise<void> {
  await Promise.allSettled([...liveLabs].map((lab) => lab.destroy()));
}

/** Is this a valid host name for the lab? */
function checkHostName(name: string): void {
  if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(name) || name === "pub") {
    throw new NatConfigError(`bad lab host name ${JSON.stringify(name)}`);
  }
}

/**
 * A built lab. Create with {@linkcode NatLab.create}, always {@linkcode NatLab.destroy} (or use
 * `await using`).
 *
 * @example
 * ```ts
 * await using lab = await NatLab.create({ hosts: [{ name: "a", kind: "full-cone" }] });
 * const child = lab.spawn(lab.host("a").namespace, ["deno", "--version"]);
 * ```
 */
export class NatLab {
  /** The namespace prefix of this lab (`nlab<pid>x<number>`). */
  readonly prefix: string;
  /** The public namespace: bridge, server address and observer addresses. */
  readonly publicNamespace: string;
  #hosts = new Map<string, LabHost>();
  #namespaces: string[] = [];
  #children = new Set<Deno.ChildProcess>();
  #holderInputs: WritableStreamDefaultWriter<Uint8Array>[] = [];
  #runner: CommandRunner;
  #destroyed: Promise<void> | undefined;
  #cleanups: Array<() => Promise<void>> = [];
  #rfc5780: Promise<void> | undefined;
  #routerLogs = new Map<string, string[]>();

  private constructor(runner: CommandRunner) {
    this.#runner = runner;
    // The counter separates labs of one process; the random part separates test workers that
    // share the process ID.
    const unique = labCounter++ * 1_000_000 + Math.floor(Math.random() * 1_000_000);
    this.prefix = `${NAMESPACE_PREFIX}${Deno.pid}x${unique}`;
    this.publicNamespace = `${this.prefix}-pub`;
  }

  /**
   * Builds a lab. On any failure, what was built is torn down before the error is thrown.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "symmetric" }] });
   * await lab.destroy();
   * ```
   */
  static async create(options: NatLabOptions): Promise<NatLab> {
    if (options.hosts.length === 0 || options.hosts.length > MAX_LAB_HOSTS) {
      throw new NatConfigError(`a lab holds 1-${MAX_LAB_HOSTS} hosts`);
    }
    const names = new Set<string>();
    for (const spec of options.hosts) {
      checkHostName(spec.name);
      validLossPercent(spec.lossPercent);
      validDelayMs(spec.delayMs);
      if (names.has(spec.name)) throw new NatConfigError(`duplicate host name ${spec.name}`);
      names.add(spec.name);
    }
    const lab = new NatLab(options.runner ?? runCommand);
    liveLabs.add(lab);
    try {
      await lab.#build(options.hosts);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  async #run(argv: string[], stdin?: string): Promise<string> {
    return await this.#runner(argv, stdin);
  }

  async #addNamespace(name: string): Promise<void> {
    await this.#run(["ip", "netns", "add", name]);
    this.#namespaces.push(name);
    await this.#run(["ip", "-n", name, "link", "set", "lo", "up"]);
  }

  async #sysctl(namespace: string, setting: string): Promise<void> {
    await this.#run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", setting]);
  }

  async #build(specs: readonly LabHostSpec[]): Promise<void> {
    const pub = this.publicNamespace;
    await this.#addNamespace(pub);
    await this.#sysctl(pub, "net.ipv4.ip_forward=0");
    await this.#run(["ip", "-n", pub, "link", "add", "name", "br0", "type", "bridge"]);
    await this.#run(["ip", "-n", pub, "link", "set", "br0", "up"]);
    for (const address of [SERVER_ADDRESS, SERVER_ALT_ADDRESS, ...OBSERVER_ADDRESSES]) {
      await this.#run([
        "ip",
        "-n",
        pub,
        "addr",
        "add",
        `${address}/${PUBLIC_PREFIX_LENGTH}`,
        "dev",
        "br0",
      ]);
    }
    for (const [index, spec] of specs.entries()) {
      await this.#buildHost(index, spec);
    }
  }

  async #attachToBridge(namespace: string, iface: string, bridgePort: string): Promise<void> {
    const pub = this.publicNamespace;
    await this.#run([
      "ip",
      "-n",
      namespace,
      "link",
      "add",
      "name",
      iface,
      "type",
      "veth",
      "peer",
      "name",
      bridgePort,
      "netns",
      pub,
    ]);
    await this.#run(["ip", "-n", pub, "link", "set", bridgePort, "master", "br0", "up"]);
  }

  /**
   * Starts the NFQUEUE delay holder in `namespace`, waits until it has bound its queue, then
   * sends `iface`'s packets to it.
   */
  async #startDelay(namespace: string, iface: string, delayMs: number): Promise<void> {
    const binary = await delayHolderBinary(this.#runner);
    const child = this.spawn(namespace, [binary, String(DELAY_QUEUE), String(delayMs)], {
      stderr: "null",
    });
    this.#holderInputs.push(child.stdin.getWriter());
    const log = new EventLog(child.stdout);
    try {
      await log.waitFor((e) => e.type === "ready", 30_000, "the delay holder");
    } catch (error) {
      throw new LabCommandError(["nfqueue_delay", namespace], -1, String(error));
    }
    for (const argv of delayRuleCommands(iface)) {
      await this.#run(["ip", "netns", "exec", namespace, ...argv]);
    }
  }

  /**
   * Public hosts and routers route everything via the server host, which does not forward: a
   * packet to an address outside the lab (a peer's private candidate, say) is dropped there,
   * as the Internet drops private addresses, instead of failing at the sender.
   */
  async #defaultRouteToPublicHost(namespace: string): Promise<void> {
    await this.#run(["ip", "-n", namespace, "route", "add", "default", "via", SERVER_ADDRESS]);
  }

  async #buildHost(index: number, spec: LabHostSpec): Promise<void> {
    const hostNs = `${this.prefix}-${spec.name}`;
    const publicAddress = `198.18.0.${2 + index}`;
    const loss = spec.lossPercent ?? 0;
    const delay = spec.delayMs ?? 0;
    const remap = spec.remap ?? false;
    await this.#addNamespace(hostNs);
    // The host's ephemeral ports are the range the remapping NAT translates.
    await this.#sysctl(
      hostNs,
      `net.ipv4.ip_local_port_range=${REMAP_PRIVATE_PORTS.first} ${REMAP_PRIVATE_PORTS.last}`,
    );
    await this.#run(["ip", "netns", "exec", hostNs, "nft", "-f", "-"], OBSERVATION_RULESET);
    if (spec.kind === "none") {
      if (remap) throw new NatConfigError("kind none has no NAT to remap ports");
      if (spec.portMapping) throw new NatConfigError("kind none has no NAT to map ports on");
      await this.#attachToBridge(hostNs, "eth0", `h${index}`);
      await this.#run([
        "ip",
        "-n",
        hostNs,
        "addr",
        "add",
        `${publicAddress}/${PUBLIC_PREFIX_LENGTH}`,
        "dev",
        "eth0",
      ]);
      await this.#run(["ip", "-n", hostNs, "link", "set", "eth0", "up"]);
      await this.#defaultRouteToPublicHost(hostNs);
      const rules = hostLossRuleset("eth0", loss);
      if (rules !== "") await this.#run(["ip", "netns", "exec", hostNs, "nft", "-f", "-"], rules);
      if (delay > 0) await this.#startDelay(hostNs, "eth0", delay);
      this.#hosts.set(spec.name, {
        name: spec.name,
        kind: spec.kind,
        remap,
        lossPercent: loss,
        delayMs: delay,
        portMapping: false,
        namespace: hostNs,
        natNamespace: undefined,
        address: publicAddress,
        publicAddress,
      });
      return;
    }
    const natNs = `${this.prefix}-${spec.name}-nat`;
    const lanNet = `10.0.${1 + index}`;
    await this.#addNamespace(natNs);
    await this.#sysctl(natNs, "net.ipv4.ip_forward=1");
    await this.#attachToBridge(natNs, "wan", `n${index}`);
    await this.#run([
      "ip",
      "-n",
      natNs,
      "addr",
      "add",
      `${publicAddress}/${PUBLIC_PREFIX_LENGTH}`,
      "dev",
      "wan",
    ]);
    await this.#run([
      "ip",
      "-n",
      natNs,
      "link",
      "add",
      "name",
      "lan",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      hostNs,
    ]);
    await this.#run(["ip", "-n", natNs, "addr", "add", `${lanNet}.1/24`, "dev", "lan"]);
    await this.#run(["ip", "-n", natNs, "link", "set", "wan", "up"]);
    await this.#run(["ip", "-n", natNs, "link", "set", "lan", "up"]);
    await this.#defaultRouteToPublicHost(natNs);
    await this.#run(["ip", "-n", hostNs, "addr", "add", `${lanNet}.2/24`, "dev", "eth0"]);
    await this.#run(["ip", "-n", hostNs, "link", "set", "eth0", "up"]);
    await this.#run(["ip", "-n", hostNs, "route", "add", "default", "via", `${lanNet}.1`]);
    const rules = natRuleset({
      kind: spec.kind,
      publicAddress,
      wan: "wan",
      lan: "lan",
      remap,
      lossPercent: loss,
    });
    await this.#run(["ip", "netns", "exec", natNs, "nft", "-f", "-"], rules);
    if (delay > 0) await this.#startDelay(natNs, "wan", delay);
    if (spec.portMapping) await this.#startMiniupnpd(spec.name, natNs, `${lanNet}.0/24`);
    this.#hosts.set(spec.name, {
      name: spec.name,
      kind: spec.kind,
      remap,
      lossPercent: loss,
      delayMs: delay,
      portMapping: spec.portMapping ?? false,
      namespace: hostNs,
      natNamespace: natNs,
      address: `${lanNet}.2`,
      publicAddress,
    });
  }

  /**
   * Starts coturn as an RFC 5780 STUN server (two addresses, two ports: see `port_mapping.ts`)
   * in the public namespace, once per lab, and waits until it listens.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "symmetric" }] });
   * await lab.startRfc5780Server();
   * await lab.destroy();
   * ```
   */
  startRfc5780Server(): Promise<void> {
    this.#rfc5780 ??= this.#startCoturn();
    return this.#rfc5780;
  }

  async #tempDir(prefix: string): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix });
    this.#cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    return dir;
  }

  async #startCoturn(): Promise<void> {
    const dir = await this.#tempDir("natlab-coturn-");
    const child = this.spawn(this.publicNamespace, coturnArgs(`${dir}/turn.log`), {
      stdin: false,
      stderr: "null",
    });
    void child.stdout.pipeTo(new WritableStream()).catch(() => {});
    const deadline = Date.now() + 20_000;
    for (;;) {
      const out = await this.exec(this.publicNamespace, [
        "ss",
        "-Hlun",
        `sport = :${RFC5780_PORT}`,
      ]);
      if (out.split("\n").filter((line) => line.trim() !== "").length >= 2) return;
      if (Date.now() > deadline) {
        throw new LabCommandError(["turnserver"], -1, "coturn did not open its STUN port in 20 s");
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Starts miniupnpd on a NAT router and waits until mapping is enabled. */
  async #startMiniupnpd(hostName: string, natNs: string, lanNetwork: string): Promise<void> {
    await this.startRfc5780Server();
    await this.#run(["ip", "netns", "exec", natNs, "nft", "-f", "-"], miniupnpdRuleset());
    await this.#run([
      "ip",
      "netns",
      "exec",
      natNs,
      "nft",
      "insert",
      "rule",
      "ip",
      LAB_TABLE,
      "input",
      ...stunAnswersRule("wan"),
    ]);
    const dir = await this.#tempDir("natlab-miniupnpd-");
    const config = `${dir}/miniupnpd.conf`;
    await Deno.writeTextFile(
      config,
      miniupnpdConfig({ wan: "wan", lan: "lan", lanNetwork, uuid: crypto.randomUUID() }),
    );
    const child = this.spawn(natNs, ["miniupnpd", "-d", "-f", config, "-P", `${dir}/pid`], {
      stdin: false,
    });
    const lines: string[] = [];
    this.#routerLogs.set(hostName, lines);
    let exited = false;
    child.status.then(() => exited = true);
    for (const stream of [child.stdout, child.stderr]) {
      void (async () => {
        let rest = "";
        for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
          const parts = (rest + chunk).split("\n");
          rest = parts.pop() ?? "";
          // Bounded: the first 2,000 lines are kept.
          for (const line of parts) if (lines.length < 2000) lines.push(line);
        }
      })().catch(() => {});
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const fatal = lines.find((line) => MINIUPNPD_FATAL.some((text) => line.includes(text)));
      if (fatal !== undefined) {
        throw new LabCommandError(["miniupnpd", natNs], -1, `port mapping disabled: ${fatal}`);
      }
      if (lines.some((line) => line.includes(MINIUPNPD_READY))) return;
      if (exited || Date.now() > deadline) {
        throw new LabCommandError(["miniupnpd", natNs], -1, lines.slice(-20).join("\n"));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * What miniupnpd has logged so far on a host's router (for diagnostics).
   *
   * @example
   * ```ts
   * // console.log(lab.routerLog("a").join("\n"));
   * ```
   */
  routerLog(hostName: string): readonly string[] {
    return this.#routerLogs.get(hostName) ?? [];
  }

  /**
   * The host with this name.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * console.log(lab.host("a").publicAddress); // "198.18.0.2"
   * await lab.destroy();
   * ```
   */
  host(name: string): LabHost {
    const host = this.#hosts.get(name);
    if (host === undefined) throw new NatConfigError(`no host ${name} in this lab`);
    return host;
  }

  /** Every host, in creation order. */
  get hosts(): LabHost[] {
    return [...this.#hosts.values()];
  }

  /**
   * Starts a program inside a namespace of this lab (stdout piped). The lab kills it on
   * {@linkcode destroy} if it is still running.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * const child = lab.spawn(lab.publicNamespace, ["sleep", "1"]);
   * await lab.destroy(); // kills it
   * ```
   */
  spawn(
    namespace: string,
    argv: readonly string[],
    options: LabSpawnOptions = {},
  ): Deno.ChildProcess {
    if (this.#destroyed !== undefined) throw new NatConfigError("lab already destroyed");
    if (!this.#namespaces.includes(namespace)) {
      throw new NatConfigError(`namespace ${namespace} is not part of this lab`);
    }
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", namespace, ...argv],
      stdin: options.stdin === false ? "null" : "piped",
      stdout: "piped",
      stderr: options.stderr ?? "piped",
    }).spawn();
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child));
    return child;
  }

  /**
   * Runs a command to completion inside a namespace of this lab and returns its stdout.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * console.log(await lab.exec(lab.publicNamespace, ["ip", "-br", "addr"]));
   * await lab.destroy();
   * ```
   */
  async exec(namespace: string, argv: readonly string[]): Promise<string> {
    if (!this.#namespaces.includes(namespace)) {
      throw new NatConfigError(`namespace ${namespace} is not part of this lab`);
    }
    return await this.#run(["ip", "netns", "exec", namespace, ...argv]);
  }

  /**
   * The packet count of a named nftables counter (`unsolicited`, `udp_blocked`) on a host's
   * NAT router.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "udp-blocked" }] });
   * console.log(await lab.natCounter("a", "udp_blocked")); // 0
   * await lab.destroy();
   * ```
   */
  async natCounter(hostName: string, counter: "unsolicited" | "udp_blocked"): Promise<number> {
    const host = this.host(hostName);
    if (host.natNamespace === undefined) {
      throw new NatConfigError(`host ${hostName} has no NAT router`);
    }
    return await this.#readCounter(host.natNamespace, LAB_TABLE, counter);
  }

  /**
   * Cuts UDP between two hosts' public addresses on the public segment (a bridge-family rule in
   * the public namespace), as when a direct path dies; TCP and STUN to the server still pass.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({
   *   hosts: [{ name: "a", kind: "full-cone" }, { name: "b", kind: "none" }],
   * });
   * await lab.blockUdpBetween("a", "b");
   * await lab.unblockUdp();
   * await lab.destroy();
   * ```
   */
  async blockUdpBetween(first: string, second: string): Promise<void> {
    const a = this.host(first).publicAddress;
    const b = this.host(second).publicAddress;
    const rules = [
      `table bridge ${CUT_TABLE} {`,
      "  chain forward {",
      "    type filter hook forward priority filter; policy accept;",
      `    ip saddr ${a} ip daddr ${b} meta l4proto udp counter drop`,
      `    ip saddr ${b} ip daddr ${a} meta l4proto udp counter drop`,
      "  }",
      "}",
      "",
    ].join("\n");
    await this.#run(["ip", "netns", "exec", this.publicNamespace, "nft", "-f", "-"], rules);
  }

  /**
   * Lifts what {@linkcode blockUdpBetween} cut.
   *
   * @example
   * ```ts
   * // await lab.unblockUdp();
   * ```
   */
  async unblockUdp(): Promise<void> {
    await this.exec(this.publicNamespace, ["nft", "delete", "table", "bridge", CUT_TABLE]);
  }

  /**
   * How many UDP datagrams reached a host from anyone but the server host (the named counter
   * `udp_from_peers` in the host's own namespace): proof that a direct path carried traffic.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "symmetric" }] });
   * console.log(await lab.udpFromPeers("a")); // 0
   * await lab.destroy();
   * ```
   */
  async udpFromPeers(hostName: string): Promise<number> {
    return await this.#readCounter(
      this.host(hostName).namespace,
      OBSERVATION_TABLE,
      "udp_from_peers",
    );
  }

  /**
   * How many birthday-punching probes (29-byte UDP payloads starting with "BDAY") left a host:
   * what the packet budget is checked against, independently of what the client says.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "symmetric" }] });
   * console.log(await lab.birthdayProbesSent("a")); // 0
   * await lab.destroy();
   * ```
   */
  async birthdayProbesSent(hostName: string): Promise<number> {
    return await this.#readCounter(
      this.host(hostName).namespace,
      OBSERVATION_TABLE,
      "birthday_out",
    );
  }

  async #readCounter(namespace: string, table: string, counter: string): Promise<number> {
    const out = await this.exec(namespace, ["nft", "-j", "list", "counter", "ip", table, counter]);
    const parsed = JSON.parse(out) as { nftables?: { counter?: { packets?: number } }[] };
    for (const item of parsed.nftables ?? []) {
      if (typeof item.counter?.packets === "number") return item.counter.packets;
    }
    throw new LabCommandError(["nft", "list", "counter", counter], 0, "no counter in output");
  }

  /**
   * Kills the lab's processes and deletes its namespaces. Safe to call more than once; later
   * calls wait for the first.
   *
   * @example
   * ```ts
   * const lab = await NatLab.create({ hosts: [{ name: "a", kind: "none" }] });
   * await lab.destroy();
   * ```
   */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  async #teardown(): Promise<void> {
    // Closing its stdin lets a delay holder release what it holds and exit.
    await Promise.allSettled(this.#holderInputs.map((input) => input.close()));
    this.#holderInputs = [];
    const children = [...this.#children];
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    await Promise.allSettled(children.map(async (child) => {
      await child.status;
      await child.stdout?.cancel().catch(() => {});
      await child.stderr?.cancel().catch(() => {});
    }));
    for (const name of [...this.#namespaces].reverse()) {
      await this.#run(["ip", "netns", "del", name]).catch(() => {});
    }
    this.#namespaces = [];
    for (const cleanup of this.#cleanups.splice(0)) await cleanup();
    liveLabs.delete(this);
  }

  /** Lets `await using` destroy the lab. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
