import assert from "node:assert/strict";
import { directCapablePairs, parseNatlabJson, setupRows } from "./setup_bench.ts";
import { directRows, quantile } from "./direct_bench.ts";
import { parseClientEvent } from "./client_program.ts";

Deno.test("directCapablePairs: every UDP pair but symmetric+symmetric and symmetric+port-restricted", () => {
  const pairs = directCapablePairs();
  assert.equal(pairs.length, 13);
  assert.ok(pairs.includes("none+symmetric"));
  assert.ok(pairs.includes("restricted-cone+symmetric"));
  assert.ok(!pairs.includes("symmetric+symmetric"));
  assert.ok(!pairs.includes("port-restricted+symmetric"));
  assert.ok(!pairs.some((p) => p.includes("udp-blocked")));
});

Deno.test("parseNatlabJson: keeps the timing fields, null when absent; refuses non-arrays", () => {
  const r = parseNatlabJson(
    '[{"pair":"a+b","path":"direct","firstMessageMs":12.5,"directMs":null,"ok":true,"x":1}]',
  );
  assert.deepEqual(r, [{
    pair: "a+b",
    path: "direct",
    firstMessageMs: 12.5,
    directMs: null,
    ok: true,
  }]);
  assert.throws(() => parseNatlabJson('{"pair":"a+b"}'), SyntaxError);
});

Deno.test("setupRows: summaries over runs and pairs, failing pairs named", () => {
  const rows = setupRows([100, 120, 110], "", [
    { pair: "none+none", path: "direct", firstMessageMs: 50, directMs: 40, ok: true },
    { pair: "none+symmetric", path: "relay", firstMessageMs: 70, directMs: null, ok: false },
  ], "");
  assert.equal(rows[0].ours?.median, 110);
  assert.equal(rows[1].ours?.median, 60);
  assert.match(rows[1].note, /none\+symmetric/);
  assert.equal(rows[2].ours?.median, 40);
  assert.match(rows[2].note, /1 of 2 pairs went direct/);
});

Deno.test("quantile: nearest rank", () => {
  assert.equal(quantile([5, 1, 3, 2, 4], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  assert.equal(quantile([7], 0.01), 7);
  assert.throws(() => quantile([], 0.5), RangeError);
});

Deno.test("directRows: unavailable client gives empty rows with the reason", () => {
  const rows = directRows({}, { direct: "not available: no client" });
  assert.equal(rows[0].ours, null);
  assert.match(rows[0].note, /no client/);
});

Deno.test("parseClientEvent: JSON events only", () => {
  assert.equal(parseClientEvent('{"type":"message","from":"x","text":"hi"}')?.text, "hi");
  assert.equal(parseClientEvent("{not json"), null);
  assert.equal(parseClientEvent('{"no":"type"}'), null);
  assert.equal(parseClientEvent("plain"), null);
});
