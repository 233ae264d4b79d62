/**
 * Section "attack" (issue 11): what an honest user sees while each flood runs, beside the quiet
 * figure, against the real server process on loopback. Floods: idle registrations filling the
 * server (`--max-clients 200`, filled from 127.0.0.1; the puzzle is paid), 2,560 connections each
 * announcing a 65,536-byte frame and 2,560 announcing 4,000 bytes, never sent; 16 senders
 * flooding one receiver's relay queue. The honest clients come from ::1 (another source prefix,
 * as an honest user elsewhere on the Internet would). Figures: the honest pair's time from
 * opening its connections to the first relayed message (register both, `connect`, one message),
 * and the honest relay latency p50 (one 64-byte message every 20 ms, 30 of them).
 *
 * @module
 */
import { Identity } from "../shared/identity/mod.ts";
import { SignalingConnection } from "../shared/signaling/mod.ts";
import { ServerProcess } from "../testing/server_process.ts";
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { type BenchRow, makeRow } from "./report.ts";
import { ratioOf, summarize } from "./stats.ts";

const SERVER_ARGS = [
  "--host",
  "::",
  "--max-clients",
  "200",
  "--max-conns-per-ip",
  "100000",
  "--log-level",
  "error",
];

async function registeredClient(port: number, hostname = "::1") {
  const me = await Identity.generate();
  const conn = await SignalingConnection.connect({ hostname, port, maxBufferedEvents: 1 << 16 });
  await conn.register(me, [], 10_000);
  return { me, conn };
}

/** Register two honest clients, connect, one relayed message: ms. */
async function honestPairMs(port: number): Promise<number> {
  const start = performance.now();
  const a = await registeredClient(port);
  const b = await registeredClient(port);
  try {
    a.conn.send({ type: "connect", peer: b.me.id });
    await a.conn.waitFor("introduce", 10_000);
    await b.conn.waitFor("introduce", 10_000);
    a.conn.sendRelay(b.me.id, new Uint8Array(16));
    for (;;) {
      const event = await b.conn.next(10_000);
      if (event === undefined) throw new Error("the honest receiver was disconnected");
      if (event.kind === "relay") break;
    }
    return performance.now() - start;
  } finally {
    a.conn.close();
    b.conn.close();
  }
}

/** A receiver with an honest sender and optional flooders; returns the honest p50 latency. */
async function relayLatencyP50(port: number, flooders: number): Promise<number> {
  const victim = await registeredClient(port);
  const honest = await registeredClient(port);
  const floods = [];
  for (let i = 0; i < flooders; i++) floods.push(await registeredClient(port, "127.0.0.1"));
  const all = [victim, honest, ...floods];
  try {
    for (const sender of [honest, ...floods]) {
      sender.conn.send({ type: "connect", peer: victim.me.id });
      await sender.conn.waitFor("introduce", 10_000);
    }
    let running = true;
    const frame = new Uint8Array(60_000);
    const flood = (async () => {
      while (running) {
        for (const f of floods) {
          // A closed connection queues nothing: without the check this loop would never end.
          while (!f.conn.isClosed && f.conn.queuedBytes < 256 * 1024) {
            f.conn.sendRelay(victim.me.id, frame);
          }
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    // Refusals to the senders are read and discarded, so nobody stalls on them.
    for (const c of [honest, ...floods]) {
      (async () => {
        while (!c.conn.isClosed && (await c.conn.next()) !== undefined) {
          // discard
        }
      })().catch(() => {});
    }
    const samples: number[] = [];
    const sentAt = new Map<number, number>();
    const receive = (async () => {
      for (;;) {
        const event = await victim.conn.next(15_000);
        if (event === undefined) return;
        if (event.kind !== "relay" || event.peer !== honest.me.id) continue;
        const seq = new DataView(event.payload.buffer, event.payload.byteOffset).getUint32(0);
        samples.push(performance.now() - sentAt.get(seq)!);
        if (samples.length === 30) return;
      }
    })();
    if (flooders > 0) await new Promise((r) => setTimeout(r, 500));
    for (let seq = 0; seq < 30; seq++) {
      const payload = new Uint8Array(64);
      new DataView(payload.buffer).setUint32(0, seq);
      sentAt.set(seq, performance.now());
      honest.conn.sendRelay(victim.me.id, payload);
      await new Promise((r) => setTimeout(r, 20));
    }
    await receive;
    running = false;
    await flood;
    const closed = floods.filter((f) => f.conn.isClosed).length;
    if (closed > 0) {
      console.error(`attack: ${closed} of ${floods.length} flooders were disconnected`);
    }
    samples.sort((x, y) => x - y);
    return samples[Math.floor(samples.length / 2)];
  } finally {
    for (const c of all) c.conn.close();
  }
}

async function fillWithIdleRegistrations(port: number): Promise<SignalingConnection[]> {
  const conns: SignalingConnection[] = [];
  for (let i = 0; i < 200; i++) {
    try {
      conns.push((await registeredClient(port, "127.0.0.1")).conn);
    } catch {
      break; // full
    }
  }
  return conns;
}

async function announceFlood(port: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (const announced of [65_536, 4_000]) {
    const header = new Uint8Array(25);
    new DataView(header.buffer).setUint32(0, announced);
    header[4] = 1;
    for (let i = 0; i < 2560; i++) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.push(conn);
        conn.write(header).catch(() => {});
      } catch {
        // refused
      }
    }
  }
  return conns;
}

/** One run: every figure quiet and under its flood, each on a fresh server. */
async function oneRun(failures: string[]): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  const withServer = async (body: (port: number) => Promise<void>) => {
    const server = await ServerProcess.start({ args: SERVER_ARGS });
    try {
      await body(server.tcpPort);
    } catch (error) {
      failures.push((error as Error).message);
    } finally {
      await server.stop().catch(() => {});
    }
  };
  await withServer(async (port) => {
    result.pairQuiet = await honestPairMs(port);
    result.latencyQuiet = await relayLatencyP50(port, 0);
  });
  await withServer(async (port) => {
    const conns = await fillWithIdleRegistrations(port);
    result.pairIdleFlood = await honestPairMs(port);
    for (const c of conns) c.close();
  });
  await withServer(async (port) => {
    const conns = await announceFlood(port);
    result.pairAnnounceFlood = await honestPairMs(port);
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the server
      }
    }
  });
  await withServer(async (port) => {
    result.latencyFlood = await relayLatencyP50(port, 16);
  });
  return result;
}

/** The "under attack" section. */
export const attackSection: BenchSection = {
  name: "attack",
  async run(context: BenchContext): Promise<SectionResult> {
    const runs: Record<string, number>[] = [];
    const failures: string[] = [];
    for (let i = 0; i < context.runs; i++) {
      try {
        runs.push(await oneRun(failures));
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    for (const failure of failures) context.log(`attack: a step failed: ${failure}`);
    const note = failures.length === 0 ? "" : `${failures.length} step(s) failed: ${failures[0]}`;
    const figure = (key: string) => {
      const values = runs.map((r) => r[key]).filter((v) => typeof v === "number");
      return values.length === 0 ? null : summarize(values);
    };
    const row = (title: string, unit: string, flood: string, quiet: string, target: string) => {
      const ours = figure(flood), reference = figure(quiet);
      const ratio = ratioOf(ours, reference);
      return makeRow({
        section: "attack",
        figure: title,
        unit,
        ours,
        referenceName: "quiet",
        reference,
        ratio,
        target,
        verdict: ours === null ? "n/a" : ours.median <= 5000 ? "met" : "short",
        note,
      });
    };
    const rows: BenchRow[] = [
      row(
        "honest pair register+connect+message, server full of idle registrations",
        "ms",
        "pairIdleFlood",
        "pairQuiet",
        "≤ 5000 ms",
      ),
      row(
        "honest pair register+connect+message, 5,120 connections announcing frames",
        "ms",
        "pairAnnounceFlood",
        "pairQuiet",
        "≤ 5000 ms",
      ),
      row(
        "honest relay latency p50, 16 senders flooding the receiver",
        "ms",
        "latencyFlood",
        "latencyQuiet",
        "a few ms above quiet",
      ),
    ];
    rows[2].verdict = rows[2].ours !== null && rows[2].reference !== null
      ? (rows[2].ours.median <= rows[2].reference.median + 10 ? "met" : "short")
      : "n/a";
    return { rows, details: { attack: runs } };
  },
};
