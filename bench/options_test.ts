import assert from "node:assert/strict";
import { parseBenchOptions, SECTION_NAMES } from "./options.ts";

Deno.test("parseBenchOptions: defaults", () => {
  const o = parseBenchOptions([]);
  assert.deepEqual(o.only, [...SECTION_NAMES]);
  assert.equal(o.runs, 3);
  assert.equal(o.quick, false);
  assert.equal(o.pin, true);
});

Deno.test("parseBenchOptions: --only keeps run order, --runs, --quick, --no-pin", () => {
  const o = parseBenchOptions(["--only", "relay,stun", "--runs", "5", "--quick", "--no-pin"]);
  assert.deepEqual(o.only, ["stun", "relay"]);
  assert.equal(o.runs, 5);
  assert.equal(o.quick, true);
  assert.equal(o.pin, false);
});

Deno.test("parseBenchOptions: bad input is a TypeError naming the problem", () => {
  assert.throws(() => parseBenchOptions(["--only", "nope"]), /unknown section "nope"/);
  assert.throws(() => parseBenchOptions(["--runs", "0"]), /--runs/);
  assert.throws(() => parseBenchOptions(["--bogus"]), TypeError);
});
