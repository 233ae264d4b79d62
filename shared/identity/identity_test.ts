import assert from "node:assert/strict";
import { Identity, verifySignature } from "./identity.ts";
import { isPeerId, peerIdFromPublicKey } from "./peer_id.ts";

Deno.test("identity: generated ID is bound to the public key", async () => {
  const me = await Identity.generate();
  assert.ok(isPeerId(me.id));
  assert.equal(me.id, await peerIdFromPublicKey(me.publicKey));
});

Deno.test("identity: PKCS#8 round trip keeps the ID and signing key", async () => {
  const me = await Identity.generate();
  const again = await Identity.fromPkcs8(await me.exportPrivateKey());
  assert.equal(again.id, me.id);
  assert.deepEqual(again.publicKey, me.publicKey);
  const data = new TextEncoder().encode("challenge");
  assert.ok(await verifySignature(me.publicKey, data, await again.sign(data)));
});

Deno.test("identity: signatures from another key or over other data are refused", async () => {
  const a = await Identity.generate();
  const b = await Identity.generate();
  const data = new TextEncoder().encode("challenge");
  const sig = await a.sign(data);
  assert.equal(await verifySignature(b.publicKey, data, sig), false);
  assert.equal(await verifySignature(a.publicKey, new TextEncoder().encode("other"), sig), false);
  assert.equal(await verifySignature(a.publicKey, data, sig.subarray(1)), false);
  assert.equal(await verifySignature(new Uint8Array(3), data, sig), false);
});

Deno.test("peer id: shape checks", async () => {
  assert.equal(isPeerId("0".repeat(40)), true);
  assert.equal(isPeerId("0".repeat(39)), false);
  assert.equal(isPeerId("G".repeat(40)), false);
  await assert.rejects(() => peerIdFromPublicKey(new Uint8Array(31)), RangeError);
});
