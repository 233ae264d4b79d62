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
  const reachable: number[] = [];
  let counter = 0;
  const client = new StunClient({
    codec: fakeCodec,
    send: (bytes) => sent.push({ at: now, bytes }),
    onMapped: (address) => mapped.push(address),
    onFailure: (reason) => failures.push(reason),
    onReachable: () => reachable.push(now),
    now: () => now,
    randomTransactionId: () => new Uint8Array(12).fill(++counter),
    keepaliveMs: 15_000,
  });
  return { client, sent, mapped, failures, reachable, setNow: (t: number) => (now = t) };
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

const SERVER = { host: "127.0.0.1", port: 54321 };

function answerTo(request: Uint8Array, host = "1.2.3.4", port = 5): Uint8Array {
  const id = new TextDecoder().decode(request).split("|")[0];
  return new TextEncoder().encode(`${id}|${host}|${port}|pw`);
}

Deno.test("StunClient.refresh asks now, at most every minIntervalMs; restart replaces a request in flight", () => {
  const { client, sent, mapped, setNow } = setup();
  client.configure(SERVER, "user", "pw");
  client.receive(answerTo(sent[0].bytes), SERVER);
  setNow(500);
  assert.equal(client.refresh(1000), false, "within minIntervalMs of the last request");
  setNow(1000);
  assert.equal(client.refresh(1000), true);
  assert.equal(sent.length, 2);
  setNow(1200);
  assert.equal(client.refresh(100), false, "a request is in flight");
  setNow(2500);
  assert.equal(client.refresh(1000, true), true, "replaced");
  assert.equal(sent.length, 3);
  assert.equal(client.receive(answerTo(sent[1].bytes, "9.9.9.9", 7), SERVER), false, "stale");
  assert.equal(client.receive(answerTo(sent[2].bytes, "9.9.9.9", 7), SERVER), true);
  assert.deepEqual(mapped.at(-1), { host: "9.9.9.9", port: 7 }, "a new mapping is reported");
});

Deno.test("StunClient.watch: a request every interval; onReachable when an answer follows silence", () => {
  const { client, sent, reachable, failures, setNow } = setup();
  client.configure(SERVER, "user", "pw");
  client.receive(answerTo(sent[0].bytes), SERVER);
  setNow(10_000);
  client.watch(1000); // the signaling connection was lost
  assert.equal(sent.length, 2);
  client.receive(answerTo(sent[1].bytes), SERVER);
  assert.deepEqual(reachable, [], "answered all along: nothing to report");
  for (let t = 10_000; t <= 14_000; t += 100) {
    setNow(t);
    client.tick();
  }
  assert.deepEqual(sent.slice(2).map((s) => s.at), [11_000, 12_000, 13_000, 14_000]);
  assert.equal(client.nextDeadline(), 15_000);
  // The server answers again (the last request only: the earlier ones were given up).
  client.receive(answerTo(sent.at(-1)!.bytes), SERVER);
  assert.deepEqual(reachable, [14_000]);
  assert.deepEqual(failures, [], "a watch miss is not reported as a failure");
  client.configure(SERVER, "user", "pw2");
  assert.equal(sent.length, 7, "registered again: a request at once");
  setNow(14_500);
  client.tick();
  assert.equal(sent.length, 8, "an ordinary transaction again: retransmitted after 500 ms");
});
