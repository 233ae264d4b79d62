/**
 * The `bulk` section: how fast our direct path moves bulk data, side by side with what Deno itself
 * can do on the same machine in the same run.
 *
 * - ours: `testing/bulk_peer.ts`, the reliable channel over a secure session over Deno UDP (the
 *   per-packet path of a direct peer link), 256 MiB as bulk messages of about 1 MiB, with 1,200-byte
 *   packets (AES-256-GCM, what every client speaks) and with 65,507-byte packets (ChaCha20-Poly1305,
 *   TRANSPORT_LARGE, what a path probed that large carries: loopback).
 * - references: a plain Deno UDP sender and receiver with datagrams of the same size
 *   (`bench/bulk_plain.ts`: no crypto, no reliability, the receiver's rate is Deno's limit), and a
 *   plain Deno TCP loopback copy.
 * - per-packet AEAD costs of each option (`bench/bulk_aead.ts`) and what was chosen.
 *
 * Receiver and sender are pinned to different CPUs (receiver on the server CPU).
 *
 * @module
 */
import type { BenchContext, BenchSection, SectionResult } from "./context.ts";
import { withClientPair } from "./client_program.ts";
import { startServerForClients } from "./direct_bench.ts";
import { freePort } from "./ports.ts";
import { ChildProcess } from "./process.ts";
import { type BenchRow, makeRow } from "./report.ts";
import { ratioOf, summarize } from "./stats.ts";
import { BULK_PAYLOAD } from "./relay_bench.ts";
import { runRelayLoad } from "./sig_load.ts";

const MB = 1e6;

/** One transfer: receiver's bytes and seconds, both ends' CPU seconds and peak RSS. */
export interface BulkRun {
  /** Bytes that arrived. */
  bytes: number;
  /** Seconds from the first byte to the last. */
  seconds: number;
  /** Receiver CPU seconds over the transfer. */
  receiverCpu: number;
  /** Sender CPU seconds over the transfer (0 when not reported). */
  senderCpu: number;
  /** Peak RSS of the receiver and the sender, MiB (0 when not reported). */
  rssMiB: number;
  /** Private (anonymous) resident memory at the end, the larger of the two ends, MiB. */
  anonMiB?: number;
  /** Client programs: the larger RSS of the two just before the transfer (connected, idle), MiB. */
  idleRssMiB?: number;
  /** A file transfer: the SHA-256 the receiver verified. */
  sha256?: string;
}

/** Writes a file of `size` pattern bytes; resolves with its SHA-256. */
async function makeFile(path: string, size: number): Promise<string> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const piece = new Uint8Array(1 << 20);
    for (let at = 0; at < size; at += piece.length) {
      const part = piece.subarray(0, Math.min(piece.length, size - at));
      for (let i = 0; i < part.length; i += 256) part[i] = (at + i) >>> 8;
      hash.update(part);
      let done = 0;
      while (done < part.length) done += await file.write(part.subarray(done));
    }
  } finally {
    file.close();
  }
  return hash.digest("hex");
}

/** MB/s of a run. */
export function rateOf(run: BulkRun): number {
  return run.seconds > 0 ? run.bytes / run.seconds / MB : 0;
}

/** CPU µs per MB moved, both ends. */
export function cpuPerMb(run: BulkRun): number {
  return run.bytes > 0 ? ((run.receiverCpu + run.senderCpu) * 1e6) / (run.bytes / MB) : 0;
}

async function pair(
  context: BenchContext,
  script: string,
  receiverMode: string,
  senderMode: string,
  size: number,
  total: number | [string, string],
): Promise<BulkRun> {
  const port = freePort();
  const deno = Deno.execPath();
  const args = (mode: string) => [
    "run",
    "--no-prompt",
    "-A",
    "--unstable-net",
    `${context.repoRoot}/${script.includes("/") ? script : `bench/${script}`}`,
    mode,
    String(port),
    String(size),
    typeof total === "number" ? String(total) : mode === receiverMode ? total[0] : total[1],
  ];
  const receiver = ChildProcess.start({
    command: deno,
    args: args(receiverMode),
    cpu: context.serverCpu,
    label: `${script} ${receiverMode}`,
  });
  try {
    await receiver.waitForLine((line) => line === "ready", 30_000);
    const sender = ChildProcess.start({
      command: deno,
      args: args(senderMode),
      cpu: context.loadCpu,
      label: `${script} ${senderMode}`,
    });
    let senderLine = "";
    try {
      const line = await receiver.waitForLine((l) => l.startsWith("{"), 300_000);
      senderLine = await sender.waitForLine((l) => l.startsWith("{"), 5_000).catch(() => "");
      const r = JSON.parse(line);
      const s = senderLine === "" ? {} : JSON.parse(senderLine);
      if (r.failed !== undefined) throw new Error(`transfer failed: ${r.failed}`);
      return {
        bytes: r.bytes,
        seconds: r.seconds,
        receiverCpu: r.cpuSeconds ?? 0,
        senderCpu: s.cpuSeconds ?? 0,
        rssMiB: Math.max(r.rssMiB ?? 0, s.rssMiB ?? 0),
        anonMiB: Math.max(r.anonMiB ?? 0, s.anonMiB ?? 0),
        ...(r.sha256 === undefined ? {} : { sha256: r.sha256 }),
      };
    } finally {
      await sender.stop();
    }
  } finally {
    await receiver.stop();
  }
}

/** The file layer alone, disk to disk, both sides in one process (`bench/bulk_files.ts`). */
export interface FilesRun {
  /** File size. */
  bytes: number;
  /** Seconds from offer to `sent`. */
  seconds: number;
  /** Peak RSS of the process (both sides). */
  rssMiB: number;
  /** Whether the SHA-256 matched. */
  intact: boolean;
}

async function filesRun(context: BenchContext, size: number): Promise<FilesRun> {
  const dir = await Deno.makeTempDir({ dir: context.tmpDir, prefix: "files-" });
  const child = ChildProcess.start({
    command: Deno.execPath(),
    args: [
      "run",
      "--no-prompt",
      "-A",
      "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=20",
      `${context.repoRoot}/bench/bulk_files.ts`,
      dir,
      String(size),
    ],
    cpu: context.serverCpu,
    label: "bulk_files",
  });
  try {
    return JSON.parse(await child.waitForLine((l) => l.startsWith("{"), 300_000));
  } finally {
    await child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * `sendfile` between two real client programs (`p2p_client/main.ts --json`) through our server
 * (relay rate raised), direct or `--relay-only`: seconds from the command to `received`.
 */
async function clientFileRun(
  context: BenchContext,
  input: string,
  size: number,
  relayOnly: boolean,
  withoutFfi = false,
): Promise<BulkRun> {
  const { server, port } = await startServerForClients(context);
  const out = await Deno.makeTempDir({ dir: context.tmpDir, prefix: "client-files-" });
  try {
    return await withClientPair(context, port, {
      relayOnly,
      withoutFfi,
      extraArgs: (label) => ["--accept-files", "anyone", "--downloads", `${out}/${label}`],
    }, async (a, b) => {
      await a.command(`connect ${b.id}`);
      const wanted = relayOnly ? "relayed" : "direct";
      await a.waitFor((e) => e.type === "peer" && e.peer === b.id && e.state === wanted, 30_000);
      const rssNow = async (pid: number) => {
        const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
        return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
      };
      const idleRssMiB = Math.max(await rssNow(a.child.pid), await rssNow(b.child.pid));
      const start = performance.now();
      await a.command(`sendfile ${b.id} ${input}`);
      const received = await b.waitFor(
        (e) => e.type === "file" && (e.state === "received" || e.state === "failed"),
        300_000,
      );
      if (received.state !== "received") throw new Error(`sendfile failed: ${received.reason}`);
      const seconds = (performance.now() - start) / 1000;
      const peak = async (pid: number) => {
        const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
        return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
      };
      return {
        bytes: size,
        seconds,
        receiverCpu: 0,
        senderCpu: 0,
        rssMiB: Math.max(await peak(a.child.pid), await peak(b.child.pid)),
        idleRssMiB,
        sha256: String(received.sha256),
      };
    });
  } finally {
    await server.stop();
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}

/** Our server's relay bulk figure (the relay section's, 16 KiB frames), relay rate raised. */
async function relayReference(context: BenchContext): Promise<BulkRun> {
  const { server, port } = await startServerForClients(context);
  try {
    const result = await runRelayLoad(context, "ours", port, [
      "bulk",
      context.quick ? "300" : "1000",
      context.quick ? "1000" : "3000",
      String(BULK_PAYLOAD),
    ], server.pid);
    return {
      bytes: result.bytes ?? 0,
      seconds: result.seconds,
      receiverCpu: 0,
      senderCpu: 0,
      rssMiB: 0,
    };
  } finally {
    await server.stop();
  }
}

async function aeadCosts(context: BenchContext): Promise<Record<string, number>> {
  const child = ChildProcess.start({
    command: Deno.execPath(),
    args: [
      "run",
      "--no-prompt",
      "-A",
      `${context.repoRoot}/bench/bulk_aead.ts`,
      context.quick ? "150" : "400",
    ],
    cpu: context.serverCpu,
    label: "bulk_aead",
  });
  try {
    return JSON.parse(await child.waitForLine((l) => l.startsWith("{"), 120_000));
  } finally {
    await child.stop();
  }
}

/** Packet sizes measured: the base and the largest TRANSPORT_LARGE packet. */
const SMALL = 1200;
const LARGE = 65_507;

/**
 * Builds the rows from the runs (pure, tested).
 *
 * @example
 * ```ts
 * const rows = bulkRows({ oursSmall: [], oursLarge: [], plainSmall: [], plainLarge: [], tcp: [] }, {});
 * ```
 */
export function bulkRows(
  runs:
    & Record<"oursSmall" | "oursLarge" | "plainSmall" | "plainLarge" | "tcp", BulkRun[]>
    & {
      file?: BulkRun[];
      clientDirect?: BulkRun[];
      clientRelay?: BulkRun[];
      clientDirectFfi?: BulkRun[];
      clientRelayFfi?: BulkRun[];
      relayServer?: BulkRun[];
    },
  aead: Record<string, number>,
  files?: FilesRun,
): BenchRow[] {
  const rate = (list: BulkRun[]) => list.length > 0 ? summarize(list.map(rateOf)) : null;
  const cpu = (list: BulkRun[]) => list.length > 0 ? summarize(list.map(cpuPerMb)) : null;
  const rows: BenchRow[] = [];
  const oursLarge = rate(runs.oursLarge);
  const plainLarge = rate(runs.plainLarge);
  const largeRatio = ratioOf(oursLarge, plainLarge);
  rows.push(makeRow({
    section: "bulk",
    figure: `direct, ${LARGE}-byte packets (ChaCha20-Poly1305)`,
    unit: "MB/s",
    ours: oursLarge,
    referenceName: `plain Deno UDP pair, ${LARGE} B`,
    reference: plainLarge,
    ratio: largeRatio,
    target: "≥ 0.5× and ≥ 100 MB/s",
    verdict: oursLarge === null || largeRatio === null
      ? "n/a"
      : largeRatio >= 0.5 && oursLarge.median >= 100
      ? "met"
      : "short",
  }));
  const oursSmall = rate(runs.oursSmall);
  const plainSmall = rate(runs.plainSmall);
  rows.push(makeRow({
    section: "bulk",
    figure: `direct, ${SMALL}-byte packets (AES-256-GCM)`,
    unit: "MB/s",
    ours: oursSmall,
    referenceName: `plain Deno UDP pair, ${SMALL} B`,
    reference: plainSmall,
    ratio: ratioOf(oursSmall, plainSmall),
  }));
  const tcp = rate(runs.tcp);
  rows.push(makeRow({
    section: "bulk",
    figure: `direct, ${LARGE}-byte packets`,
    unit: "MB/s",
    ours: oursLarge,
    referenceName: "plain Deno TCP loopback copy",
    reference: tcp,
    ratio: ratioOf(oursLarge, tcp),
  }));
  rows.push(makeRow({
    section: "bulk",
    figure: `CPU per MB moved, both ends, ${LARGE}-byte packets`,
    unit: "µs",
    ours: cpu(runs.oursLarge),
    referenceName: `plain Deno UDP pair, ${LARGE} B`,
    reference: cpu(runs.plainLarge),
    ratio: ratioOf(cpu(runs.oursLarge), cpu(runs.plainLarge)),
  }));
  rows.push(makeRow({
    section: "bulk",
    figure: `CPU per MB moved, both ends, ${SMALL}-byte packets`,
    unit: "µs",
    ours: cpu(runs.oursSmall),
    referenceName: `plain Deno UDP pair, ${SMALL} B`,
    reference: cpu(runs.plainSmall),
    ratio: ratioOf(cpu(runs.oursSmall), cpu(runs.plainSmall)),
  }));
  const rss = runs.oursLarge.map((r) => r.rssMiB).filter((v) => v > 0);
  rows.push(makeRow({
    section: "bulk",
    figure: "peak RSS of either end, large packets",
    unit: "MiB",
    ours: rss.length > 0 ? summarize(rss) : null,
    target: "≤ 64 MiB",
    verdict: rss.length === 0 ? "n/a" : summarize(rss).median <= 64 ? "met" : "short",
  }));
  const anon = runs.oursLarge.map((r) => r.anonMiB ?? 0).filter((v) => v > 0);
  rows.push(makeRow({
    section: "bulk",
    figure: "… of which private (RssAnon at the end; the rest is the Deno binary's mapped code)",
    unit: "MiB",
    ours: anon.length > 0 ? summarize(anon) : null,
  }));
  const file = runs.file ?? [];
  if (file.length > 0) {
    const gib = (file[0].bytes / 2 ** 30).toFixed(2).replace(/\.00$/, "");
    const fileRate = rate(file);
    const fileRatio = ratioOf(fileRate, plainLarge);
    rows.push(makeRow({
      section: "bulk",
      figure: `file transfer over our direct stack, ${gib} GiB disk to disk, ${LARGE}-byte packets`,
      unit: "MB/s",
      ours: fileRate,
      referenceName: `plain Deno UDP pair, ${LARGE} B`,
      reference: plainLarge,
      ratio: fileRatio,
      target: "≥ 0.5× and ≥ 100 MB/s",
      verdict: fileRate === null || fileRatio === null
        ? "n/a"
        : fileRatio >= 0.5 && fileRate.median >= 100
        ? "met"
        : "short",
    }));
    const fileRss = summarize(file.map((r) => r.rssMiB));
    rows.push(makeRow({
      section: "bulk",
      figure: `… peak RSS of either end (separate processes), ${gib} GiB file`,
      unit: "MiB",
      ours: fileRss,
      target: "≤ 64 MiB",
      verdict: fileRss.median <= 64 ? "met" : "short",
    }));
    const fileAnon = file.map((r) => r.anonMiB ?? 0).filter((v) => v > 0);
    rows.push(makeRow({
      section: "bulk",
      figure: "… of which private (RssAnon at the end)",
      unit: "MiB",
      ours: fileAnon.length > 0 ? summarize(fileAnon) : null,
    }));
  }
  const clientRow = (list: BulkRun[] | undefined, how: string, relayed: boolean) => {
    if (list === undefined || list.length === 0) return;
    const mib = Math.round(list[0].bytes / 2 ** 20);
    const ours = rate(list);
    const reference = relayed ? rate(runs.relayServer ?? []) : plainLarge;
    const ratio = ratioOf(ours, reference);
    const target = relayed ? 0.5 : undefined;
    rows.push(makeRow({
      section: "bulk",
      figure: `sendfile between two client programs, ${how}, ${mib} MiB`,
      unit: "MB/s",
      ours,
      referenceName: relayed
        ? "our relay, bulk (relay section's load, rate raised)"
        : `plain Deno UDP pair, ${LARGE} B`,
      reference,
      ratio,
      target: relayed ? "≥ 0.5× the relay's bulk figure" : "≥ 0.5× and ≥ 100 MB/s",
      verdict: ours === null || ratio === null
        ? "n/a"
        : relayed
        ? ratio >= (target ?? 0) ? "met" : "short"
        : ratio >= 0.5 && ours.median >= 100
        ? "met"
        : "short",
    }));
    const rss = list.map((r) => r.rssMiB).filter((v) => v > 0);
    if (rss.length > 0) {
      rows.push(makeRow({
        section: "bulk",
        figure: `… peak RSS of either client (${how})`,
        unit: "MiB",
        ours: summarize(rss),
        target: "≤ 64 MiB",
        verdict: summarize(rss).median <= 64 ? "met" : "short",
      }));
    }
    const idle = list.map((r) => r.idleRssMiB ?? 0).filter((v) => v > 0);
    if (idle.length > 0) {
      rows.push(makeRow({
        section: "bulk",
        figure: `… RSS of either client before the transfer, connected and idle (${how})`,
        unit: "MiB",
        ours: summarize(idle),
      }));
    }
  };
  // The client's own flags include --allow-ffi (libcrypto, UDP buffers); the other rows run it
  // without, as a user who drops that flag would.
  clientRow(runs.clientDirectFfi, "direct", false);
  clientRow(runs.clientDirect, "direct, without --allow-ffi", false);
  clientRow(runs.clientRelayFfi, "--relay-only", true);
  clientRow(runs.clientRelay, "--relay-only, without --allow-ffi", true);
  if (files !== undefined) {
    const gib = (files.bytes / 2 ** 30).toFixed(2).replace(/\.00$/, "");
    rows.push(makeRow({
      section: "bulk",
      figure: `file layer alone, ${gib} GiB disk to disk, both sides in one process`,
      unit: "MB/s",
      ours: summarize([files.bytes / files.seconds / MB]),
      note: files.intact ? "" : "SHA-256 did not match",
    }));
    rows.push(makeRow({
      section: "bulk",
      figure: `… peak RSS of that process (both sides), ${gib} GiB`,
      unit: "MiB",
      ours: summarize([files.rssMiB]),
      target: "≤ 64 MiB per side",
      verdict: files.rssMiB <= 64 ? "met" : "n/a",
    }));
  }
  const aeadRow = (label: string, key: string, reference?: [string, string]) => {
    const value = aead[key];
    const ref = reference === undefined ? undefined : aead[reference[1]];
    const ours = value === undefined ? null : summarize([value]);
    const refSummary = ref === undefined ? null : summarize([ref]);
    rows.push(makeRow({
      section: "bulk",
      figure: `seal + open, ${label}`,
      unit: "µs",
      ours,
      referenceName: reference?.[0] ?? "",
      reference: refSummary,
      ratio: ratioOf(ours, refSummary),
    }));
  };
  for (const bytes of [1171, 65_478]) {
    aeadRow(`ChaCha20-Poly1305, ${bytes} B`, `chacha20-poly1305 ${bytes}`, [
      "AES-256-GCM, raw key per packet",
      `aes-256-gcm raw key ${bytes}`,
    ]);
    aeadRow(`AES-256-GCM KeyObject, ${bytes} B`, `aes-256-gcm KeyObject ${bytes}`, [
      "AES-256-GCM, raw key per packet",
      `aes-256-gcm raw key ${bytes}`,
    ]);
    aeadRow(`WebCrypto AES-GCM, batches of 64, ${bytes} B`, `webcrypto aes-gcm 64 ${bytes}`, [
      "WebCrypto, one at a time",
      `webcrypto aes-gcm 1 ${bytes}`,
    ]);
  }
  aeadRow("our session, 0xE5, 65,478 B", "session 0xE5 65478");
  aeadRow("our session, 0xE4, 1,171 B", "session 0xE4 1171", [
    "our session, 0xE5",
    "session 0xE5 1171",
  ]);
  rows.push(makeRow({
    section: "bulk",
    figure: "Deno.QuicEndpoint on the punched socket",
    unit: "",
    note: "not available: it binds its own socket (AddrInUse on the punched port), cannot share it",
  }));
  return rows;
}

/** The `bulk` section. */
export const bulkSection: BenchSection = {
  name: "bulk",
  async run(context: BenchContext): Promise<SectionResult> {
    const total = context.quick ? 64 << 20 : 256 << 20;
    const runs = {
      oursSmall: [] as BulkRun[],
      oursLarge: [] as BulkRun[],
      plainSmall: [] as BulkRun[],
      plainLarge: [] as BulkRun[],
      tcp: [] as BulkRun[],
      file: [] as BulkRun[],
      clientDirect: [] as BulkRun[],
      clientRelay: [] as BulkRun[],
      clientDirectFfi: [] as BulkRun[],
      clientRelayFfi: [] as BulkRun[],
      relayServer: [] as BulkRun[],
    };
    const fileSize = context.quick ? 256 << 20 : 1 << 30;
    const fileDir = await Deno.makeTempDir({ dir: context.tmpDir, prefix: "file-" });
    const input = `${fileDir}/input.bin`;
    const expectedSha = await makeFile(input, fileSize);
    const errors: string[] = [];
    const attempt = async (list: BulkRun[], measure: () => Promise<BulkRun>) => {
      try {
        list.push(await measure());
      } catch (error) {
        errors.push((error as Error).message);
      }
    };
    for (let run = 0; run < context.runs; run++) {
      context.log(`bulk run ${run + 1}/${context.runs}`);
      await attempt(
        runs.plainLarge,
        () => pair(context, "bulk_plain.ts", "udp-recv", "udp-send", LARGE, total),
      );
      await attempt(
        runs.oursLarge,
        () => pair(context, "testing/bulk_peer.ts", "recv", "send", LARGE - 29, total),
      );
      await attempt(
        runs.plainSmall,
        () => pair(context, "bulk_plain.ts", "udp-recv", "udp-send", SMALL, total),
      );
      // 256 MiB at ~12 MB/s would take 20 s: the small-packet run moves a quarter.
      await attempt(
        runs.oursSmall,
        () => pair(context, "testing/bulk_peer.ts", "recv", "send", SMALL - 29, total / 4),
      );
      await attempt(
        runs.tcp,
        () => pair(context, "bulk_plain.ts", "tcp-recv", "tcp-send", 65_536, total),
      );
      const out = `${fileDir}/out-${run}`;
      await Deno.mkdir(out);
      await attempt(runs.file, async () => {
        const result = await pair(
          context,
          "testing/bulk_peer.ts",
          "file-recv",
          "file-send",
          LARGE - 29,
          [
            out,
            input,
          ],
        );
        if (result.sha256 !== expectedSha) throw new Error("file arrived with another SHA-256");
        return result;
      });
      await Deno.remove(out, { recursive: true }).catch(() => {});
      const clientSize = context.quick ? 64 << 20 : 256 << 20;
      const clientInput = `${fileDir}/client.bin`;
      if (run === 0) await makeFile(clientInput, clientSize);
      for (const relayOnly of [false, true]) {
        for (const ffi of [false, true]) {
          const list = relayOnly
            ? (ffi ? runs.clientRelayFfi : runs.clientRelay)
            : (ffi ? runs.clientDirectFfi : runs.clientDirect);
          await attempt(
            list,
            () =>
              clientFileRun(
                context,
                clientInput,
                clientSize,
                relayOnly,
                !ffi,
              ),
          );
        }
      }
      await attempt(runs.relayServer, () => relayReference(context));
    }
    await Deno.remove(fileDir, { recursive: true }).catch(() => {});
    let files: FilesRun | undefined;
    try {
      context.log("bulk: file layer, disk to disk");
      files = await filesRun(context, context.quick ? 256 << 20 : 1 << 30);
    } catch (error) {
      errors.push(`files: ${(error as Error).message}`);
    }
    let aead: Record<string, number> = {};
    try {
      aead = await aeadCosts(context);
    } catch (error) {
      errors.push(`aead: ${(error as Error).message}`);
    }
    const rows = bulkRows(runs, aead, files);
    if (errors.length > 0) rows[0].note = `errors: ${errors.slice(0, 3).join("; ")}`;
    return { rows, details: { runs, aead, files, errors } };
  },
};
