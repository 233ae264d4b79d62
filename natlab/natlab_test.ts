/**
 * The NAT matrix inside `deno task test`: every pair of NAT kinds, with and without 5% loss
 * (port-restricted × symmetric direct by birthday punching), plus a pair of port-remapping NATs,
 * and a sample of the port-mapping rows, each with the real server and two real clients. Runs
 * wherever the lab can be built (root, network namespaces, nftables); otherwise the test is
 * skipped and its name says why.
 */
import assert from "node:assert/strict";
import { delayHolderBinary } from "./delay_holder.ts";
import { checkLabSupport } from "./environment.ts";
import { sweepStaleNamespaces } from "./lab.ts";
import { matrixPairs, pairName, portMappingPairs, runMatrix } from "./matrix.ts";
import { formatMatrixTable } from "./matrix_table.ts";
import { missingProgram } from "../testing/find_program.ts";

async function skipReason(): Promise<string | undefined> {
  const support = await checkLabSupport();
  if (!support.ok) return support.reason;
  return undefined;
}

const skip = await skipReason();

/** The delayed pair needs the delay holder, which needs gcc (`.ci/run` installs it). */
async function delaySkipReason(): Promise<string | undefined> {
  if (skip !== undefined) return skip;
  try {
    await delayHolderBinary();
    return undefined;
  } catch (error) {
    return `the delay holder cannot be built: ${String(error)}`;
  }
}
const delaySkip = await delaySkipReason();

Deno.test({
  name: `natlab: direct paths where hole punching can work, the relay elsewhere, every message ` +
    `exactly once and in order, for every pair of NAT kinds at 0% and 5% loss, a remapping ` +
    `pair, a delayed pair, and a direct path cut (relay) and restored (direct again)` +
    (skip === undefined
      ? delaySkip === undefined ? "" : ` (delayed pair SKIPPED: ${delaySkip})`
      : ` (SKIPPED: ${skip})`),
  ignore: skip !== undefined,
  fn: async () => {
    await sweepStaleNamespaces();
    const specs = matrixPairs({
      lossPercents: [0, 5],
      remapPair: true,
      delayPair: delaySkip === undefined,
      // The impaired rows (asymmetric delay, loss with delay, 25 % loss) are the next test.
      cutPair: true,
    });
    const results = await runMatrix(specs, { concurrency: 3 });
    const table = formatMatrixTable(results);
    assert.equal(results.length, specs.length, table);
    assert.deepEqual(
      results.filter((result) => !result.ok).map((result) => result.pair),
      [],
      table,
    );
  },
});

Deno.test({
  name: "natlab: impaired paths still end direct with every message exactly once and in order: " +
    "asymmetric delay (10/150 ms), 10% loss with 40 ms delay, 25% loss" +
    (skip === undefined
      ? delaySkip === undefined ? "" : ` (SKIPPED: ${delaySkip})`
      : ` (SKIPPED: ${skip})`),
  ignore: skip !== undefined || delaySkip !== undefined,
  fn: async () => {
    await sweepStaleNamespaces();
    const specs = matrixPairs({ lossPercents: [], remapPair: false, impairedPairs: true });
    assert.ok(specs.length >= 4, `${specs.length} impaired rows`);
    const results = await runMatrix(specs, { concurrency: 2 });
    const table = formatMatrixTable(results);
    assert.equal(results.length, specs.length, table);
    assert.deepEqual(
      results.filter((result) => !result.ok).map((result) => result.pair),
      [],
      table,
    );
    for (const result of results) assert.equal(result.path, "direct", table);
  },
});

function portMappingSkipReason(): string | undefined {
  if (skip !== undefined) return skip;
  return missingProgram(["miniupnpd", "turnserver"]);
}
const portMappingSkip = portMappingSkipReason();

Deno.test({
  name: "natlab: port mapping (miniupnpd) makes hard pairs direct (the mapped side lets the " +
    "peer send first) and says so; UDP blocked stays relayed and says why" +
    (portMappingSkip === undefined ? "" : ` (SKIPPED: ${portMappingSkip})`),
  ignore: portMappingSkip !== undefined,
  fn: async () => {
    await sweepStaleNamespaces();
    // A sample of `deno task natlab`'s port-mapping rows (all of them run there).
    const wanted = new Set([
      "symmetric-pm+symmetric",
      "port-restricted-pm+symmetric",
      "symmetric-pm+udp-blocked",
    ]);
    const specs = portMappingPairs().filter((spec) => wanted.has(pairName(spec)));
    assert.equal(specs.length, wanted.size);
    const results = await runMatrix(specs, { concurrency: 3, messages: 20 });
    const table = formatMatrixTable(results);
    assert.deepEqual(
      results.filter((result) => !result.ok).map((result) => result.pair),
      [],
      table,
    );
    for (const result of results.filter((r) => r.expected === "direct")) {
      assert.equal(result.howA, "port-mapped", table);
      assert.equal(result.howB, "port-mapped", table);
    }
  },
});
