/**
 * The NAT matrix: for a pair of NAT kinds, the real server on the public host and two real
 * clients behind their NATs connect, exchange messages both ways, and the path they reach is
 * checked against what hole punching allows.
 *
 * @module
 */

import type { JsonEvent } from "./json_lines.ts";
import { NatLab, SERVER_ADDRESS } from "./lab.ts";
import { LabProcess } from "./lab_process.ts";
import { DEFAULT_BUDGET } from "../p2p_client/birthday/birthday.ts";
import { BIRTHDAY_RETRY_MS } from "../p2p_client/traversal/link_traversal.ts";
import { SERVER_ALT_ADDRESS } from "./lab.ts";
import { miniupnpdRules } from "./port_mapping.ts";
import { programRunArgs } from "../testing/programs.ts";
import {
  directPossible,
  NAT_KINDS,
  type NatKind,
  REMAP_OFFSET,
  REMAP_PRIVATE_PORTS,
} from "./nat_kind.ts";

/** The server's signaling port inside the lab. */
export const LAB_TCP_PORT = 3478;
/** The server's STUN port inside the lab. */
export const LAB_STUN_PORT = 54321;

/** One run of the matrix: two kinds, a loss rate, and whether the NATs remap ports. */
export interface PairSpec {
  /** Kind of NAT in front of client A (the one that sends `connect`). */
  a: NatKind;
  /** Kind of NAT in front of client B. */
  b: NatKind;
  /** Random loss (percent) on each NAT's public side. */
  lossPercent: number;
  /** Both NATs remap ports (cone kinds only). */
  remap: boolean;
  /** Delay (ms) on each NAT's public side, each way (0: none). */
  delayMs: number;
  /** Delay (ms) on B's NAT's public side when it differs from A's (asymmetric paths). */
  delayMsB?: number;
  /**
   * Once direct, cut UDP between the two NATs (messages must go over the relay), then restore
   * it (the path must become direct again), with messages in every phase.
   */
  cutDirect?: boolean;
  /** A's NAT router offers port mapping (miniupnpd: PCP, NAT-PMP, UPnP-IGD). */
  portMappingA?: boolean;
  /** B's NAT router offers port mapping. */
  portMappingB?: boolean;
}

/** The NAT kinds whose routers the matrix also runs with port mapping (`<kind>-pm`). */
export const PORT_MAPPING_KINDS: readonly NatKind[] = ["port-restricted", "symmetric"];

/** The path a pair reached. */
export type PathReached = "direct" | "relay" | "none";

/** What one run showed. */
export interface PairResult extends PairSpec {
  /** Display name, e.g. `full-cone+symmetric`. */
  pair: string;
  /** The path the rules allow: direct wherever hole punching can work, the relay otherwise. */
  expected: "direct" | "relay";
  /** The path both sides reported at the end. */
  path: PathReached;
  /** From `connect` to the first usable path (direct or relayed) on A, in ms. */
  connectMs: number | null;
  /** From `connect` to the first direct path on A, in ms (null if never direct). */
  directMs: number | null;
  /** From `connect` (A's first message is sent with it) to B receiving that message, in ms. */
  firstMessageMs: number | null;
  /** UDP datagrams that reached A's host from anyone but the server (the peer's direct traffic). */
  peerUdpAtA: number | null;
  /** The same for B's host. */
  peerUdpAtB: number | null;
  /** With `cutDirect`: from the cut to A reporting the relay, in ms. */
  fallbackMs: number | null;
  /** With `cutDirect`: from restoring UDP to both sides direct again, in ms. */
  reupgradeMs: number | null;
  /** Messages sent, both directions together. */
  sent: number;
  /** Messages received exactly once and in order, both directions together. */
  delivered: number;
  /** How A's direct path was found (its last `peer` event's `how`), if direct. */
  howA: string | null;
  /** How B's direct path was found. */
  howB: string | null;
  /** Why A said it is relayed (its last `peer` event's `why`), if relayed. */
  whyA: string | null;
  /** Why B said it is relayed. */
  whyB: string | null;
  /** Birthday-punching probes that left A's host (an nft counter). */
  birthdayPacketsA: number | null;
  /** Birthday-punching probes that left B's host. */
  birthdayPacketsB: number | null;
  /** Did the run meet every expectation? */
  ok: boolean;
  /** What went wrong, if anything. */
  problems: string[];
}

/**
 * The display name of a pair.
 *
 * @example
 * ```ts
 * pairName({ a: "full-cone", b: "symmetric", lossPercent: 0, remap: false, delayMs: 0 }); // "full-cone+symmetric"
 * ```
 */
export function pairName(spec: PairSpec): string {
  const a = `${spec.a}${spec.portMappingA ? "-pm" : ""}`;
  const b = `${spec.b}${spec.portMappingB ? "-pm" : ""}`;
  const delayB = spec.delayMsB ?? spec.delayMs;
  const delay = delayB !== spec.delayMs
    ? ` (delay ${spec.delayMs}/${delayB} ms)`
    : spec.delayMs > 0
    ? ` (delay ${spec.delayMs} ms)`
    : "";
  return `${a}+${b}${spec.remap ? " (remap)" : ""}${delay}${
    spec.cutDirect ? " (direct cut, restored)" : ""
  }`;
}

/**
 * The path a pair must reach with this client: direct wherever plain hole punching works, where
 * either side's router maps ports (unless a side blocks UDP), and for port-restricted ×
 * symmetric (birthday punching); the relay elsewhere (symmetric × symmetric without port
 * mapping, UDP blocked).
 *
 * @example
 * ```ts
 * expectedPath({ a: "port-restricted", b: "symmetric", lossPercent: 0, remap: false, delayMs: 0 }); // "direct"
 * expectedPath({ a: "symmetric", b: "symmetric", lossPercent: 0, remap: false, delayMs: 0 }); // "relay"
 * ```
 */
export function expectedPath(spec: PairSpec): "direct" | "relay" {
  if (spec.a === "udp-blocked" || spec.b === "udp-blocked") return "relay";
  if (spec.portMappingA || spec.portMappingB) return "direct";
  if (birthdayPair(spec)) return "direct";
  return directPossible(spec.a, spec.b) ? "direct" : "relay";
}

/** Port-restricted × symmetric without port mapping: only birthday punching joins them. */
export function birthdayPair(spec: PairSpec): boolean {
  if (spec.portMappingA || spec.portMappingB) return false;
  const kinds = new Set([spec.a, spec.b]);
  return kinds.size === 2 && kinds.has("port-restricted") && kinds.has("symmetric");
}

/** The expected relay reasons (`why`) of A and B, where the pair must stay relayed. */
function expectedWhy(spec: PairSpec): [string, string] | undefined {
  if (spec.portMappingA || spec.portMappingB) return undefined;
  if (spec.a === "udp-blocked" && spec.b === "udp-blocked") {
    return ["udp blocked here", "udp blocked here"];
  }
  if (spec.a === "udp-blocked") return ["udp blocked here", "peer unreachable over UDP"];
  if (spec.b === "udp-blocked") return ["peer unreachable over UDP", "udp blocked here"];
  if (spec.a === "symmetric" && spec.b === "symmetric") {
    return ["both sides map per destination", "both sides map per destination"];
  }
  return undefined;
}

/**
 * The port-mapping rows: each kind of {@linkcode PORT_MAPPING_KINDS} with miniupnpd on its router,
 * paired with every kind, and with each other.
 *
 * @example
 * ```ts
 * portMappingPairs().length; // 15
 * ```
 */
export function portMappingPairs(kinds: readonly NatKind[] = NAT_KINDS): PairSpec[] {
  const specs: PairSpec[] = [];
  const base = { lossPercent: 0, remap: false, delayMs: 0 };
  for (const mapped of PORT_MAPPING_KINDS) {
    for (const other of kinds) {
      specs.push({ ...base, a: mapped, b: other, portMappingA: true });
    }
  }
  for (let i = 0; i < PORT_MAPPING_KINDS.length; i++) {
    for (let j = i; j < PORT_MAPPING_KINDS.length; j++) {
      specs.push({
        ...base,
        a: PORT_MAPPING_KINDS[i],
        b: PORT_MAPPING_KINDS[j],
        portMappingA: true,
        portMappingB: true,
      });
    }
  }
  return specs;
}

/** The delay (ms, each way, on each NAT's public side) of the matrix's delayed pair. */
export const DELAYED_PAIR_MS = 50;

/**
 * The impaired rows (issue 9): direct-capable pairs that once ended relayed under asymmetric
 * delay (10 ms on A's side, 150 ms on B's), 10 % loss with 40 ms delay, and 25 % loss. Every
 * one of them must end direct.
 */
export const IMPAIRED_PAIRS: readonly PairSpec[] = [
  {
    a: "port-restricted",
    b: "port-restricted",
    lossPercent: 0,
    remap: false,
    delayMs: 10,
    delayMsB: 150,
  },
  {
    a: "restricted-cone",
    b: "symmetric",
    lossPercent: 0,
    remap: false,
    delayMs: 10,
    delayMsB: 150,
  },
  { a: "port-restricted", b: "port-restricted", lossPercent: 10, remap: false, delayMs: 40 },
  { a: "full-cone", b: "port-restricted", lossPercent: 25, remap: false, delayMs: 0 },
];

/**
 * Every unordered pair of kinds (21 with same-kind pairs), at each loss rate, plus one pair of
 * port-remapping NATs and, if asked, one pair with delay and 5% loss.
 *
 * @example
 * ```ts
 * matrixPairs({ lossPercents: [0, 5], remapPair: true }).length; // 43
 * ```
 */
export function matrixPairs(
  options: {
    lossPercents: readonly number[];
    remapPair: boolean;
    delayPair?: boolean;
    cutPair?: boolean;
    /** Add {@linkcode IMPAIRED_PAIRS} (they need the delay holder). */
    impairedPairs?: boolean;
    /** Add {@linkcode portMappingPairs} (they need miniupnpd and coturn). */
    portMappingPairs?: boolean;
    kinds?: readonly NatKind[];
    delayMs?: number;
  },
): PairSpec[] {
  const delayMs = options.delayMs ?? 0;
  const kinds = options.kinds ?? NAT_KINDS;
  const specs: PairSpec[] = [];
  for (const lossPercent of options.lossPercents) {
    for (let i = 0; i < kinds.length; i++) {
      for (let j = i; j < kinds.length; j++) {
        specs.push({ a: kinds[i], b: kinds[j], lossPercent, remap: false, delayMs });
      }
    }
  }
  if (options.remapPair) {
    specs.push({
      a: "port-restricted",
      b: "port-restricted",
      lossPercent: 0,
      remap: true,
      delayMs,
    });
  }
  if (options.cutPair) {
    specs.push({
      a: "full-cone",
      b: "port-restricted",
      lossPercent: 0,
      remap: false,
      delayMs,
      cutDirect: true,
    });
  }
  if (options.delayPair) {
    // The pair that needs peer-reflexive answers, slowed down and lossy.
    specs.push({
      a: "restricted-cone",
      b: "symmetric",
      lossPercent: 5,
      remap: false,
      delayMs: DELAYED_PAIR_MS,
    });
  }
  if (options.impairedPairs) specs.push(...IMPAIRED_PAIRS.map((spec) => ({ ...spec })));
  if (options.portMappingPairs) {
    specs.push(...portMappingPairs(kinds).map((spec) => ({ ...spec, delayMs })));
  }
  return specs;
}

/** Timeouts and sizes of a run. */
export interface PairRunOptions {
  /** Messages each client sends to the other (default 50). */
  messages?: number;
  /** Start-up of the server and the clients (Deno start-up on a loaded machine), in ms. */
  startTimeoutMs?: number;
  /** From `connect` to a usable path, and from there to direct where expected, in ms. */
  pathTimeoutMs?: number;
  /** For all messages to arrive, in ms. */
  deliveryTimeoutMs?: number;
}

const DENO = Deno.execPath();

function serverArgv(): string[] {
  return [
    DENO,
    ...programRunArgs("stun_server", [
      "--host",
      SERVER_ADDRESS,
      "--tcp-port",
      String(LAB_TCP_PORT),
      "--stun-port",
      String(LAB_STUN_PORT),
      // RFC 5780 (alternate address and port): the clients measure their NAT's mapping and
      // filtering against it, which birthday punching needs.
      "--alt-host",
      SERVER_ALT_ADDRESS,
      "--alt-port",
      String(LAB_STUN_PORT + 1),
    ]),
  ];
}

function clientArgv(): string[] {
  return [
    DENO,
    ...programRunArgs("p2p_client", [
      "--ephemeral",
      "--json",
      "--server",
      `${SERVER_ADDRESS}:${LAB_TCP_PORT}`,
    ]),
  ];
}

/** Does /proc/net/tcp (of the namespace that printed it) show a listener on `port`? */
export function tcpListening(procNetTcp: string, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return procNetTcp.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1]?.endsWith(`:${hexPort}`) === true && fields[3] === "0A";
  });
}

async function pollUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const isPeerState = (peer: string, states: readonly string[]) => (e: JsonEvent) =>
  e.type === "peer" && e.peer === peer && states.includes(String(e.state));

/** The last state a client reported for a peer. */
function lastState(client: LabProcess, peer: string): string | undefined {
  const events = client.log.events.filter((e) => e.type === "peer" && e.peer === peer);
  return events.length === 0 ? undefined : String(events[events.length - 1].state);
}

/** How many of `expected` arrived, counting only an exact, in-order, duplicate-free prefix. */
function countInOrder(received: string[], expected: string[], problems: string[], label: string) {
  let matched = 0;
  for (const [index, text] of received.entries()) {
    if (text !== expected[index]) {
      problems.push(
        `${label}: message ${index} was ${JSON.stringify(text)}, expected ${
          JSON.stringify(expected[index])
        }`,
      );
      return matched;
    }
    matched++;
  }
  return matched;
}

/** Messages each way in each phase of the cut scenario. */
const CUT_PHASE_MESSAGES = 10;

interface CutContext {
  lab: NatLab;
  clientA: LabProcess;
  clientB: LabProcess;
  idA: string;
  idB: string;
  textsAB: string[];
  textsBA: string[];
  result: PairResult;
  receivedBy: (client: LabProcess, from: string) => string[];
  timeoutMs: number;
  deliveryTimeoutMs: number;
}

/** Sends a phase's messages both ways and waits until everything sent so far has arrived. */
async function exchangePhase(context: CutContext, phase: string): Promise<void> {
  const { clientA, clientB, idA, idB, textsAB, textsBA, receivedBy } = context;
  for (let i = 0; i < CUT_PHASE_MESSAGES; i++) {
    textsAB.push(`a2b-${phase}-${i}`);
    textsBA.push(`b2a-${phase}-${i}`);
    await clientA.command(`send ${idB} a2b-${phase}-${i}`);
    await clientB.command(`send ${idA} b2a-${phase}-${i}`);
  }
  await pollUntil(
    () =>
      Promise.resolve(
        receivedBy(clientB, idA).length >= textsAB.length &&
          receivedBy(clientA, idB).length >= textsBA.length,
      ),
    context.deliveryTimeoutMs,
    `the ${phase} messages`,
  ).catch((error) => context.result.problems.push(error.message));
}

/**
 * The cut scenario: cut UDP between the NATs, expect both sides on the relay with every message
 * delivered, restore UDP, expect both sides direct again, and deliver more.
 */
async function cutAndRestore(context: CutContext): Promise<void> {
  const { lab, clientA, clientB, idA, idB, result } = context;
  const both = (state: string) => () =>
    Promise.resolve(lastState(clientA, idB) === state && lastState(clientB, idA) === state);
  await lab.blockUdpBetween("a", "b");
  const cutAt = performance.now();
  const relayedBefore = clientA.log.events.length;
  await exchangePhase(context, "cut");
  try {
    await pollUntil(both("relayed"), context.timeoutMs, "both sides on the relay after the cut");
    const index = clientA.log.events.findIndex((e, i) =>
      i >= relayedBefore && isPeerState(idB, ["relayed"])(e)
    );
    result.fallbackMs = index < 0 ? null : Math.round(clientA.log.times[index] - cutAt);
  } catch {
    result.problems.push(
      `after the cut: A ${lastState(clientA, idB)}, B ${
        lastState(clientB, idA)
      } (expected relayed)`,
    );
  }
  const restoredAt = performance.now();
  await lab.unblockUdp();
  try {
    await pollUntil(both("direct"), context.timeoutMs, "both sides direct after the restore");
    result.reupgradeMs = Math.round(performance.now() - restoredAt);
  } catch {
    result.problems.push(
      `${context.timeoutMs} ms after UDP was restored: A ${lastState(clientA, idB)}, B ${
        lastState(clientB, idA)
      } (expected direct again)`,
    );
  }
  await exchangePhase(context, "back");
}

/** Builds the two-host lab of a pair. */
function createPairLab(spec: PairSpec): Promise<NatLab> {
  return NatLab.create({
    hosts: [
      {
        name: "a",
        kind: spec.a,
        remap: spec.remap,
        lossPercent: spec.lossPercent,
        delayMs: spec.delayMs,
        portMapping: spec.portMappingA ?? false,
      },
      {
        name: "b",
        kind: spec.b,
        remap: spec.remap,
        lossPercent: spec.lossPercent,
        delayMs: spec.delayMsB ?? spec.delayMs,
        portMapping: spec.portMappingB ?? false,
      },
    ],
  });
}

/**
 * Runs one pair: builds its lab, starts the real server and clients, connects A to B, exchanges
 * messages both ways, checks the path, and tears everything down.
 *
 * @example
 * ```ts
 * const result = await runPair(
 *   { a: "full-cone", b: "symmetric", lossPercent: 0, remap: false },
 *   {},
 * );
 * console.log(result.path, result.ok);
 * ```
 */
export async function runPair(spec: PairSpec, options: PairRunOptions): Promise<PairResult> {
  const messages = options.messages ?? 50;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const pathTimeoutMs = options.pathTimeoutMs ?? 30_000;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 60_000;
  const expected = expectedPath(spec);
  const result: PairResult = {
    ...spec,
    pair: pairName(spec),
    expected,
    path: "none",
    connectMs: null,
    directMs: null,
    firstMessageMs: null,
    peerUdpAtA: null,
    peerUdpAtB: null,
    fallbackMs: null,
    reupgradeMs: null,
    sent: 2 * messages,
    delivered: 0,
    howA: null,
    howB: null,
    whyA: null,
    whyB: null,
    birthdayPacketsA: null,
    birthdayPacketsB: null,
    ok: false,
    problems: [],
  };
  const problems = result.problems;
  let lab: NatLab;
  try {
    lab = await createPairLab(spec);
  } catch (error) {
    problems.push(`cannot build the lab: ${error instanceof Error ? error.message : error}`);
    return result;
  }
  const processes: LabProcess[] = [];
  try {
    const server = LabProcess.start(lab, lab.publicNamespace, serverArgv());
    processes.push(server);
    await pollUntil(
      async () => {
        if (server.log.ended) throw new Error("the server exited");
        return tcpListening(
          await lab.exec(lab.publicNamespace, ["cat", "/proc/net/tcp"]),
          LAB_TCP_PORT,
        );
      },
      startTimeoutMs,
      "the server to listen",
    ).catch((error) => {
      throw new Error(`${error.message}; server stderr: ${server.stderrTail.slice(-2000)}`);
    });
    const clientA = LabProcess.start(lab, lab.host("a").namespace, clientArgv());
    const clientB = LabProcess.start(lab, lab.host("b").namespace, clientArgv());
    processes.push(clientA, clientB);
    const [registeredA, registeredB] = await Promise.all(
      [clientA, clientB].map((client, index) =>
        client.log.waitFor((e) => e.type === "registered", startTimeoutMs, "registered")
          .catch((error) => {
            throw new Error(
              `client ${"AB"[index]} did not register: ${error.message}; stderr: ${
                client.stderrTail.slice(-2000)
              }`,
            );
          })
      ),
    );
    const idA = String(registeredA.id);
    const idB = String(registeredB.id);
    // A client that can use UDP learns its public endpoint before it connects.
    await Promise.all(
      ([[clientA, spec.a], [clientB, spec.b]] as const).map(async ([client, kind]) => {
        if (kind === "udp-blocked") return;
        await client.log.waitFor((e) => e.type === "endpoint", pathTimeoutMs, "endpoint")
          .catch(() => problems.push(`client behind ${kind} reported no public endpoint`));
      }),
    );

    // A client behind a port-mapping router holds its mapping before it connects (so the
    // introduction carries the mapped address; an in-band CANDIDATES frame would carry it too).
    await Promise.all(
      ([[clientA, spec.portMappingA], [clientB, spec.portMappingB]] as const).map(
        async ([client, mapped]) => {
          if (!mapped) return;
          await client.log.waitFor(
            (e) => e.type === "mapping" && e.state === "mapped",
            pathTimeoutMs,
            "port mapping",
          ).catch(() => problems.push("a client behind a port-mapping router got no mapping"));
        },
      ),
    );

    if (spec.remap) {
      // The clients must have learned the remapped public ports, not their local ones.
      for (const [name, client] of [["A", clientA], ["B", clientB]] as const) {
        const endpoint = client.log.events.find((e) => e.type === "endpoint");
        const port = Number(String(endpoint?.public ?? "").split(":").pop());
        const first = REMAP_PRIVATE_PORTS.first + REMAP_OFFSET;
        const last = REMAP_PRIVATE_PORTS.last + REMAP_OFFSET;
        if (!(port >= first && port <= last)) {
          problems.push(`${name}'s public endpoint ${endpoint?.public} is not a remapped port`);
        }
      }
    }

    const textsAB: string[] = Array.from({ length: messages }, (_, i) => `a2b-${i}`);
    const textsBA: string[] = Array.from({ length: messages }, (_, i) => `b2a-${i}`);
    // The first message goes out with the connect, before any path exists: the client holds it
    // until one does, so the time to it covers the whole connection setup.
    const connectAt = performance.now();
    await clientA.command(`connect ${idB}`);
    await clientA.command(`send ${idB} ${textsAB[0]}`);
    const usable = ["direct", "relayed"];
    await Promise.all([
      clientA.log.waitFor(isPeerState(idB, usable), pathTimeoutMs, "A's path to B"),
      clientB.log.waitFor(isPeerState(idA, usable), pathTimeoutMs, "B's path to A"),
    ]);
    result.connectMs = Math.round(
      (clientA.log.timeOf(isPeerState(idB, usable)) ?? performance.now()) - connectAt,
    );

    for (let i = 0; i < messages; i++) {
      if (i > 0) await clientA.command(`send ${idB} ${textsAB[i]}`);
      await clientB.command(`send ${idA} ${textsBA[i]}`);
    }
    const receivedBy = (client: LabProcess, from: string) =>
      client.log.events.filter((e) => e.type === "message" && e.from === from).map((e) =>
        String(e.text)
      );
    await pollUntil(
      () =>
        Promise.resolve(
          receivedBy(clientB, idA).length >= messages &&
            receivedBy(clientA, idB).length >= messages,
        ),
      deliveryTimeoutMs,
      "every message",
    ).catch((error) => problems.push(error.message));
    const firstMessageAt = clientB.log.timeOf((e) => e.type === "message" && e.from === idA);
    if (firstMessageAt !== undefined) {
      result.firstMessageMs = Math.round(firstMessageAt - connectAt);
    }

    if (expected === "direct") {
      const remaining = Math.max(1000, pathTimeoutMs - (performance.now() - connectAt));
      await Promise.all([
        pollUntil(
          () => Promise.resolve(lastState(clientA, idB) === "direct"),
          remaining,
          "A's direct path",
        ),
        pollUntil(
          () => Promise.resolve(lastState(clientB, idA) === "direct"),
          remaining,
          "B's direct path",
        ),
      ]).catch(() => {});
    }
    const directAt = clientA.log.timeOf(isPeerState(idB, ["direct"]));
    if (directAt !== undefined) result.directMs = Math.round(directAt - connectAt);
    const lastPeerEvent = (client: LabProcess, peer: string) =>
      client.log.events.filter((e) => e.type === "peer" && e.peer === peer).at(-1);
    const eventA = lastPeerEvent(clientA, idB);
    const eventB = lastPeerEvent(clientB, idA);
    result.howA = eventA?.how === undefined ? null : String(eventA.how);
    result.howB = eventB?.how === undefined ? null : String(eventB.how);
    result.whyA = eventA?.why === undefined ? null : String(eventA.why);
    result.whyB = eventB?.why === undefined ? null : String(eventB.why);
    const finalA = lastState(clientA, idB);
    const finalB = lastState(clientB, idA);
    result.path = finalA === "direct" && finalB === "direct"
      ? "direct"
      : finalA === "relayed" || finalB === "relayed"
      ? "relay"
      : "none";
    if (result.path !== expected) {
      problems.push(`expected ${expected}, reached ${result.path} (A: ${finalA}, B: ${finalB})`);
    }
    if (expected === "relay" && directAt !== undefined) {
      problems.push("reported a direct path where none can exist");
    }
    // What the hosts saw, independently of what the clients report: over a direct path the
    // peer's datagrams arrive; where no direct path can exist, none may.
    result.peerUdpAtA = await lab.udpFromPeers("a");
    result.peerUdpAtB = await lab.udpFromPeers("b");
    result.birthdayPacketsA = await lab.birthdayProbesSent("a");
    result.birthdayPacketsB = await lab.birthdayProbesSent("b");
    // The packet budget, counted on the wire: per attempt, the easy side's 2,048 probes or the
    // hard side's 256 sockets probing at most twice, plus a few answers; at most one attempt per
    // link a minute (BIRTHDAY_RETRY_MS after the last one ended).
    const attempts = 1 + Math.floor((performance.now() - connectAt) / BIRTHDAY_RETRY_MS);
    for (const [name, sent] of [["A", result.birthdayPacketsA], ["B", result.birthdayPacketsB]]) {
      if ((sent as number) > attempts * (DEFAULT_BUDGET.maxProbes + 16)) {
        problems.push(
          `${name} sent ${sent} birthday probes, over the budget (${attempts} attempts)`,
        );
      }
    }
    if (birthdayPair(spec) && result.path === "direct") {
      if (result.howA !== "birthday" || result.howB !== "birthday") {
        problems.push(`direct, but found by ${result.howA}/${result.howB}, not birthday punching`);
      }
    }
    if (!birthdayPair(spec) && (result.birthdayPacketsA! > 0 || result.birthdayPacketsB! > 0)) {
      problems.push(
        `birthday punching where no NAT class calls for it (${result.birthdayPacketsA}/${result.birthdayPacketsB} probes)`,
      );
    }
    if (
      (spec.portMappingA || spec.portMappingB) && !directPossible(spec.a, spec.b) &&
      result.path === "direct" && (result.howA !== "port-mapped" || result.howB !== "port-mapped")
    ) {
      problems.push(`direct, but found by ${result.howA}/${result.howB}, not the port mapping`);
    }
    const whys = expectedWhy(spec);
    if (whys && (result.whyA !== whys[0] || result.whyB !== whys[1])) {
      problems.push(`relayed because ${result.whyA}/${result.whyB}, expected ${whys.join("/")}`);
    }
    if (result.path === "direct" && (result.peerUdpAtA === 0 || result.peerUdpAtB === 0)) {
      problems.push(
        `direct reported, but peer UDP reached A ${result.peerUdpAtA}, B ${result.peerUdpAtB} times`,
      );
    }
    if (expected === "relay" && (result.peerUdpAtA > 0 || result.peerUdpAtB > 0)) {
      problems.push(
        `no direct path can exist, yet peer UDP reached A ${result.peerUdpAtA}, B ${result.peerUdpAtB} times`,
      );
    }
    if (spec.cutDirect) {
      if (result.path !== "direct") problems.push("no direct path to cut");
      else {
        await cutAndRestore({
          lab,
          clientA,
          clientB,
          idA,
          idB,
          textsAB,
          textsBA,
          result,
          receivedBy,
          timeoutMs: 2 * pathTimeoutMs,
          deliveryTimeoutMs,
        });
      }
    }
    // Every message acknowledged to its sender: nothing is still in flight when counting.
    const acknowledged = (client: LabProcess, peer: string) =>
      new Set(
        client.log.events.filter((e) => e.type === "delivered" && e.peer === peer).map((e) =>
          e.messageId
        ),
      ).size;
    await pollUntil(
      () =>
        Promise.resolve(
          acknowledged(clientA, idB) >= textsAB.length &&
            acknowledged(clientB, idA) >= textsBA.length,
        ),
      deliveryTimeoutMs,
      "every message to be acknowledged",
    ).catch(() =>
      problems.push(
        `acknowledged: A ${acknowledged(clientA, idB)}, B ${
          acknowledged(clientB, idA)
        } of ${textsAB.length}/${textsBA.length}`,
      )
    );

    result.sent = textsAB.length + textsBA.length;
    const gotAB = receivedBy(clientB, idA);
    const gotBA = receivedBy(clientA, idB);
    result.delivered = countInOrder(gotAB, textsAB, problems, "A->B") +
      countInOrder(gotBA, textsBA, problems, "B->A");
    if (gotAB.length > textsAB.length || gotBA.length > textsBA.length) {
      problems.push(
        `duplicates: B got ${gotAB.length} of ${textsAB.length}, A got ${gotBA.length} of ${textsBA.length}`,
      );
    }
    for (const [name, client] of [["A", clientA], ["B", clientB]] as const) {
      for (const event of client.log.events) {
        if (event.type === "error") problems.push(`${name} error: ${JSON.stringify(event)}`);
      }
    }
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  } finally {
    await Promise.allSettled(
      processes.slice(1).map((client) => client.stop({ exitLine: "exit", graceMs: 3000 })),
    );
    // A client that exits deletes its port mapping: nothing is left in miniupnpd's table.
    for (const [name, mapped] of [["a", spec.portMappingA], ["b", spec.portMappingB]] as const) {
      if (!mapped || processes.length < 3) continue;
      const rules = await miniupnpdRules(lab, lab.host(name).natNamespace!)
        .catch((error) => `cannot list: ${error}`);
      if (/dnat|cannot list/.test(rules)) {
        problems.push(`${name.toUpperCase()}'s port mapping is still on its router after exit`);
      }
    }
    await processes[0]?.stop({ signal: "SIGTERM", graceMs: 3000 });
    await lab.destroy();
  }
  result.ok = problems.length === 0 && result.delivered === result.sent;
  return result;
}

/**
 * Runs pairs with at most `concurrency` labs at once, each in its own namespaces.
 *
 * @example
 * ```ts
 * const results = await runMatrix(matrixPairs({ lossPercents: [0], remapPair: false }), {
 *   concurrency: 3,
 *   onResult: (r) => console.log(r.pair, r.path),
 * });
 * ```
 */
export async function runMatrix(
  specs: readonly PairSpec[],
  options: PairRunOptions & {
    concurrency?: number;
    onResult?: (result: PairResult) => void;
    signal?: AbortSignal;
  },
): Promise<PairResult[]> {
  const results: PairResult[] = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length && !options.signal?.aborted) {
      const index = next++;
      results[index] = await runPair(specs[index], options);
      options.onResult?.(results[index]);
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 3, specs.length));
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results.filter((result) => result !== undefined);
}
