import assert from "node:assert/strict";
import { puzzleBitsForLoad, solvePuzzle, verifyPuzzle } from "./puzzle.ts";

Deno.test("puzzle: a solution verifies for its nonce and key only", () => {
  const nonce = new Uint8Array(32).fill(7);
  const key = new Uint8Array(32).fill(9);
  const work = solvePuzzle(nonce, key, 12);
  assert.ok(verifyPuzzle(nonce, key, 12, work));
  assert.ok(verifyPuzzle(nonce, key, 0, new Uint8Array(0)), "no puzzle: anything passes");
  // The same work for another nonce or key is (almost surely, 1 - 2^-12) no solution.
  let misses = 0;
  for (let i = 0; i < 16; i++) {
    const n = new Uint8Array(32).fill(i + 100);
    if (!verifyPuzzle(n, key, 12, work)) misses++;
  }
  assert.ok(misses >= 14, `${misses} of 16 other nonces rejected`);
  assert.ok(!verifyPuzzle(nonce, key, 12, new Uint8Array(7)), "wrong length");
});

Deno.test("puzzle: difficulty rises with load, none below half", () => {
  assert.equal(puzzleBitsForLoad(0), 0);
  assert.equal(puzzleBitsForLoad(0.49), 0);
  assert.equal(puzzleBitsForLoad(0.5), 8);
  assert.ok(puzzleBitsForLoad(0.75) > 8 && puzzleBitsForLoad(0.75) < 16);
  assert.equal(puzzleBitsForLoad(1), 16);
  assert.equal(puzzleBitsForLoad(5), 16);
  assert.throws(() => solvePuzzle(new Uint8Array(32), new Uint8Array(32), 30), RangeError);
});

Deno.test("puzzle: a wrong solution is refused at the asked difficulty", () => {
  const nonce = new Uint8Array(32).fill(1);
  const key = new Uint8Array(32).fill(2);
  const work = solvePuzzle(nonce, key, 4);
  // A 4-bit solution is a 16-bit one with probability 2^-12: search for one that is not.
  let refused = 0;
  for (let i = 0; i < 8; i++) {
    const w = solvePuzzle(new Uint8Array(32).fill(i + 3), key, 4);
    if (!verifyPuzzle(nonce, key, 16, w)) refused++;
  }
  assert.ok(refused >= 7);
  assert.ok(verifyPuzzle(nonce, key, 4, work));
});
