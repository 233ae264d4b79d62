import assert from "node:assert/strict";
import { nativeAead } from "./native_aead.ts";
import { SecureSession } from "./session.ts";
import { MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES, PeerPacketType } from "./packet.ts";

const available = nativeAead("chacha20-poly1305", new Uint8Array(32), true) !== undefined;

function pair(nativeA: boolean, nativeB: boolean, large: boolean): [SecureSession, SecureSession] {
  const k1 = crypto.getRandomValues(new Uint8Array(32));
  const k2 = crypto.getRandomValues(new Uint8Array(32));
  const make = (initiator: boolean, native: boolean) =>
    new SecureSession({
      remoteId: "00".repeat(20),
      localIndex: initiator ? 1 : 2,
      remoteIndex: initiator ? 2 : 1,
      isInitiator: initiator,
      sendKey: (initiator ? k1 : k2).slice(),
      receiveKey: (initiator ? k2 : k1).slice(),
      createdAt: 0,
      peerReadsLarge: large,
      nativeCrypto: native,
    });
  return [make(true, nativeA), make(false, nativeB)];
}

Deno.test({
  name: "native AEAD: libcrypto and node:crypto sessions read each other's packets, both types",
  ignore: !available,
  fn() {
    for (const large of [false, true]) {
      for (const [na, nb] of [[true, false], [false, true], [true, true]]) {
        const [a, b] = pair(na, nb, large);
        for (const size of [0, 1, 1000, large ? MAX_LARGE_TRANSPORT_PLAINTEXT_BYTES : 1171]) {
          const plaintext = crypto.getRandomValues(new Uint8Array(size));
          const packet = a.sealSync(plaintext);
          assert.equal(packet[0], large ? PeerPacketType.TransportLarge : PeerPacketType.Transport);
          assert.deepEqual(b.openSync(packet), plaintext, `a→b ${na}/${nb} ${size}`);
          const back = b.sealPartsSync(plaintext.subarray(0, 7), plaintext.subarray(7));
          assert.deepEqual(a.openSync(back), plaintext, `b→a ${na}/${nb} ${size}`);
        }
      }
    }
  },
});

Deno.test({
  name: "native AEAD: sealing into a buffer and opening in place; tampering and replays refused",
  ignore: !available,
  fn() {
    const [a, b] = pair(true, true, true);
    const out = new Uint8Array(65_536);
    const head = new Uint8Array([1, 2, 3]);
    const tail = crypto.getRandomValues(new Uint8Array(60_000));
    const packet = a.sealPartsInto(head, tail, out);
    assert.equal(packet.buffer, out.buffer);
    const copy = packet.slice();
    const plaintext = b.openInPlaceSync(packet);
    assert.ok(plaintext !== undefined);
    assert.equal(plaintext.buffer, out.buffer, "a view of the packet: no copy");
    assert.deepEqual(plaintext.subarray(0, 3), head);
    assert.deepEqual(plaintext.subarray(3), tail);
    assert.equal(b.openInPlaceSync(copy.slice()), undefined, "a replay");
    const next = a.sealPartsInto(head, tail, out).slice();
    next[40] ^= 1;
    assert.equal(b.openInPlaceSync(next), undefined, "tampered");
    assert.throws(() => a.sealPartsInto(head, tail, new Uint8Array(100)), RangeError);
    a.close();
    b.close();
    assert.throws(() => a.sealSync(head));
  },
});

Deno.test("native AEAD: without FFI permission it is not used (node:crypto instead)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "native-aead-" });
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { nativeAead } from "${new URL("./native_aead.ts", import.meta.url).href}";
       console.log(nativeAead("aes-256-gcm", new Uint8Array(32), true) === undefined);`,
    );
    const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-read", script],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(stdout).trim(), "true", new TextDecoder().decode(stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
