import assert from "node:assert/strict";
import {
  birthdayPair,
  expectedPath,
  matrixPairs,
  pairName,
  type PairResult,
  portMappingPairs,
  tcpListening,
} from "./matrix.ts";
import { formatMatrixTable } from "./matrix_table.ts";
import { NatlabUsageError, parseNatlabArgs, selectPairs } from "./main.ts";

Deno.test("matrixPairs covers the 21 unordered pairs per loss rate plus one remapping pair", () => {
  const specs = matrixPairs({ lossPercents: [0, 5], remapPair: true });
  assert.equal(specs.length, 43);
  const names = new Set(specs.filter((s) => s.lossPercent === 0 && !s.remap).map(pairName));
  assert.equal(names.size, 21);
  assert.ok(names.has("symmetric+symmetric"));
  assert.ok(names.has("none+udp-blocked"));
  assert.equal(specs.filter((s) => s.remap).length, 1);
  const delayed = matrixPairs({
    lossPercents: [0],
    remapPair: false,
    delayPair: true,
    cutPair: true,
  });
  assert.deepEqual(delayed.filter((s) => s.cutDirect).map(pairName), [
    "full-cone+port-restricted (direct cut, restored)",
  ]);
  assert.deepEqual(delayed.filter((s) => s.delayMs > 0).map(pairName), [
    "restricted-cone+symmetric (delay 50 ms)",
  ]);
});

Deno.test("tcpListening reads /proc/net/tcp", () => {
  const table = [
    "  sl  local_address rem_address   st tx_queue rx_queue",
    "   0: 00000000:0D96 00000000:0000 0A 00000000:00000000",
    "   1: 020012C6:A000 010012C6:0D96 01 00000000:00000000",
  ].join("\n");
  assert.equal(tcpListening(table, 3478), true);
  assert.equal(tcpListening(table, 40960), false);
  assert.equal(tcpListening("", 3478), false);
});

Deno.test("formatMatrixTable shows every run and the problems of failed ones", () => {
  const base = {
    a: "full-cone",
    b: "symmetric",
    lossPercent: 5,
    remap: false,
    delayMs: 0,
    expected: "direct",
    connectMs: 120,
    directMs: 130,
    firstMessageMs: 150,
    peerUdpAtA: 7,
    peerUdpAtB: 9,
    fallbackMs: null,
    reupgradeMs: null,
    sent: 20,
    howA: "peer-reflexive",
    howB: "server-reflexive",
    whyA: null,
    whyB: null,
    birthdayPacketsA: 0,
    birthdayPacketsB: 0,
  } as const;
  const results: PairResult[] = [
    { ...base, pair: "full-cone+symmetric", path: "direct", delivered: 20, ok: true, problems: [] },
    {
      ...base,
      pair: "x+y",
      path: "relay",
      directMs: null,
      delivered: 19,
      ok: false,
      problems: ["expected direct, reached relay"],
    },
  ];
  results.push({
    ...base,
    pair: "full-cone+port-restricted (direct cut, restored)",
    cutDirect: true,
    path: "direct",
    delivered: 20,
    fallbackMs: 8000,
    reupgradeMs: 40,
    ok: true,
    problems: [],
  });
  const table = formatMatrixTable(results);
  assert.match(table, /relay 8000 ms after the cut, direct again 40 ms after the restore/);
  assert.match(
    table,
    /full-cone\+symmetric\s+5%\s+direct\s+direct\s+120\s+130\s+150\s+7\/9\s+peer-reflexive\/server-reflexive\s+0\/0\s+20\/20\s+ok/,
  );
  assert.match(table, /x\+y .*19\/20\s+FAIL/);
  assert.match(table, /2\/3 runs ok/);
  assert.match(table, /- expected direct, reached relay/);
  // Repeated pairs get a summary line.
  const again = formatMatrixTable([results[0], { ...results[0], directMs: 500 }, {
    ...results[0],
    path: "relay",
    directMs: null,
    birthdayPacketsA: 2048,
  }]);
  assert.match(
    again,
    /full-cone\+symmetric at 5% loss: 2\/3 direct \(67%\), median time to direct 500 ms, median birthday probes \(busier side\) 0, most 2048/,
  );
});

Deno.test("expected paths: birthday punching for port-restricted x symmetric, port mapping for any pair but UDP blocked", () => {
  const base = { lossPercent: 0, remap: false, delayMs: 0 };
  assert.equal(expectedPath({ ...base, a: "port-restricted", b: "symmetric" }), "direct");
  assert.equal(expectedPath({ ...base, a: "symmetric", b: "symmetric" }), "relay");
  assert.equal(
    expectedPath({ ...base, a: "symmetric", b: "symmetric", portMappingB: true }),
    "direct",
  );
  assert.equal(
    expectedPath({ ...base, a: "udp-blocked", b: "symmetric", portMappingB: true }),
    "relay",
  );
  assert.equal(birthdayPair({ ...base, a: "symmetric", b: "port-restricted" }), true);
  assert.equal(
    birthdayPair({ ...base, a: "symmetric", b: "port-restricted", portMappingA: true }),
    false,
  );
  const rows = portMappingPairs();
  assert.equal(rows.length, 15);
  assert.ok(rows.every((spec) => spec.portMappingA));
  assert.deepEqual(
    rows.filter((spec) => spec.portMappingB).map(pairName),
    [
      "port-restricted-pm+port-restricted-pm",
      "port-restricted-pm+symmetric-pm",
      "symmetric-pm+symmetric-pm",
    ],
  );
});

Deno.test("parseNatlabArgs and selectPairs choose the runs", () => {
  const args = parseNatlabArgs(["--pairs", "symmetric+none", "--loss", "0", "--no-remap"]);
  assert.deepEqual(selectPairs(args).map(pairName), ["none+symmetric"]);
  assert.equal(selectPairs(parseNatlabArgs([])).length, 64);
  assert.equal(
    selectPairs(parseNatlabArgs(["--no-delay", "--no-cut", "--no-impaired", "--no-port-mapping"]))
      .length,
    43,
  );
  // The figure: 20 runs of the pair at each loss rate, nothing else.
  const figure = selectPairs(
    parseNatlabArgs(["--runs", "20", "--pairs", "port-restricted+symmetric"]),
  );
  assert.equal(figure.length, 40);
  assert.ok(figure.every((spec) => pairName(spec) === "port-restricted+symmetric"));
  assert.deepEqual(
    selectPairs(parseNatlabArgs(["--pairs", "udp-blocked+symmetric-pm", "--no-remap"])).map(
      pairName,
    ),
    ["symmetric-pm+udp-blocked"],
  );
  assert.deepEqual(selectPairs(parseNatlabArgs(["--impaired"])).map(pairName), [
    "port-restricted+port-restricted (delay 10/150 ms)",
    "restricted-cone+symmetric (delay 10/150 ms)",
    "port-restricted+port-restricted (delay 40 ms)",
    "full-cone+port-restricted",
  ]);
  const cutAll = selectPairs(parseNatlabArgs(["--cut", "--pairs", "restricted-cone+symmetric"]));
  assert.deepEqual(cutAll.map(pairName), [
    "restricted-cone+symmetric (direct cut, restored)",
    "restricted-cone+symmetric (direct cut, restored)",
    "port-restricted+port-restricted (remap) (direct cut, restored)",
  ]);
  assert.ok(selectPairs(parseNatlabArgs(["--delay-ms", "20"])).every((spec) => spec.delayMs > 0));
  assert.equal(parseNatlabArgs(["--json"]).json, true);
  assert.throws(() => parseNatlabArgs(["--loss", "100"]), NatlabUsageError);
  assert.throws(() => parseNatlabArgs(["--pairs", "cone+none"]), NatlabUsageError);
  assert.throws(() => parseNatlabArgs(["--concurrency", "0"]), NatlabUsageError);
  assert.throws(() => parseNatlabArgs(["--what"]), NatlabUsageError);
});
