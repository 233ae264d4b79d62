import assert from "node:assert/strict";
import { type StunBindingCodec, StunClient } from "./stun_client.ts";
import type { UdpAddress } from "./path_manager.ts";

const fakeCodec: StunBindingCodec = {
  encodeRequest: (id, username, password) =>
    new TextEncoder().encode(`${id.toHex()}|${username}|${password}`),
  decodeResponse: (bytes, password) => {
    const [id, host, port, key] = new TextDecoder().decode(bytes).split("|");
    if (key !== password) return undefined;
    return { transactionId: Uint8Array.fromHex(id), mapped: { host, port: Number(port) } };
  },
};

function setup() {
  let now = 0;
  const sent: { at: number; bytes: Uint8Array }[] = [];
  const mapped: UdpAddress[] = [];
  const failures: string[] = [];
  let counter = 0;
  const client = new StunClient({
    codec: fakeCodec,
    send: (bytes) => sent.push({ at: now, bytes }),
    onMapped: (address) => mapped.push(address),
    onFailure: (reason) => failures.push(reason),
    now: () => now,
    randomTransactionId: () => new Uint8Array(12).fill(++counter),
    keepaliveMs: 15_000,
  });
  return { client, sent, mapped, failures, setNow: (t: number) => (now = t) };
}

Deno.test("StunClient retransmits with a doubling RTO, at most 7 sends, then reports", () => {
  const { client, sent, failures, setNow } = setup();
  client.configure({ host: "127.0.0.1", port: 54321 }, "user", "pw");
  for (let t = 0; t <= 40_000; t += 10) {
    setNow(t);
    client.tick();
    if (failures.length) break;
  }
  const firstRound = sent.filter((s) => s.bytes.toString() === sent[0].bytes.toString());
  assert.deepEqual(firstRound.map((s) => s.at), [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
  assert.equal(failures.length, 1);
});

Deno.test("StunClient reports the mapped address once and repeats as a keepalive", () => {
  const { client, sent, mapped, setNow } = setup();
  const server = { host: "127.0.0.1", port: 54321 };
  client.configure(server, "user", "pw");
  assert.equal(sent.length, 1);
  const id = new TextDecoder().decode(sent[0].bytes).split("|")[0];
  const answer = (host: string, port: number, key = "pw") =>
    new TextEncoder().encode(`${id}|${host}|${port}|${key}`);
  assert.equal(client.receive(answer("1.2.3.4", 5, "wrong"), server), false);
  assert.equal(client.receive(answer("1.2.3.4", 5), { host: "127.0.0.1", port: 9 }), false);
  assert.equal(client.receive(answer("1.2.3.4", 5), server), true);
  assert.deepEqual(mapped, [{ host: "1.2.3.4", port: 5 }]);
  setNow(1000);
  client.tick();
  assert.equal(sent.length, 1, "no retransmission after the answer");
  setNow(15_000);
  client.tick();
  assert.equal(sent.length, 2, "keepalive after 15 s");
});
