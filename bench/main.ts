/**
 * `deno task bench`: the benchmark suite. Prints a table (ours, reference, ratio) on stdout and
 * writes a JSON report to `bench/out/`. Options: `--help`.
 *
 * @module
 */
import type { BenchContext, BenchSection } from "./context.ts";
import { describeMachine } from "./machine.ts";
import { buildNative, ensureTools } from "./native.ts";
import { parseBenchOptions, USAGE } from "./options.ts";
import type { BenchReport, BenchRow } from "./report.ts";
import { makeRow } from "./report.ts";
import { attackSection } from "./attack_bench.ts";
import { bulkSection } from "./bulk_bench.ts";
import { capacitySection } from "./capacity_bench.ts";
import { clusterSection } from "./cluster_bench.ts";
import { directSection } from "./direct_bench.ts";
import { relaySection } from "./relay_bench.ts";
import { setupSection } from "./setup_bench.ts";
import { stunSection } from "./stun_bench.ts";
import { turnSection } from "./turn_bench.ts";
import { formatTable } from "./table.ts";
import { formatProfile, type ProfileEntry } from "./profile.ts";

const SECTIONS: Record<string, BenchSection> = {
  stun: stunSection,
  turn: turnSection,
  relay: relaySection,
  direct: directSection,
  capacity: capacitySection,
  setup: setupSection,
  cluster: clusterSection,
  attack: attackSection,
  bulk: bulkSection,
};

/** How each figure was taken, printed under the table. */
const SETUP_NOTES = [
  "How: stun = native generator bench/native/stun_load.c (sendmmsg/recvmmsg, 128 in flight, every",
  "  response checked: transaction ID, XOR-MAPPED-ADDRESS = the generator's address); server CPU =",
  "  utime+stime delta of /proc/<pid>/stat over the window / answered; coturn = turnserver -n",
  "  --stun-only -m 1 -L 127.0.0.1 --no-cli --no-tls --no-dtls; plain Deno responder =",
  "  bench/deno_stun_responder.ts; C recvmmsg = bench/native/stun_responder.c.",
  "  turn = native generator bench/native/turn_load.c (allocates with long-term credentials, binds",
  "  a channel to its own peer socket, 128 ChannelData of 100 bytes in flight client -> server ->",
  "  peer -> server -> client, every payload checked); CPU per forwarded packet = CPU delta /",
  "  (2 x round trips); coturn = turnserver -n -m 1 -L 127.0.0.1 --lt-cred-mech",
  "  --allow-loopback-peers.",
  "  relay = native client bench/native/sig_load.c (one thread; registers with Ed25519 and `connect`",
  "  exactly as docs/protocol.md says; bulk sender keeps <= 4 MiB in flight), C relay =",
  "  bench/native/tcp_relay.c (epoll, same framing), plain Deno relay = bench/deno_relay.ts (a",
  "  read/write loop, same framing); direct TCP = the same client pairs connected",
  "  to each other: that row is also the client's own ceiling (it does the same reads and writes",
  "  per message as through a relay), so the generator is not what limits the relay rows below it.",
  "  direct/setup = the real client program (p2p_client/main.ts --json) driven over",
  "  stdin/stdout; latencies include the pipes. capacity = sig_load opening 10,000 registrations",
  "  at once; RSS from /proc/<pid>/status.",
  "  attack = bench/attack_bench.ts: honest clients from ::1 while floods run from 127.0.0.1",
  "  against the real server (--max-clients 200): idle registrations filling it, 5,120",
  "  connections announcing frames never sent, 16 senders flooding one receiver's relay queue.",
];

const encoder = new TextEncoder();
function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}
function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseBenchOptions(args);
  } catch (error) {
    err(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    out(USAGE);
    return 0;
  }
  if (Deno.build.os !== "linux") {
    err("bench: needs Linux (/proc, taskset, recvmmsg)");
    return 1;
  }
  const missing = await ensureTools();
  if (missing.length > 0) {
    err(`bench: missing and could not install: ${missing.join(", ")}`);
    return 1;
  }
  const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const tmpDir = await Deno.makeTempDir({ prefix: "p2p-bench-" });
  const cores = navigator.hardwareConcurrency;
  const pin = options.pin && cores >= 2;
  const context: BenchContext = {
    repoRoot,
    bins: {},
    tmpDir,
    runs: options.runs,
    quick: options.quick,
    profile: options.profile,
    serverCpu: pin ? 0 : undefined,
    loadCpu: pin ? 1 : undefined,
    log: (message) => err(`[${new Date().toISOString().slice(11, 19)}] ${message}`),
  };
  const pinning = pin
    ? "server under test (ours and every reference) on CPU 0, load generators on CPU 1 " +
      "(taskset); direct/setup: client A on CPU 0, client B on CPU 1"
    : "not pinned";
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: await describeMachine(),
    pinning,
    settings: { runs: options.runs, quick: options.quick, sections: options.only.join(",") },
    rows: [],
    details: {},
  };
  const profiles: { title: string; entries: ProfileEntry[] }[] = [];
  const extraText: string[] = [];
  try {
    context.bins = await buildNative(tmpDir);
    for (const name of options.only) {
      const section = SECTIONS[name];
      if (section === undefined) {
        report.rows.push(makeRow({
          section: name,
          figure: "(section)",
          unit: "",
          note: "not available: not written yet",
        }));
        continue;
      }
      context.log(`section ${name}`);
      let rows: BenchRow[];
      const sectionProfiles: { title: string; entries: ProfileEntry[] }[] = [];
      try {
        const result = await section.run(context);
        rows = result.rows;
        report.details[name] = result.details;
        sectionProfiles.push(...(result.profiles ?? []));
        extraText.push(...(result.text ?? []));
      } catch (error) {
        rows = [makeRow({
          section: name,
          figure: "(section)",
          unit: "",
          note: `failed: ${(error as Error).message}`,
        })];
      }
      report.rows.push(...rows);
      profiles.push(...sectionProfiles);
    }
  } finally {
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
  const machine = report.machine;
  out(
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, ` +
      `Deno ${machine.deno}; load average at start ${Number(machine.load1).toFixed(2)}`,
  );
  out(`Pinning: ${pinning}`);
  out(
    `Runs: ${options.runs} per figure; value = median (min–max)${options.quick ? "; --quick" : ""}`,
  );
  out("");
  out(formatTable(report.rows));
  const loadAtEnd = Deno.loadavg()[0];
  report.machine.load1AtEnd = loadAtEnd;
  out("");
  for (const line of SETUP_NOTES) out(line);
  // The load average at the end includes this run's own server and generator, so only the
  // reading taken before anything started says whether others were using the machine.
  if (Number(machine.load1) > 0.3 * cores) {
    out(
      `Note: load average ${Number(machine.load1).toFixed(2)} at start on ${cores} cores ` +
        "(before this run started anything): other work shared the machine, so these figures " +
        "are provisional.",
    );
  } else {
    out(
      `Load average ${Number(machine.load1).toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end ` +
        "(the end figure includes this run's own processes).",
    );
  }
  for (const profile of profiles) out(`\n${formatProfile(profile.title, profile.entries)}`);
  if (extraText.length > 0) out(`\n${extraText.join("\n")}`);
  report.details.profiles = profiles;
  const outDir = options.outDir.startsWith("/") ? options.outDir : `${repoRoot}/${options.outDir}`;
  await Deno.mkdir(outDir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, "-");
  const json = JSON.stringify(report, null, 2) + "\n";
  await Deno.writeTextFile(`${outDir}/bench-${stamp}.json`, json);
  await Deno.writeTextFile(`${outDir}/latest.json`, json);
  out(`\nJSON report: ${outDir}/bench-${stamp}.json (also latest.json)`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
