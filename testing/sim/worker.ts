/**
 * A simulation worker for {@linkcode runBatch}: runs one seed per message and posts back the
 * result. Each run builds its own world, so results do not depend on the worker.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { generateSchedule, type ScheduleOptions } from "./schedule.ts";
import { runSchedule } from "./scenario.ts";
import { systemByName } from "./systems.ts";

self.onmessage = async (
  event: MessageEvent<
    { system: string; seed: number; schedule?: ScheduleOptions; keepTrace: number }
  >,
) => {
  const { system, seed, schedule, keepTrace } = event.data;
  try {
    const result = await runSchedule(
      await systemByName(system),
      generateSchedule(seed, schedule),
      { keepTrace },
    );
    self.postMessage(result);
  } catch (error) {
    self.postMessage({ error: `seed ${seed}: ${error instanceof Error ? error.stack : error}` });
  }
};
