/**
 * `deno task natlab`: runs the NAT matrix and prints it.
 *
 * Flags: `--json` (print the results as JSON instead of the table), `--loss 0,5` (loss rates in
 * percent), `--pairs a+b,...` (only these pairs; leaves out the delayed pair), `--no-remap` (skip
 * the port-remapping pair), `--no-delay` (skip the delayed pair), `--no-impaired` (skip the
 * impaired rows: asymmetric delay, 10 % loss with delay, 25 % loss), `--impaired` (only those), `--no-cut` (skip the pair whose
 * direct path is cut and restored), `--cut` (cut and restore the direct path of every
 * direct-capable run), `--delay-ms N` (delay every NAT's public side by N ms each way),
 * `--concurrency N` (labs at once, default 3), `--messages N` (per direction, default 50),
 * `--runs N` (every selected pair N times, with a summary per pair: direct count, median time
 * to direct, birthday probes), `--no-port-mapping` (skip the rows whose routers map ports:
 * `<kind>-pm`, which need miniupnpd and coturn). `--pairs` takes those kinds too
 * (`symmetric-pm+port-restricted`).
 * Exits 0 when every run met its expectations, 1 otherwise, 2 when the lab cannot run here.
 *
 * @module
 */

import { checkLabSupport } from "./environment.ts";
import { destroyAllLabs, sweepStaleNamespaces } from "./lab.ts";
import { matrixPairs, type PairResult, type PairSpec, runMatrix } from "./matrix.ts";
import { formatMatrixTable } from "./matrix_table.ts";
import { directPossible, isNatKind } from "./nat_kind.ts";

/** Parsed command line of the matrix runner. */
export interface NatlabArgs {
  /** Print JSON instead of the table. */
  json: boolean;
  /** Loss rates. */
  lossPercents: number[];
  /** Only these pairs (`a+b`, a kind with `-pm`: its router maps ports), or all. */
  pairs: [string, string][] | undefined;
  /** Include the remapping pair. */
  remap: boolean;
  /** Include the delayed pair (when no `--pairs` is given). */
  delayPair: boolean;
  /** Include the cut-and-restore pair (when no `--pairs` is given). */
  cutPair: boolean;
  /** Include the impaired rows (when no `--pairs` is given). */
  impaired: boolean;
  /** Run only the impaired rows. */
  onlyImpaired: boolean;
  /** Cut and restore the direct path of every direct-capable run. */
  cutAll: boolean;
  /** Delay of every other run, ms each way. */
  delayMs: number;
  /** Labs at once. */
  concurrency: number;
  /** Messages per direction. */
  messages: number;
  /** Runs of every selected pair. */
  runs: number;
  /** Include the port-mapping rows. */
  portMapping: boolean;
}

/** Thrown for a bad command-line argument. */
export class NatlabUsageError extends Error {
  /** @param message What is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "NatlabUsageError";
  }
}

function positiveInteger(text: string | undefined, flag: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new NatlabUsageError(`${flag} must be an integer 1-${max}`);
  }
  return value;
}

/**
 * Parses the runner's flags.
 *
 * @example
 * ```ts
 * parseNatlabArgs(["--json", "--loss", "0"]).lossPercents; // [0]
 * ```
 */
export function parseNatlabArgs(args: readonly string[]): NatlabArgs {
  const parsed: NatlabArgs = {
    json: false,
    lossPercents: [0, 5],
    pairs: undefined,
    remap: true,
    delayPair: true,
    cutPair: true,
    impaired: true,
    onlyImpaired: false,
    cutAll: false,
    delayMs: 0,
    concurrency: 3,
    messages: 50,
    runs: 1,
    portMapping: true,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === "--json") parsed.json = true;
    else if (flag === "--no-remap") parsed.remap = false;
    else if (flag === "--no-delay") parsed.delayPair = false;
    else if (flag === "--no-cut") parsed.cutPair = false;
    else if (flag === "--no-impaired") parsed.impaired = false;
    else if (flag === "--impaired") parsed.onlyImpaired = true;
    else if (flag === "--cut") parsed.cutAll = true;
    else if (flag === "--delay-ms") {
      const text = args[++i];
      const value = Number(text);
      if (text === undefined || !Number.isInteger(value) || value < 0 || value > 5000) {
        throw new NatlabUsageError("--delay-ms must be an integer 0-5000");
      }
      parsed.delayMs = value;
    } else if (flag === "--loss") {
      parsed.lossPercents = (args[++i] ?? "").split(",").map((text) => {
        const value = Number(text);
        if (text === "" || !Number.isInteger(value) || value < 0 || value > 99) {
          throw new NatlabUsageError(`--loss takes percentages 0-99, got ${JSON.stringify(text)}`);
        }
        return value;
      });
    } else if (flag === "--pairs") {
      parsed.pairs = (args[++i] ?? "").split(",").map((text) => {
        const [a, b] = text.split("+");
        const kind = (name: string | undefined) =>
          name !== undefined && isNatKind(name.replace(/-pm$/, ""));
        if (!kind(a) || !kind(b)) {
          throw new NatlabUsageError(`--pairs takes kind+kind, got ${JSON.stringify(text)}`);
        }
        return [a, b];
      });
    } else if (flag === "--concurrency") {
      parsed.concurrency = positiveInteger(args[++i], flag, 16);
    } else if (flag === "--messages") parsed.messages = positiveInteger(args[++i], flag, 1000);
    else if (flag === "--runs") parsed.runs = positiveInteger(args[++i], flag, 100);
    else if (flag === "--no-port-mapping") parsed.portMapping = false;
    else throw new NatlabUsageError(`unknown argument ${flag}`);
  }
  return parsed;
}

/**
 * The runs the arguments ask for.
 *
 * @example
 * ```ts
 * selectPairs(parseNatlabArgs(["--pairs", "none+symmetric", "--loss", "0"])).length; // 2
 * ```
 */
export function selectPairs(args: NatlabArgs): PairSpec[] {
  if (args.onlyImpaired) {
    return matrixPairs({ lossPercents: [], remapPair: false, impairedPairs: true });
  }
  const all = matrixPairs({
    lossPercents: args.lossPercents,
    remapPair: args.remap,
    delayPair: args.delayPair && args.pairs === undefined,
    cutPair: args.cutPair && args.pairs === undefined && !args.cutAll,
    impairedPairs: args.impaired && args.pairs === undefined && !args.cutAll && args.delayMs === 0,
    delayMs: args.delayMs,
    portMappingPairs: args.portMapping,
  });
  const wanted = args.pairs;
  const name = (kind: string, mapped: boolean | undefined) => `${kind}${mapped ? "-pm" : ""}`;
  const selected = wanted === undefined ? all : all.filter((spec) => {
    const a = name(spec.a, spec.portMappingA);
    const b = name(spec.b, spec.portMappingB);
    // The remapping pair goes along (unless the pairs are repeated for a figure).
    if (spec.remap) return args.runs === 1;
    return wanted.some(([x, y]) => (a === x && b === y) || (a === y && b === x));
  });
  if (!args.cutAll) return repeat(selected, args.runs);
  return repeat(
    selected.filter((spec) => directPossible(spec.a, spec.b)).map((spec) => ({
      ...spec,
      cutDirect: true,
    })),
    args.runs,
  );
}

function repeat(specs: PairSpec[], runs: number): PairSpec[] {
  const out: PairSpec[] = [];
  for (let run = 0; run < runs; run++) out.push(...specs.map((spec) => ({ ...spec })));
  return out;
}

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let offset = 0; offset < bytes.length;) offset += stream.writeSync(bytes.subarray(offset));
}

async function main(): Promise<number> {
  let args: NatlabArgs;
  try {
    args = parseNatlabArgs(Deno.args);
  } catch (error) {
    write(Deno.stderr, `natlab: ${error instanceof Error ? error.message : error}\n`);
    return 2;
  }
  const support = await checkLabSupport();
  if (!support.ok) {
    write(Deno.stderr, `natlab: cannot build the lab here: ${support.reason}\n`);
    return 2;
  }
  const abort = new AbortController();
  const onSignal = (exitCode: number) => () => {
    abort.abort();
    write(Deno.stderr, "natlab: interrupted, tearing the labs down\n");
    destroyAllLabs().finally(() => Deno.exit(exitCode));
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal(130)],
    ["SIGTERM", onSignal(143)],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    const swept = await sweepStaleNamespaces();
    if (swept.length > 0) write(Deno.stderr, `natlab: removed ${swept.length} stale namespaces\n`);
    const specs = selectPairs(args);
    const results: PairResult[] = await runMatrix(specs, {
      messages: args.messages,
      concurrency: args.concurrency,
      signal: abort.signal,
      onResult: (result) =>
        write(
          Deno.stderr,
          `natlab: ${result.pair} ${result.lossPercent}% -> ${result.path} ${
            result.ok ? "ok" : "FAIL"
          }\n`,
        ),
    });
    write(
      Deno.stdout,
      args.json ? JSON.stringify(results, null, 2) + "\n" : formatMatrixTable(results) + "\n",
    );
    return results.every((result) => result.ok) ? 0 : 1;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    await destroyAllLabs();
  }
}

if (import.meta.main) Deno.exit(await main());
