/**
 * Runs many seeds, in this thread or spread over a few workers, and gathers the results: what
 * `deno task sim` and the simulation test share.
 *
 * Why: 1,000 schedules of 90 simulated seconds each are CPU work of tens of seconds; on a
 * multi-core machine workers cut the wall time, and a seed's result does not depend on which
 * worker ran it (every run builds its own world from its seed).
 *
 * @module
 */
import { generateSchedule, type ScheduleOptions } from "./schedule.ts";
import { formatFailure, type RunResult, runSchedule } from "./scenario.ts";
import { systemByName } from "./systems.ts";

/** What to run. */
export interface BatchOptions {
  /** The system under test, by name (see `systems.ts`). */
  system: string;
  /** The seeds to run. */
  seeds: number[];
  /** Schedule options (clients, fault period…). */
  schedule?: ScheduleOptions;
  /** Worker count (default 1: this thread). */
  workers?: number;
  /** Trace lines to keep for failures (default 60). */
  keepTrace?: number;
  /** Called after each run. */
  onResult?: (result: RunResult) => void;
}

/** A compact result sent back from a worker. */
export type BatchResult = RunResult;

/**
 * Runs every seed and returns the results in seed order.
 *
 * @example
 * ```ts
 * const results = await runBatch({ system: "reference", seeds: [1, 2, 3] });
 * console.log(results.filter((r) => r.violations.length > 0).length); // 0
 * ```
 */
export async function runBatch(options: BatchOptions): Promise<RunResult[]> {
  const workers = Math.max(1, Math.min(options.workers ?? 1, options.seeds.length));
  if (workers === 1) {
    const system = await systemByName(options.system);
    const results: RunResult[] = [];
    for (const seed of options.seeds) {
      const result = await runSchedule(system, generateSchedule(seed, options.schedule), {
        keepTrace: options.keepTrace ?? 60,
      });
      results.push(result);
      options.onResult?.(result);
    }
    return results;
  }
  const queue = [...options.seeds];
  const results = new Map<number, RunResult>();
  const runWorker = () =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      const next = () => {
        const seed = queue.shift();
        if (seed === undefined) {
          worker.terminate();
          resolve();
          return;
        }
        worker.postMessage({
          system: options.system,
          seed,
          schedule: options.schedule,
          keepTrace: options.keepTrace ?? 60,
        });
      };
      worker.onmessage = (event: MessageEvent<RunResult | { error: string }>) => {
        if ("error" in event.data) {
          worker.terminate();
          reject(new Error(event.data.error));
          return;
        }
        results.set(event.data.seed, event.data);
        options.onResult?.(event.data);
        next();
      };
      worker.onerror = (event) => {
        event.preventDefault();
        worker.terminate();
        reject(new Error(`simulation worker failed: ${event.message}`));
      };
      next();
    });
  await Promise.all(Array.from({ length: workers }, runWorker));
  return options.seeds.map((seed) => results.get(seed)!);
}

/** Re-exported for reports. */
export { formatFailure };
