import assert from "node:assert/strict";
import { stunRetransmitWaitMs } from "./retransmit.ts";

Deno.test("retransmit: RFC 8489 6.2.1 schedule, 39.5 s in all with the defaults", () => {
  const waits = [1, 2, 3, 4, 5, 6, 7].map((sends) => stunRetransmitWaitMs(sends));
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 16000, 8000]);
  assert.equal(waits.reduce((a, b) => a + b, 0), 39_500);
  assert.deepEqual([1, 2, 3].map((sends) => stunRetransmitWaitMs(sends, 100, 3)), [100, 200, 1600]);
});
