import assert from "node:assert/strict";
import { EventLog, EventTimeoutError, readLines } from "./json_lines.ts";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

Deno.test("readLines splits across chunks and bounds line length", async () => {
  const lines: string[] = [];
  for await (const line of readLines(streamOf("ab", "c\nde\r\n", "fghij"), 3)) lines.push(line);
  assert.deepEqual(lines, ["abc", "de", "fgh", "ij"]);
});

Deno.test("EventLog keeps JSON objects, waits for matches, and fails when the stream ends", async () => {
  const log = new EventLog(streamOf('{"type":"a"}\nnot json\n[1]\n{"type":"b","n":2}\n'));
  const b = await log.waitFor((e) => e.type === "b", 1000, "b");
  assert.equal(b.n, 2);
  await log.done;
  assert.deepEqual(log.events.map((e) => e.type), ["a", "b"]);
  assert.deepEqual(log.rawLines, ["not json", "[1]"]);
  assert.notEqual(log.timeOf((e) => e.type === "a"), undefined);
  await assert.rejects(
    log.waitFor((e) => e.type === "c", 1000, "c"),
    (error: unknown) => error instanceof EventTimeoutError && error.ended,
  );
});

Deno.test("EventLog.waitForNext times out with a typed error", async () => {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const log = new EventLog(readable);
  await assert.rejects(
    log.waitForNext(() => true, 20, "anything"),
    (error: unknown) => error instanceof EventTimeoutError && !error.ended,
  );
  await writable.close();
  await log.done;
});
