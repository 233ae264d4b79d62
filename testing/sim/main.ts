/**
 * `deno task sim --runs N [--seed S]`: runs N seeded fault schedules against a system (the real
 * client and server by default once they run on the injected runtime; see `systems.ts`) and
 * checks the invariants of `checker.ts`. Each run prints its seed and trace hash; a failure prints
 * the topology, the faults, the violations and the trace tail, and the command that reruns it.
 * `--seed S --runs 1 --trace` replays one seed with its whole trace on stdout.
 *
 * Exit code 0 when every run passed, 1 when one failed, 2 on bad arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatFailure, runBatch } from "./batch.ts";
import { type Fault, FAULT_KINDS, generateSchedule } from "./schedule.ts";
import { runSchedule } from "./scenario.ts";
import { DEFAULT_SYSTEM, SYSTEM_NAMES, systemByName } from "./systems.ts";

const USAGE = `usage: deno task sim [--runs N] [--seed S] [--system NAME] [--workers W]
                     [--clients K] [--fault-period-ms MS] [--kinds K1,K2] [--trace [--packets] [--client-log]] [--quiet]
  --runs N            schedules to run (default 100)
  --seed S            first seed (default: random, printed); seeds S..S+N-1 run
  --system NAME       ${SYSTEM_NAMES.join(" | ")} (default ${DEFAULT_SYSTEM})
  --workers W         worker threads (default 1)
  --clients K         clients per schedule (default 2)
  --fault-period-ms   length of the fault period (default 40000)
  --kinds K1,K2       only these fault kinds (${FAULT_KINDS.join(",")})
  --trace             print every trace line (one seed only)
  --packets           with --trace, print every datagram arrival too
  --client-log        with --trace, print the real clients' debug logs and peer events too
  --quiet             print failures and the summary only`;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  Deno.exit(2);
}

function integer(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}`);
  return n;
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        runs: { type: "string" },
        seed: { type: "string" },
        system: { type: "string" },
        workers: { type: "string" },
        clients: { type: "string" },
        "fault-period-ms": { type: "string" },
        kinds: { type: "string" },
        trace: { type: "boolean" },
        packets: { type: "boolean" },
        "client-log": { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values;
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const runs = integer(values.runs, "runs", 100, 1);
  const firstSeed = integer(
    values.seed,
    "seed",
    crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000_000,
    0,
  );
  const system = values.system ?? DEFAULT_SYSTEM;
  if (!SYSTEM_NAMES.includes(system)) fail(`unknown system ${system}`);
  const kinds = values.kinds?.split(",").map((k) => k.trim()) as Fault["kind"][] | undefined;
  for (const kind of kinds ?? []) {
    if (!FAULT_KINDS.includes(kind)) fail(`unknown fault kind ${kind}`);
  }
  const schedule = {
    clients: integer(values.clients, "clients", 2, 2),
    faultPeriodMs: integer(values["fault-period-ms"], "fault-period-ms", 40_000, 0),
    kinds,
  };
  const seeds = Array.from({ length: runs }, (_, i) => firstSeed + i);
  console.log(
    `simulating ${runs} schedule(s) against ${system}, seeds ${firstSeed}..${seeds.at(-1)}`,
  );
  const started = performance.now();

  if (values.trace) {
    if (runs !== 1) fail("--trace replays one seed: add --runs 1");
    const result = await runSchedule(
      await systemByName(system, {
        clientLog: values["client-log"]
          ? (node, at, message) => console.log(`${at.toFixed(3)} log ${node}: ${message}`)
          : undefined,
      }),
      generateSchedule(firstSeed, schedule),
      { echoTrace: true, echoPackets: values.packets },
    );
    console.log(
      `seed ${firstSeed} ${
        result.violations.length === 0 ? "ok" : "FAILED"
      } hash ${result.traceHash}`,
    );
    for (const v of result.violations) console.log(`  [${v.invariant}] ${v.at} ms: ${v.detail}`);
    Deno.exit(result.violations.length === 0 ? 0 : 1);
  }

  const failed: number[] = [];
  await runBatch({
    system,
    seeds,
    schedule,
    workers: integer(values.workers, "workers", 1, 1),
    onResult: (result) => {
      if (result.violations.length > 0) {
        failed.push(result.seed);
        console.log(formatFailure(result, system));
      } else if (!values.quiet) {
        console.log(
          `seed ${result.seed} ok hash ${result.traceHash} (${
            result.nats.join(" ")
          }; ${result.faults.length} faults; ${result.counts.sent} sent)`,
        );
      }
    },
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${runs} schedule(s), ${failed.length} failed, ${seconds} s${
      failed.length > 0 ? `; failing seeds: ${failed.sort((a, b) => a - b).join(" ")}` : ""
    }`,
  );
  Deno.exit(failed.length === 0 ? 0 : 1);
}
