import assert from "node:assert/strict";
import { makeRoomForProbe } from "./probe_table.ts";

Deno.test("probe table: below the bound nothing goes; at it the oldest go until under half", () => {
  const probes = new Map(["a", "b", "c"].map((key, i) => [key, { sentAt: i }]));
  makeRoomForProbe(probes, 100, 4, 50);
  assert.deepEqual([...probes.keys()], ["a", "b", "c"]);
  probes.set("d", { sentAt: 99 });
  makeRoomForProbe(probes, 100, 4, 50);
  assert.deepEqual([...probes.keys()], ["d"]);
});
