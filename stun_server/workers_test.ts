import assert from "node:assert/strict";
import { workerBaseArgs } from "./workers.ts";

Deno.test("workers: the per-worker flags are taken out of the arguments passed on", () => {
  assert.deepEqual(
    workerBaseArgs([
      "--workers",
      "2",
      "--cluster",
      "nats://n:4222",
      "--tcp-port=0",
      "--stun-port",
      "3478",
      "--node-name",
      "a",
      "--reuse-port",
      "--metrics",
      "127.0.0.1:9464",
      "--alt-port",
      "3479",
      "--log-level",
      "debug",
    ]),
    ["--cluster", "nats://n:4222", "--log-level", "debug"],
  );
});
