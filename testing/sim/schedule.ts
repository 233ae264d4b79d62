/**
 * Seeded fault schedules: a topology (which NAT is in front of which client, base link
 * conditions) and a list of timed faults, all derived from one seed, plus the code that applies
 * them to a {@linkcode SimWorld}.
 *
 * Why: issue 9 lists the faults ordinary networks inflict — loss bursts, UDP lost one way,
 * delay and jitter changes, partitions, a laptop lid closed for 1–60 s, restarts of either side
 * and of the server, NAT mappings that expire, duplication and reordering. A generator that mixes
 * them at random finds the interleavings nobody writes by hand; the seed makes each one a
 * reproducible test case. The schedule also says when the world is "clear" again (no fault
 * active), which is what the liveness invariants are measured from.
 *
 * @module
 */
import { seededRandom } from "../../p2p_client/reliable/simulated_network.ts";
import { CLEAN_LINK, type LinkConditions, type NatBehaviour, NatBox } from "./network.ts";
import type { SimWorld } from "./world.ts";

/** A NAT type by its RFC 4787 behaviours, or none (a public address). */
export interface NatType {
  /** Label: `none`, `full-cone`, `restricted-cone`, `port-restricted`, `symmetric`. */
  name: string;
  /** Mapping, undefined for no NAT. */
  mapping?: NatBehaviour;
  /** Filtering, undefined for no NAT. */
  filtering?: NatBehaviour;
}

/** The NAT types the generator picks from. */
export const NAT_TYPES: readonly NatType[] = [
  { name: "none" },
  { name: "full-cone", mapping: "endpoint-independent", filtering: "endpoint-independent" },
  { name: "restricted-cone", mapping: "endpoint-independent", filtering: "address-dependent" },
  {
    name: "port-restricted",
    mapping: "endpoint-independent",
    filtering: "address-and-port-dependent",
  },
  {
    name: "symmetric",
    mapping: "address-and-port-dependent",
    filtering: "address-and-port-dependent",
  },
];

/**
 * Whether two hosts behind these NATs can reach each other directly with hole punching (RFC 5128
 * §3.3–3.5): not if both map per destination, nor if one maps per destination and the other
 * filters per port.
 *
 * @example
 * ```ts
 * const [none, , , portRestricted, symmetric] = NAT_TYPES;
 * console.log(directCapable(none, symmetric), directCapable(portRestricted, symmetric)); // true false
 * ```
 */
export function directCapable(a: NatType, b: NatType): boolean {
  const perDestination = (t: NatType) =>
    t.mapping !== undefined && t.mapping !== "endpoint-independent";
  const perPort = (t: NatType) => t.filtering === "address-and-port-dependent";
  if (perDestination(a) && perDestination(b)) return false;
  if (perDestination(a) && perPort(b)) return false;
  if (perDestination(b) && perPort(a)) return false;
  return true;
}

/** One client host of a topology. */
export interface ClientSpec {
  /** Node name (`a`, `b`, …). */
  name: string;
  /** Its address (private when NAT'd). */
  ip: string;
  /** Its NAT type. */
  nat: NatType;
  /** The NAT's public address, when NAT'd. */
  publicIp?: string;
  /** The NAT's UDP mapping idle timeout, ms. */
  mappingTimeoutMs: number;
  /** Base conditions of packets it sends. */
  uplink: LinkConditions;
  /** Base conditions of packets it receives. */
  downlink: LinkConditions;
}

/** Faults, each active over `[at, at + durationMs)`. */
export type Fault =
  & { at: number; durationMs: number }
  & (
    /** Loss on a host's uplink, downlink or both (1 = total). */
    | { kind: "loss"; node: string; direction: Direction; loss: number }
    /** UDP from `from` to `to` lost (one way). */
    | { kind: "one-way"; from: string; to: string }
    /** Extra delay and jitter on a host's link. */
    | { kind: "delay"; node: string; direction: Direction; delayMs: number; jitterMs: number }
    /** Duplication and reordering on a host's link. */
    | {
      kind: "dup-reorder";
      node: string;
      direction: Direction;
      duplicate: number;
      reorder: number;
    }
    /** Traffic between the groups blocked (UDP only: the direct path; all: TCP too). */
    | { kind: "partition"; groups: [string[], string[]]; transports: Array<"udp" | "tcp"> }
    /** The process on `node` frozen (SIGSTOP) for the duration. */
    | { kind: "freeze"; node: string }
    /** The process on `node` killed, started again after the duration. */
    | { kind: "restart"; node: string }
    /** Every UDP mapping of `node`'s NAT forgotten (instantaneous; duration 0). */
    | { kind: "nat-expiry"; node: string }
  );

/** Which direction of a host's access link. */
export type Direction = "up" | "down" | "both";

/** A topology and the faults to inflict on it. */
export interface Schedule {
  /** The seed it came from. */
  seed: number;
  /** The clients. */
  clients: ClientSpec[];
  /** Faults in start order. */
  faults: Fault[];
  /** When the workload starts (after every client is up). */
  startMs: number;
  /** The end of the run (a quiet tail after the last check). */
  endMs: number;
  /**
   * Times the world is clear of faults for at least `settleMs + checkMs`: the liveness checks
   * run at `clear + settleMs`.
   */
  clearTimes: number[];
}

/** Options of {@linkcode generateSchedule}. */
export interface ScheduleOptions {
  /** Number of clients (default 2). */
  clients?: number;
  /** Length of the fault period, ms (default 40,000). */
  faultPeriodMs?: number;
  /** Number of faults (default: 1–5 at random). */
  faults?: number;
  /** Which fault kinds to draw from (default all). */
  kinds?: Fault["kind"][];
  /** Which NAT types to draw from (default {@linkcode NAT_TYPES}). */
  natTypes?: readonly NatType[];
  /** Time allowed after a fault clears before the liveness checks (default 5,000). */
  settleMs?: number;
  /** Time a check may take (default 2,000). */
  checkMs?: number;
  /** Quiet tail after the last check, for every outcome to be reported (default 40,000). */
  tailMs?: number;
  /** Longest freeze, ms (default 60,000). */
  maxFreezeMs?: number;
}

/** The server's address in every schedule. */
export const SERVER_IP = "198.51.100.1";

/** Every fault kind, in the order the generator knows them. */
export const FAULT_KINDS: readonly Fault["kind"][] = [
  "loss",
  "one-way",
  "delay",
  "dup-reorder",
  "partition",
  "freeze",
  "restart",
  "nat-expiry",
];

/**
 * Draws a topology and a fault schedule from `seed`.
 *
 * @example
 * ```ts
 * const schedule = generateSchedule(7, { clients: 2, faultPeriodMs: 30_000 });
 * console.log(schedule.seed, schedule.clients.length); // 7 2
 * console.log(generateSchedule(7).faults.length === generateSchedule(7).faults.length); // true
 * ```
 */
export function generateSchedule(seed: number, options: ScheduleOptions = {}): Schedule {
  const random = seededRandom(seed ^ 0x5eed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const between = (low: number, high: number) => low + random() * (high - low);
  const int = (low: number, high: number) => Math.floor(between(low, high + 1));
  const count = options.clients ?? 2;
  const natTypes = options.natTypes ?? NAT_TYPES;
  const settleMs = options.settleMs ?? 5_000;
  const checkMs = options.checkMs ?? 2_000;
  const maxFreezeMs = options.maxFreezeMs ?? 60_000;

  const baseLink = (): LinkConditions => ({
    loss: random() < 0.5 ? 0 : between(0, 0.02),
    delayMs: int(2, 60),
    jitterMs: random() < 0.5 ? 0 : int(0, 10),
    duplicate: 0,
    reorder: 0,
  });
  const clients: ClientSpec[] = [];
  for (let i = 0; i < count; i++) {
    const nat = pick(natTypes);
    const name = String.fromCharCode(97 + i);
    clients.push({
      name,
      ip: nat.mapping ? `192.168.${i + 1}.2` : `198.51.100.${10 + i}`,
      nat,
      publicIp: nat.mapping ? `203.0.113.${i + 1}` : undefined,
      mappingTimeoutMs: int(20, 120) * 1000,
      uplink: baseLink(),
      downlink: baseLink(),
    });
  }
  const names = clients.map((c) => c.name);
  const nodes = [...names, "server"];
  const kinds = options.kinds ?? FAULT_KINDS;

  const startMs = 2_000;
  const periodStart = startMs + settleMs + checkMs; // the first check runs on a clean world
  const period = options.faultPeriodMs ?? 40_000;
  const faultCount = options.faults ?? int(1, 5);
  const busy = new Map<string, number>(); // node → end of its process fault
  const faults: Fault[] = [];
  for (let i = 0; i < faultCount; i++) {
    const at = Math.round(between(periodStart, periodStart + period));
    const kind = pick(kinds);
    const durationMs = Math.round(between(500, 15_000));
    const direction = pick<Direction>(["up", "down", "both"]);
    const node = pick(nodes);
    const client = pick(names);
    switch (kind) {
      case "loss":
        faults.push({
          kind,
          at,
          durationMs,
          node,
          direction,
          loss: random() < 0.3 ? 1 : Math.round(between(0.1, 0.6) * 100) / 100,
        });
        break;
      case "one-way": {
        const [from, to] = random() < 0.7 && names.length > 1
          ? twoOf(names, random)
          : random() < 0.5
          ? [client, "server"]
          : ["server", client];
        faults.push({ kind, at, durationMs, from, to });
        break;
      }
      case "delay":
        faults.push({
          kind,
          at,
          durationMs,
          node,
          direction,
          delayMs: int(20, 400),
          jitterMs: int(0, 100),
        });
        break;
      case "dup-reorder":
        faults.push({
          kind,
          at,
          durationMs,
          node,
          direction,
          duplicate: Math.round(between(0, 0.5) * 100) / 100,
          reorder: Math.round(between(0, 0.5) * 100) / 100,
        });
        break;
      case "partition": {
        const direct = names.length > 1 && random() < 0.5;
        const groups: [string[], string[]] = direct
          ? [[client], names.filter((n) => n !== client)]
          : [[client], nodes.filter((n) => n !== client)];
        faults.push({
          kind,
          at,
          durationMs,
          groups,
          transports: direct || random() < 0.3 ? ["udp"] : ["udp", "tcp"],
        });
        break;
      }
      case "freeze":
      case "restart": {
        const target = kind === "restart" && random() < 0.3 ? "server" : node;
        const length = kind === "freeze"
          ? Math.round(between(1_000, maxFreezeMs))
          : Math.round(between(0, 5_000));
        if ((busy.get(target) ?? 0) > at) break; // one process fault per node at a time
        busy.set(target, at + length);
        faults.push({ kind, at, durationMs: length, node: target });
        break;
      }
      case "nat-expiry": {
        const natted = clients.filter((c) => c.nat.mapping).map((c) => c.name);
        if (natted.length === 0) break;
        faults.push({ kind, at, durationMs: 0, node: pick(natted) });
        break;
      }
    }
  }
  return buildSchedule(seed, clients, faults, { ...options, startMs });
}

/**
 * A schedule from explicit clients and faults (for hand-written scenarios): sorts the faults and
 * works out the clear times and the end.
 *
 * @example
 * ```ts
 * const schedule = buildSchedule(1, [clientSpec("a", "port-restricted"), clientSpec("b", "none")], [
 *   { kind: "freeze", node: "b", at: 10_000, durationMs: 35_000 },
 * ]);
 * console.log(schedule.clearTimes); // [ 2000, 45000 ]
 * ```
 */
export function buildSchedule(
  seed: number,
  clients: ClientSpec[],
  faults: Fault[],
  options: ScheduleOptions & { startMs?: number } = {},
): Schedule {
  const settleMs = options.settleMs ?? 5_000;
  const checkMs = options.checkMs ?? 2_000;
  const startMs = options.startMs ?? 2_000;
  const sorted = [...faults].sort((x, y) => x.at - y.at);
  // Clear windows: the start (after the first connect), and every fault end with no fault
  // active for settle + check afterwards.
  const clearTimes: number[] = [startMs];
  const ends = [...new Set(sorted.map((f) => f.at + f.durationMs))].sort((x, y) => x - y);
  for (const end of ends) {
    const active = sorted.some((f) => f.at <= end && end < f.at + f.durationMs);
    const next = sorted.find((f) => f.at > end)?.at ?? Infinity;
    if (!active && next >= end + settleMs + checkMs) clearTimes.push(end);
  }
  const lastEnd = Math.max(startMs, ...ends);
  const lastCheck = Math.max(...clearTimes) + settleMs + checkMs;
  return {
    seed,
    clients,
    faults: sorted,
    startMs,
    endMs: Math.max(lastEnd, lastCheck) + (options.tailMs ?? 40_000),
    clearTimes,
  };
}

/**
 * A client for {@linkcode buildSchedule}: named `a`, `b`, … behind a NAT type by name, with clean
 * links unless given.
 *
 * @example
 * ```ts
 * const a = clientSpec("a", "symmetric", { uplink: { delayMs: 150 } });
 * console.log(a.nat.mapping, a.uplink.delayMs); // address-and-port-dependent 150
 * ```
 */
export function clientSpec(
  name: string,
  nat: string,
  options: {
    uplink?: Partial<LinkConditions>;
    downlink?: Partial<LinkConditions>;
    mappingTimeoutMs?: number;
  } = {},
): ClientSpec {
  const type = NAT_TYPES.find((t) => t.name === nat);
  if (!type) throw new Error(`unknown NAT type ${nat}`);
  const index = name.charCodeAt(0) - 96;
  return {
    name,
    ip: type.mapping ? `192.168.${index}.2` : `198.51.100.${9 + index}`,
    nat: type,
    publicIp: type.mapping ? `203.0.113.${index}` : undefined,
    mappingTimeoutMs: options.mappingTimeoutMs ?? 30_000,
    uplink: { ...CLEAN_LINK, ...options.uplink },
    downlink: { ...CLEAN_LINK, ...options.downlink },
  };
}

function twoOf(names: string[], random: () => number): [string, string] {
  const i = Math.floor(random() * names.length);
  let j = Math.floor(random() * (names.length - 1));
  if (j >= i) j++;
  return [names[i], names[j]];
}

/** A one-line description of a fault, for traces and failure reports. */
export function describeFault(fault: Fault): string {
  const span = `@${(fault.at / 1000).toFixed(1)}s+${(fault.durationMs / 1000).toFixed(1)}s`;
  switch (fault.kind) {
    case "loss":
      return `${span} loss ${fault.node} ${fault.direction} ${fault.loss}`;
    case "one-way":
      return `${span} one-way udp ${fault.from}>${fault.to}`;
    case "delay":
      return `${span} delay ${fault.node} ${fault.direction} +${fault.delayMs}ms ±${fault.jitterMs}`;
    case "dup-reorder":
      return `${span} dup ${fault.duplicate} reorder ${fault.reorder} ${fault.node} ${fault.direction}`;
    case "partition":
      return `${span} partition ${fault.groups[0].join(",")} | ${fault.groups[1].join(",")} ${
        fault.transports.join("+")
      }`;
    case "freeze":
      return `${span} freeze ${fault.node}`;
    case "restart":
      return `${span} restart ${fault.node}`;
    case "nat-expiry":
      return `${span} nat-expiry ${fault.node}`;
  }
}

/** Builds the NAT boxes of a schedule's clients. */
export function natFor(client: ClientSpec): NatBox | undefined {
  if (!client.nat.mapping || !client.publicIp) return undefined;
  return new NatBox({
    publicIp: client.publicIp,
    mapping: client.nat.mapping,
    filtering: client.nat.filtering,
    mappingTimeoutMs: client.mappingTimeoutMs,
  });
}

type Overlay = Partial<LinkConditions>;

/**
 * Applies a schedule's faults to a world as they fall due; link faults stack on the base
 * conditions and come off again when they end.
 *
 * @example
 * ```ts
 * import { SimWorld } from "./world.ts";
 * const schedule = generateSchedule(3);
 * const world = new SimWorld({ seed: 3 });
 * // ... add the schedule's nodes, then:
 * // applySchedule(world, schedule);
 * ```
 */
export function applySchedule(world: SimWorld, schedule: Schedule): void {
  const overlays = new Map<string, { up: Overlay[]; down: Overlay[] }>();
  const base = new Map<string, { up: LinkConditions; down: LinkConditions }>();
  for (const name of [...schedule.clients.map((c) => c.name), "server"]) {
    const host = world.network.host(name);
    base.set(name, { up: { ...host.uplink }, down: { ...host.downlink } });
    overlays.set(name, { up: [], down: [] });
  }
  const recompute = (name: string) => {
    const host = world.network.host(name);
    const layers = overlays.get(name)!;
    const start = base.get(name)!;
    host.uplink = stack(start.up, layers.up);
    host.downlink = stack(start.down, layers.down);
  };
  const overlay = (fault: Fault, node: string, direction: Direction, layer: Overlay) => {
    world.at(fault.at, () => {
      const layers = overlays.get(node)!;
      if (direction !== "down") layers.up.push(layer);
      if (direction !== "up") layers.down.push(layer);
      recompute(node);
    });
    world.at(fault.at + fault.durationMs, () => {
      const layers = overlays.get(node)!;
      layers.up = layers.up.filter((l) => l !== layer);
      layers.down = layers.down.filter((l) => l !== layer);
      recompute(node);
    });
  };
  for (const fault of schedule.faults) {
    world.at(fault.at, () => world.record(`fault ${describeFault(fault)}`));
    switch (fault.kind) {
      case "loss":
        overlay(fault, fault.node, fault.direction, { loss: fault.loss });
        break;
      case "delay":
        overlay(fault, fault.node, fault.direction, {
          delayMs: fault.delayMs,
          jitterMs: fault.jitterMs,
        });
        break;
      case "dup-reorder":
        overlay(fault, fault.node, fault.direction, {
          duplicate: fault.duplicate,
          reorder: fault.reorder,
        });
        break;
      case "one-way": {
        let heal: (() => void) | undefined;
        world.at(fault.at, () => {
          heal = world.network.block([fault.from], [fault.to], {
            oneWay: true,
            transports: ["udp"],
          });
        });
        world.at(fault.at + fault.durationMs, () => heal?.());
        break;
      }
      case "partition": {
        let heal: (() => void) | undefined;
        world.at(fault.at, () => {
          heal = world.network.block(fault.groups[0], fault.groups[1], {
            transports: fault.transports,
          });
        });
        world.at(fault.at + fault.durationMs, () => heal?.());
        break;
      }
      case "freeze":
        world.at(fault.at, () => world.node(fault.node).freeze());
        world.at(fault.at + fault.durationMs, () => world.node(fault.node).thaw());
        break;
      case "restart":
        world.at(fault.at, () => world.node(fault.node).kill());
        world.at(fault.at + fault.durationMs, () => world.node(fault.node).start());
        break;
      case "nat-expiry":
        world.at(fault.at, () => world.network.host(fault.node).nat?.expireAll());
        break;
    }
  }
}

function stack(start: LinkConditions, layers: Overlay[]): LinkConditions {
  const result = { ...start };
  for (const layer of layers) {
    if (layer.loss !== undefined) result.loss = 1 - (1 - result.loss) * (1 - layer.loss);
    if (layer.delayMs !== undefined) result.delayMs += layer.delayMs;
    if (layer.jitterMs !== undefined) result.jitterMs += layer.jitterMs;
    if (layer.duplicate !== undefined) {
      result.duplicate = Math.max(result.duplicate, layer.duplicate);
    }
    if (layer.reorder !== undefined) result.reorder = Math.max(result.reorder, layer.reorder);
  }
  return result;
}
