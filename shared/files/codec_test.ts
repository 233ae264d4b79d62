import assert from "node:assert/strict";
import fc from "fast-check";
import {
  allocateChunk,
  CHUNK_HEADER_BYTES,
  decodeFileMessage,
  encodeFileMessage,
  type FileMessage,
  FileMessageError,
  isFileMessage,
  MAX_CHUNK_BYTES,
} from "./codec.ts";

const id = "0123456789abcdef".repeat(2);

Deno.test("file codec: every kind round-trips; layout of OFFER", () => {
  const messages: FileMessage[] = [
    { kind: "offer", id, size: 2 ** 40 + 5, mtimeMs: 1_700_000_000_000, name: "résumé.pdf" },
    { kind: "accept", id, offset: 123, credit: 16 << 20 },
    { kind: "reject", id, reason: "declined" },
    { kind: "chunk", id, offset: 2 ** 33, bytes: new Uint8Array([1, 2, 3]) },
    { kind: "credit", id, credit: 2 ** 52 },
    { kind: "end", id, size: 9, sha256: "ab".repeat(32) },
    { kind: "done", id, sha256: "cd".repeat(32) },
    { kind: "cancel", id, reason: "" },
  ];
  for (const message of messages) {
    const bytes = encodeFileMessage(message);
    assert.ok(isFileMessage(bytes));
    assert.deepEqual(decodeFileMessage(bytes), message);
  }
  const offer = encodeFileMessage({ kind: "offer", id, size: 1, mtimeMs: 2, name: "a" });
  assert.equal(
    offer.toHex(),
    "ff01" + id + "0000000000000001" + "0000000000000002" + "0001" + "61",
  );
  assert.equal(isFileMessage(new TextEncoder().encode("hello")), false);
  assert.equal(isFileMessage(new Uint8Array([0xff])), false);
});

Deno.test("file codec: a chunk allocated for reading in place decodes to its bytes", () => {
  const message = allocateChunk(id, 77, 5);
  message.subarray(CHUNK_HEADER_BYTES).set([9, 8, 7, 6, 5]);
  assert.deepEqual(decodeFileMessage(message), {
    kind: "chunk",
    id,
    offset: 77,
    bytes: new Uint8Array([9, 8, 7, 6, 5]),
  });
  assert.equal(allocateChunk(id, 0, MAX_CHUNK_BYTES).length, 1 << 20);
  assert.throws(() => allocateChunk(id, 0, MAX_CHUNK_BYTES + 1), FileMessageError);
  assert.throws(() => allocateChunk(id, 0, 0), FileMessageError);
});

Deno.test("file codec: out-of-range fields are refused; long reasons are cut at a character", () => {
  assert.throws(
    () => encodeFileMessage({ kind: "offer", id, size: 1, mtimeMs: 0, name: "" }),
    FileMessageError,
  );
  assert.throws(
    () => encodeFileMessage({ kind: "offer", id, size: 1, mtimeMs: 0, name: "x".repeat(256) }),
    FileMessageError,
  );
  assert.throws(
    () => encodeFileMessage({ kind: "offer", id: "xyz", size: 1, mtimeMs: 0, name: "a" }),
    FileMessageError,
  );
  assert.throws(
    () => encodeFileMessage({ kind: "credit", id, credit: 2 ** 53 }),
    FileMessageError,
  );
  assert.throws(() => encodeFileMessage({ kind: "done", id, sha256: "ab" }), FileMessageError);
  const cut = encodeFileMessage({ kind: "cancel", id, reason: "é".repeat(200) });
  const decoded = decodeFileMessage(cut);
  assert.equal(decoded.kind === "cancel" && decoded.reason, "é".repeat(128));
});

Deno.test("file codec: malformed input throws FileMessageError and nothing else (seeded)", () => {
  for (
    const hex of [
      "",
      "ff",
      "ff01",
      "fe01" + id,
      "ff09" + id,
      "ff02" + id + "00",
      "ff05" + id + "ffffffffffffffff", // above 2^53
      "ff01" + id + "00".repeat(16) + "0000", // empty name
      "ff01" + id + "00".repeat(16) + "0002" + "61", // name shorter than said
      "ff01" + id + "00".repeat(16) + "0001" + "ff", // not UTF-8
      "ff04" + id + "0000000000000000", // empty chunk
      "ff07" + id + "00",
    ]
  ) {
    assert.throws(() => decodeFileMessage(Uint8Array.fromHex(hex)), FileMessageError, hex);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat({ max: 9 }), (tail, kind) => {
      const bytes = new Uint8Array(2 + tail.length);
      bytes[0] = 0xff;
      bytes[1] = kind;
      bytes.set(tail, 2);
      try {
        const message = decodeFileMessage(bytes);
        assert.deepEqual(decodeFileMessage(encodeFileMessage(message)), message);
      } catch (error) {
        if (!(error instanceof FileMessageError)) throw error;
      }
    }),
    { seed: 14, numRuns: 3000 },
  );
});
