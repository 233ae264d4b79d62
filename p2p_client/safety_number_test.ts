import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import { safetyNumber } from "./safety_number.ts";

Deno.test("safety number: the same on both sides, different for another key, 5 groups of 5", async () => {
  const alice = await Identity.generate();
  const bob = await Identity.generate();
  const mallory = await Identity.generate();
  const fromAlice = await safetyNumber(alice.publicKey, bob.publicKey);
  const fromBob = await safetyNumber(bob.publicKey, alice.publicKey);
  assert.equal(fromAlice, fromBob);
  assert.match(fromAlice, /^\d{5} \d{5} \d{5} \d{5} \d{5}$/);
  assert.notEqual(await safetyNumber(alice.publicKey, mallory.publicKey), fromAlice);
  await assert.rejects(safetyNumber(new Uint8Array(31), bob.publicKey), RangeError);
});

Deno.test("safety number: a fixed vector pins the derivation (documented in the module)", async () => {
  const a = new Uint8Array(32).fill(1);
  const b = new Uint8Array(32).fill(2);
  // SHA-256("p2p-safety-number/v1" || 01*32 || 02*32), first 25 bytes as five 40-bit groups.
  const input = new Uint8Array([...new TextEncoder().encode("p2p-safety-number/v1"), ...a, ...b]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  const expected = [0, 1, 2, 3, 4].map((g) =>
    String(
      Number(BigInt("0x" + digest.subarray(g * 5, g * 5 + 5).toHex()) % 100000n),
    ).padStart(5, "0")
  ).join(" ");
  assert.equal(await safetyNumber(b, a), expected);
});
