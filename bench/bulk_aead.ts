/**
 * Per-packet AEAD cost in Deno, for the bulk benchmark: seal and open of one packet with each
 * option the session could use (`node:crypto` AES-256-GCM with a raw key per packet, as before;
 * with a `KeyObject` made once; ChaCha20-Poly1305; WebCrypto AES-GCM awaited per packet and in
 * batches of 64), at the sizes of a 1200-byte and of a 65,507-byte TRANSPORT packet. Also the
 * real `SecureSession` round trip. Prints one JSON object: `{ "<option> <bytes>": µs, ... }`.
 *
 * Run: `deno run -A bench/bulk_aead.ts [budgetMs]`.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { SecureSession } from "../shared/peer/session.ts";

const aad: Uint8Array<ArrayBuffer> = new Uint8Array(13);
const key = new Uint8Array(32).fill(7);

function nonce(counter: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(8, counter);
  return n;
}

function nodeRoundTrip(algorithm: string, k: Uint8Array | KeyObject, data: Uint8Array, i: number) {
  const iv = nonce(i);
  // deno-lint-ignore no-explicit-any
  const c = createCipheriv(algorithm as any, k, iv, { authTagLength: 16 } as any);
  c.setAAD(aad, { plaintextLength: data.length });
  const sealed = c.update(data);
  c.final();
  const tag = c.getAuthTag();
  // deno-lint-ignore no-explicit-any
  const d = createDecipheriv(algorithm as any, k, iv, { authTagLength: 16 } as any);
  d.setAAD(aad, { plaintextLength: data.length });
  d.setAuthTag(tag);
  d.update(sealed);
  d.final();
}

function timeSync(budgetMs: number, run: (i: number) => void): number {
  for (let i = 0; i < 50; i++) run(i); // warm up
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < budgetMs) {
    for (let j = 0; j < 20; j++) run(n++);
  }
  return ((performance.now() - start) * 1000) / n;
}

async function timeWebCrypto(
  budgetMs: number,
  data: Uint8Array<ArrayBuffer>,
  batch: number,
): Promise<number> {
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < budgetMs) {
    const ivs = Array.from({ length: batch }, (_, j) => nonce(n + j));
    const sealed = await Promise.all(
      ivs.map((iv) => crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, k, data)),
    );
    await Promise.all(
      sealed.map((s, j) =>
        crypto.subtle.decrypt({ name: "AES-GCM", iv: ivs[j], additionalData: aad }, k, s)
      ),
    );
    n += batch;
  }
  return ((performance.now() - start) * 1000) / n;
}

function sessions(large: boolean): [SecureSession, SecureSession] {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const base = { remoteId: "00".repeat(20), createdAt: 0, peerReadsLarge: large };
  return [
    new SecureSession({
      ...base,
      localIndex: 1,
      remoteIndex: 2,
      isInitiator: true,
      sendKey: k1,
      receiveKey: k2,
    }),
    new SecureSession({
      ...base,
      localIndex: 2,
      remoteIndex: 1,
      isInitiator: false,
      sendKey: k2,
      receiveKey: k1,
    }),
  ];
}

async function main(): Promise<void> {
  const budget = Number(Deno.args[0] ?? 400);
  const result: Record<string, number> = {};
  const keyObject = createSecretKey(key);
  for (const bytes of [1171, 65_478]) {
    const data = new Uint8Array(bytes).fill(3);
    result[`aes-256-gcm raw key ${bytes}`] = timeSync(
      budget,
      (i) => nodeRoundTrip("aes-256-gcm", key, data, i),
    );
    result[`aes-256-gcm KeyObject ${bytes}`] = timeSync(
      budget,
      (i) => nodeRoundTrip("aes-256-gcm", keyObject, data, i),
    );
    result[`chacha20-poly1305 ${bytes}`] = timeSync(
      budget,
      (i) => nodeRoundTrip("chacha20-poly1305", key, data, i),
    );
    result[`webcrypto aes-gcm 1 ${bytes}`] = await timeWebCrypto(budget, data, 1);
    result[`webcrypto aes-gcm 64 ${bytes}`] = await timeWebCrypto(budget, data, 64);
    for (const large of [false, true]) {
      if (!large && bytes > 1171) continue;
      const [a, b] = sessions(large);
      result[`session ${large ? "0xE5" : "0xE4"} ${bytes}`] = timeSync(budget, () => {
        if (b.openSync(a.sealSync(data)) === undefined) {
          throw new Error("session round trip failed");
        }
      });
    }
  }
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
