/**
 * One simulated world: a virtual clock with seeded randomness, the simulated network, hosts, and
 * the processes that run on them (started, frozen, thawed, killed and started again), plus a
 * hashed trace of everything that happened.
 *
 * Why: a failing fault schedule is only useful if it reruns exactly. Everything here — timer
 * order, packet fates, NAT ports, process restarts — derives from one seed and the order of
 * events, and the trace hash proves it: two runs of the same seed must give the same hash
 * (TigerBeetle's VOPR and FoundationDB's simulation work the same way).
 *
 * @module
 */
import type { Runtime } from "../../shared/runtime/runtime.ts";
import { VirtualRuntime } from "../virtual_runtime.ts";
import { type HostOptions, type SimHost, SimNetwork } from "./network.ts";
import { SimProcess } from "./process.ts";

/**
 * A 64-bit FNV-1a hash of trace lines (two 32-bit lanes), optionally keeping the last lines.
 *
 * @example
 * ```ts
 * const a = new TraceHash();
 * const b = new TraceHash();
 * a.add("1.000 send a b 1");
 * b.add("1.000 send a b 1");
 * console.log(a.hex === b.hex); // true
 * ```
 */
export class TraceHash {
  #low = 0x811c9dc5;
  #high = 0x050c5d1f;
  /** Lines hashed so far. */
  count = 0;
  readonly #keep: number;
  readonly #lines: string[] = [];

  /** @param keep How many of the latest lines to keep for printing (default 0). */
  constructor(keep = 0) {
    this.#keep = keep;
  }

  /** Adds one line (kept for printing unless `keep` is false). */
  add(line: string, keep = true): void {
    let low = this.#low;
    let high = this.#high;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      low = Math.imul(low ^ c, 0x01000193);
      high = Math.imul(high ^ c ^ (low >>> 24), 0x01000193);
    }
    low = Math.imul(low ^ 10, 0x01000193);
    high = Math.imul(high ^ 10, 0x01000193);
    this.#low = low;
    this.#high = high;
    this.count++;
    if (keep && this.#keep > 0) {
      this.#lines.push(line);
      if (this.#lines.length > this.#keep) this.#lines.shift();
    }
  }

  /** The hash as 16 hex digits. */
  get hex(): string {
    return (this.#high >>> 0).toString(16).padStart(8, "0") +
      (this.#low >>> 0).toString(16).padStart(8, "0");
  }

  /** The kept lines, oldest first. */
  get lines(): readonly string[] {
    return this.#lines;
  }
}

/** What a program run on a {@linkcode SimNode} gets. */
export interface NodeContext {
  /** Its runtime (clock, timers, randomness, sockets of this host). */
  runtime: Runtime;
  /** Storage that survives restarts of the node (its "disk"). */
  disk: Map<string, unknown>;
  /** The node. */
  node: SimNode<unknown>;
}

/**
 * A host and the program that runs on it: start, freeze, thaw, kill, restart.
 *
 * @example
 * ```ts
 * const world = new SimWorld({ seed: 1 });
 * const node = world.addNode({ name: "a", ip: "10.0.0.1" }, ({ runtime }) => {
 *   const socket = runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 7000 });
 *   return { socket };
 * });
 * node.start();
 * node.kill();
 * node.start(); // the port is free again
 * console.log(node.app?.socket.addr.port); // 7000
 * ```
 */
export class SimNode<App> {
  /** The host. */
  readonly host: SimHost;
  /** Survives restarts. */
  readonly disk = new Map<string, unknown>();
  /** How many times it was started. */
  starts = 0;
  readonly #world: SimWorld;
  readonly #main: (context: NodeContext) => App;
  #process: SimProcess | undefined;
  #app: App | undefined;

  /** @internal Use {@linkcode SimWorld.addNode}. */
  constructor(world: SimWorld, host: SimHost, main: (context: NodeContext) => App) {
    this.#world = world;
    this.host = host;
    this.#main = main;
  }

  /** The node's name. */
  get name(): string {
    return this.host.name;
  }

  /** The running (or frozen) program, undefined while down. */
  get app(): App | undefined {
    return this.#process?.state === "dead" ? undefined : this.#app;
  }

  /** The current process, if started. */
  get process(): SimProcess | undefined {
    return this.#process;
  }

  /** Whether a process runs (or is frozen). */
  get up(): boolean {
    return this.#process !== undefined && this.#process.state !== "dead";
  }

  /** Starts the program (a no-op while it is up). */
  start(): App {
    if (this.up) return this.#app as App;
    this.starts++;
    const process = new SimProcess(
      `${this.name}#${this.starts}`,
      this.#world.clock,
      (owner) => this.host.netFor(owner),
    );
    process.onStateChange = (state) => this.#world.record(`process ${process.name} ${state}`);
    this.#process = process;
    this.#world.record(`process ${process.name} started`);
    this.#app = this.#main({
      runtime: process.runtime,
      disk: this.disk,
      node: this as SimNode<unknown>,
    });
    return this.#app;
  }

  /** Stops it (`SIGSTOP`). */
  freeze(): void {
    this.#process?.freeze();
  }

  /** Continues it (`SIGCONT`). */
  thaw(): void {
    this.#process?.thaw();
  }

  /** Kills it (`SIGKILL`); {@linkcode SimNode.start} starts a new process. */
  kill(): void {
    this.#process?.kill();
  }
}

/** Options of a {@linkcode SimWorld}. */
export interface SimWorldOptions {
  /** The seed of everything (default 1). */
  seed?: number;
  /** See {@linkcode SimNetworkOptions.tcpResetAfterMs}. */
  tcpResetAfterMs?: number;
  /** Trace network events (blocks, heals, TCP resets; default true). */
  traceNetwork?: boolean;
  /** Trace every datagram that arrives, too (default true: the hash then covers packets). */
  tracePackets?: boolean;
  /** Keep the latest this many trace lines for printing (default 0). */
  keepTrace?: number;
}

/**
 * The world: clock, network, nodes, trace.
 *
 * @example
 * ```ts
 * const world = new SimWorld({ seed: 42 });
 * const server = world.addNode({ name: "server", ip: "198.51.100.1" }, () => ({}));
 * server.start();
 * world.at(5_000, () => server.freeze());
 * world.at(20_000, () => server.thaw());
 * await world.runFor(30_000);
 * console.log(world.clock.now()); // 30000
 * ```
 */
export class SimWorld {
  /** The seed. */
  readonly seed: number;
  /** The virtual clock and seeded randomness. */
  readonly clock: VirtualRuntime;
  /** The network. */
  readonly network: SimNetwork;
  /** The hash of everything recorded. */
  readonly trace: TraceHash;
  readonly #nodes = new Map<string, SimNode<unknown>>();
  /** Receives every trace line as it is recorded (`packet`: a datagram arrival). */
  echo: ((line: string, packet: boolean) => void) | undefined;

  /** @param options Seed and network options. */
  constructor(options: SimWorldOptions = {}) {
    this.seed = options.seed ?? 1;
    this.trace = new TraceHash(options.keepTrace ?? 0);
    this.clock = new VirtualRuntime({ seed: this.seed });
    this.network = new SimNetwork(this.clock, {
      tcpResetAfterMs: options.tcpResetAfterMs,
      tracePackets: options.tracePackets ?? true,
      trace: options.traceNetwork === false ? undefined : (line, packet) => {
        this.trace.add(line, !packet);
        this.echo?.(line, packet);
      },
    });
  }

  /** Adds a host running `main` (not started yet). */
  addNode<App>(options: HostOptions, main: (context: NodeContext) => App): SimNode<App> {
    const node = new SimNode(this, this.network.addHost(options), main);
    this.#nodes.set(node.name, node as SimNode<unknown>);
    return node;
  }

  /** The node called `name`. */
  node(name: string): SimNode<unknown> {
    const node = this.#nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** Adds a line to the trace, stamped with the virtual time. */
  record(line: string): void {
    const stamped = `${this.clock.now().toFixed(3)} ${line}`;
    this.trace.add(stamped);
    this.echo?.(stamped, false);
  }

  /** Runs `action` at virtual time `at` (at once if past). */
  at(at: number, action: () => void): void {
    this.clock.setTimer(action, at - this.clock.now());
  }

  /** Advances the clock by `ms`, running everything that falls due. */
  async runFor(ms: number): Promise<void> {
    await this.clock.advance(ms);
  }

  /** Advances the clock to `time`. */
  async runTo(time: number): Promise<void> {
    await this.clock.advanceTo(time);
  }
}
