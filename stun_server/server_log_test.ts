import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { LogLimiter, REFUSAL_WINDOW_MS, REFUSALS_PER_WINDOW, ServerLog } from "./server_log.ts";

Deno.test("log limiter: a few lines per kind and window, then a count of what was suppressed", () => {
  let now = 0;
  const limiter = new LogLimiter(() => now, 3, 1000);
  assert.deepEqual([limiter.admit("a"), limiter.admit("a"), limiter.admit("a")], [0, 0, 0]);
  for (let i = 0; i < 100; i++) assert.equal(limiter.admit("a"), null);
  assert.equal(limiter.admit("b"), 0, "kinds are limited separately");
  assert.deepEqual(limiter.pending(), { a: 100 });
  now = 999;
  assert.equal(limiter.admit("a"), null);
  now = 1000;
  assert.equal(limiter.admit("a"), 101, "the next allowed line reports the suppressed count");
  assert.deepEqual(limiter.pending(), {});
});

Deno.test("server log: a flood of refusals writes a bounded number of WARNING lines", () => {
  const lines: { level: string; message: string; suppressed?: unknown }[] = [];
  const logger = {
    warn: (message: string, properties: Record<string, unknown>) =>
      lines.push({ level: "warning", message, suppressed: properties.suppressed }),
  } as unknown as ReturnType<typeof getLogger>;
  let now = 0;
  const log = new ServerLog(logger, () => now);
  for (let i = 0; i < 72_000; i++) {
    log.refusal("auth-failed", "registration from {client} refused: bad signature", {});
    now += 20_000 / 72_000; // 72,000 bad registrations in 20 s
  }
  const windows = Math.ceil(20_000 / REFUSAL_WINDOW_MS);
  assert.ok(lines.length <= REFUSALS_PER_WINDOW * windows, `${lines.length} lines`);
  const reported = lines.filter((l) => typeof l.suppressed === "number");
  assert.ok(reported.length >= 1);
  assert.match(reported[0].message, /similar suppressed/);
});
