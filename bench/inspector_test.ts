import assert from "node:assert/strict";
import { summarizeHeapSnapshot } from "./inspector.ts";

Deno.test("summarizeHeapSnapshot: groups objects by constructor and the rest by type", () => {
  const snapshot = {
    snapshot: {
      meta: {
        node_fields: ["type", "name", "id", "self_size", "edge_count", "detachedness"],
        node_types: [["hidden", "array", "string", "object", "code", "closure", "native"]],
      },
    },
    nodes: [
      3,
      0,
      1,
      64,
      0,
      0, // Session 64
      3,
      0,
      3,
      64,
      0,
      0, // Session 64
      2,
      2,
      5,
      24,
      0,
      0, // (string) 24
      2,
      3,
      7,
      40,
      0,
      0, // (string) 40
      6,
      1,
      9,
      300,
      0,
      0, // TcpConn (native) 300
      5,
      4,
      11,
      32,
      0,
      0, // closure "onData" 32
    ],
    strings: ["Session", "TcpConn", "abc", "defgh", "onData"],
  };
  assert.deepEqual(summarizeHeapSnapshot(snapshot, 10), [
    { name: "TcpConn", count: 1, bytes: 300 },
    { name: "Session", count: 2, bytes: 128 },
    { name: "(string)", count: 2, bytes: 64 },
    { name: "onData", count: 1, bytes: 32 },
  ]);
  assert.equal(summarizeHeapSnapshot(snapshot, 1).length, 1);
});

Deno.test("summarizeHeapSnapshot: refuses a snapshot without the needed fields", () => {
  assert.throws(
    () =>
      summarizeHeapSnapshot({
        snapshot: { meta: { node_fields: ["id"], node_types: [[]] } },
        nodes: [],
        strings: [],
      }),
    SyntaxError,
  );
});
