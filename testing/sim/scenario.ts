/**
 * Runs one fault schedule against a system under test — a server program and a client program,
 * each started on its own simulated host — with a scripted workload, and checks the invariants.
 *
 * Why: the same schedule must run against the real `P2PClient` and signaling server and against
 * a small reference peer (which proves the generator and checker can pass, and, broken on
 * purpose, that they fail with a seed). {@linkcode SystemUnderTest} is the seam: anything that
 * can start a server and a client on a {@linkcode NodeContext} and speak {@linkcode PeerApp}
 * runs here.
 *
 * The workload, like a script at each prompt: every client connects to the clients after it at
 * `startMs`; every ordered pair sends a message every 0.3–2.5 s while the sender runs; at each
 * clear time + `settleMs` each pair sends a probe that must be printed within `checkMs`, and
 * path states are checked; after the last check the run goes on quietly for `tailMs` so every
 * outcome is reported.
 *
 * @module
 */
import { seededRandom } from "../../p2p_client/reliable/simulated_network.ts";
import { InvariantChecker, messageText, type Outcome, type PathState } from "./checker.ts";
import type { Violation } from "./checker.ts";
import {
  applySchedule,
  describeFault,
  directCapable,
  natFor,
  type Schedule,
  SERVER_IP,
} from "./schedule.ts";
import { type NodeContext, type SimNode, SimWorld } from "./world.ts";

/** What a client under test reports. */
export type PeerEvent =
  | { type: "message"; from: string; text: string }
  | { type: "outcome"; messageId: number; outcome: Outcome };

/** The commands of a client under test, as the prompt offers them. */
export interface PeerApp {
  /** Its peer ID. */
  readonly id: string;
  /** `connect <peer>`. */
  connect(peer: string): void;
  /** `send <peer> <text>`: the message ID, or undefined if refused at once. */
  send(peer: string, text: string): number | undefined;
  /** The path state towards `peer`. */
  pathState(peer: string): PathState;
  /**
   * Whether it is registered with the server (the workload types its first `connect` once every
   * client is; without this method, at `startMs`).
   */
  ready?(): boolean;
}

/** How a client is started. */
export interface ClientContext extends NodeContext {
  /** Its node name (`a`, `b`, …). */
  name: string;
  /** The server's address. */
  serverIp: string;
  /** Reports an event to the checker. */
  emit(event: PeerEvent): void;
}

/** A server and client program to simulate. */
export interface SystemUnderTest {
  /** A label for reports. */
  name: string;
  /** Runs before the clock starts (e.g. to create identities on each node's disk). */
  prepare?(nodes: SimNode<unknown>[], seed: number): Promise<void>;
  /** Starts the server on its node. */
  server(context: NodeContext): unknown;
  /** Starts a client on its node. */
  client(context: ClientContext): PeerApp;
}

/** Options of {@linkcode runSchedule}. */
export interface RunOptions {
  /** Time after a clear time before probes, ms (default 5,000). */
  settleMs?: number;
  /** Time a probe may take, ms (default 2,000). */
  checkMs?: number;
  /** Keep this many trace lines for a failure report (default 0). */
  keepTrace?: number;
  /** Print trace lines as they happen. */
  echoTrace?: boolean;
  /** With `echoTrace`, print every datagram arrival too. */
  echoPackets?: boolean;
}

/** The result of one schedule. */
export interface RunResult {
  /** The seed. */
  seed: number;
  /** Violations found (empty: passed). */
  violations: Violation[];
  /** The hash of the whole trace (same seed ⇒ same hash). */
  traceHash: string;
  /** Trace lines hashed. */
  traceLines: number;
  /** The kept trace tail. */
  trace: readonly string[];
  /** Counts of sends and outcomes. */
  counts: InvariantChecker["counts"];
  /** Simulated time, ms. */
  simulatedMs: number;
  /** The schedule's faults, described. */
  faults: string[];
  /** The clients' NAT types. */
  nats: string[];
}

interface ClientNode {
  node: SimNode<PeerApp>;
  id: string | undefined;
}

/**
 * Runs `schedule` against `system` and checks every invariant.
 *
 * @example
 * ```ts
 * import { generateSchedule } from "./schedule.ts";
 * import { referenceSystem } from "./reference_peer.ts";
 *
 * const result = await runSchedule(referenceSystem(), generateSchedule(1));
 * console.log(result.seed, result.violations.length); // 1 0
 * ```
 */
export async function runSchedule(
  system: SystemUnderTest,
  schedule: Schedule,
  options: RunOptions = {},
): Promise<RunResult> {
  const settleMs = options.settleMs ?? 5_000;
  const checkMs = options.checkMs ?? 2_000;
  const world = new SimWorld({ seed: schedule.seed, keepTrace: options.keepTrace });
  if (options.echoTrace) {
    world.echo = (line, packet) => {
      if (!packet || options.echoPackets) console.log(line);
    };
  }
  const checker = new InvariantChecker();
  const random = seededRandom(schedule.seed ^ 0x30b1);

  const server = world.addNode(
    { name: "server", ip: SERVER_IP },
    (context) => system.server(context),
  );
  const clients = new Map<string, ClientNode>();
  const nameOfId = new Map<string, string>();
  for (const spec of schedule.clients) {
    const entry: ClientNode = { node: undefined as unknown as SimNode<PeerApp>, id: undefined };
    entry.node = world.addNode(
      { name: spec.name, ip: spec.ip, nat: natFor(spec) },
      (context) => {
        const incarnation = context.node.starts;
        const app = system.client({
          ...context,
          name: spec.name,
          serverIp: SERVER_IP,
          emit: (event) => {
            const now = world.clock.now();
            if (event.type === "message") {
              const from = nameOfId.get(event.from) ?? event.from;
              world.record(`print ${spec.name} ${from} ${event.text}`);
              checker.printed(now, spec.name, from, event.text);
            } else {
              world.record(
                `outcome ${spec.name}#${incarnation} ${event.messageId} ${event.outcome}`,
              );
              checker.outcome(now, spec.name, incarnation, event.messageId, event.outcome);
            }
          },
        });
        entry.id = app.id;
        nameOfId.set(app.id, spec.name);
        return app;
      },
    );
    entry.node.host.uplink = { ...spec.uplink };
    entry.node.host.downlink = { ...spec.downlink };
    clients.set(spec.name, entry);
  }
  const names = [...clients.keys()];
  await system.prepare?.([
    server as SimNode<unknown>,
    ...names.map((n) => clients.get(n)!.node as SimNode<unknown>),
  ], schedule.seed);

  // Record process deaths for the outcome invariant.
  for (const name of names) {
    const node = clients.get(name)!.node;
    const kill = node.kill.bind(node);
    node.kill = () => {
      if (node.up) checker.killed(world.clock.now(), name, node.starts);
      kill();
    };
  }
  applySchedule(world, schedule);

  server.start();
  for (const name of names) clients.get(name)!.node.start();

  const running = (name: string) => clients.get(name)!.node.process?.state === "running";
  const appOf = (name: string) => clients.get(name)!.node.app;
  const idOf = (name: string) => clients.get(name)!.id!;

  // Connect commands, once every client is registered (a script would wait for "registered"),
  // at most `settleMs` after `startMs`.
  let connectedAt: number | undefined;
  const connectAll = () => {
    const ready = names.every((n) => running(n) && (appOf(n)!.ready?.() ?? true));
    if (!ready && world.clock.now() < schedule.startMs + settleMs) {
      world.at(world.clock.now() + 100, connectAll);
      return;
    }
    connectedAt = world.clock.now();
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        if (!running(names[i])) continue;
        world.record(`connect ${names[i]} ${names[j]}`);
        appOf(names[i])!.connect(idOf(names[j]));
      }
    }
  };
  world.at(schedule.startMs, connectAll);

  // Sends.
  const seqs = new Map<string, number>();
  const send = (from: string, to: string, probeDeadline?: number): string | undefined => {
    if (!running(from)) return undefined;
    const pair = `${from}>${to}`;
    const seq = (seqs.get(pair) ?? 0) + 1;
    seqs.set(pair, seq);
    const text = messageText(from, to, seq);
    const node = clients.get(from)!.node;
    const messageId = appOf(from)!.send(idOf(to), text);
    world.record(`send ${from}#${node.starts} ${text} ${messageId ?? "refused"}`);
    checker.sent(world.clock.now(), from, node.starts, to, text, messageId, probeDeadline);
    return text;
  };
  const lastCheck = Math.max(...schedule.clearTimes) + settleMs + checkMs;
  for (const from of names) {
    for (const to of names) {
      if (from === to) continue;
      const next = (at: number) => {
        if (at > lastCheck) return;
        world.at(at, () => {
          send(from, to);
          next(world.clock.now() + 300 + random() * 2200);
        });
      };
      next(schedule.startMs + 100 + random() * 1000);
    }
  }

  // Liveness checks.
  const firstFault = schedule.faults[0]?.at ?? Infinity;
  const check = (probeAt: number) => {
    const probes: string[] = [];
    for (const from of names) {
      for (const to of names) {
        if (from === to) continue;
        const text = send(from, to, probeAt + checkMs);
        if (text) probes.push(text);
        else {
          checker.violations.push({
            invariant: "usable",
            at: probeAt,
            detail: `${from} is not running at a check time (the schedule is broken)`,
          });
        }
      }
    }
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const [a, b] = [names[i], names[j]];
        const specA = schedule.clients[i];
        const specB = schedule.clients[j];
        const ab = appOf(a)?.pathState(idOf(b)) ?? "none";
        const ba = appOf(b)?.pathState(idOf(a)) ?? "none";
        world.record(`path ${a}-${b} ${ab} ${ba}`);
        if (directCapable(specA.nat, specB.nat)) checker.checkDirect(probeAt, a, b, ab, ba);
      }
    }
    world.at(probeAt + checkMs, () => {
      for (const text of probes) checker.checkProbe(world.clock.now(), text);
    });
  };
  for (const clear of schedule.clearTimes) {
    if (clear !== schedule.startMs) {
      world.at(clear + settleMs, () => check(clear + settleMs));
      continue;
    }
    // The first check counts from the connect command.
    world.at(schedule.startMs, () => {
      const wait = () => {
        if (connectedAt === undefined) {
          world.at(world.clock.now() + 100, wait);
          return;
        }
        const probeAt = connectedAt + settleMs;
        if (probeAt + checkMs <= firstFault) world.at(probeAt, () => check(probeAt));
        else world.record("first check skipped: the clients registered late");
      };
      wait();
    });
  }

  await world.runTo(schedule.endMs);
  checker.finish(world.clock.now(), (name) => clients.get(name)!.node.starts);
  for (const name of names) clients.get(name)!.node.kill();
  server.kill();
  return {
    seed: schedule.seed,
    violations: checker.violations,
    traceHash: world.trace.hex,
    traceLines: world.trace.count,
    trace: world.trace.lines,
    counts: checker.counts,
    simulatedMs: world.clock.now(),
    faults: schedule.faults.map(describeFault),
    nats: schedule.clients.map((c) => `${c.name}:${c.nat.name}`),
  };
}

/**
 * Formats a failed run for people: the seed (to rerun), the topology, the faults, the
 * violations and the trace tail.
 *
 * @example
 * ```ts
 * // console.error(formatFailure(result));
 * ```
 */
export function formatFailure(result: RunResult, system: string): string {
  const lines = [
    `seed ${result.seed} FAILED against ${system} (trace hash ${result.traceHash}): rerun with ` +
    `deno task sim --system ${system} --runs 1 --seed ${result.seed} --trace`,
    `  clients: ${result.nats.join(" ")}`,
    ...result.faults.map((f) => `  fault ${f}`),
    ...result.violations.slice(0, 10).map((v) =>
      `  violation [${v.invariant}] at ${(v.at / 1000).toFixed(3)} s: ${v.detail}`
    ),
  ];
  if (result.violations.length > 10) lines.push(`  … ${result.violations.length - 10} more`);
  if (result.trace.length > 0) {
    lines.push("  trace tail:", ...result.trace.map((line) => `    ${line}`));
  }
  return lines.join("\n");
}
