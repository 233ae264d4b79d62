import assert from "node:assert/strict";
import { systemRuntime } from "../../shared/runtime/mod.ts";
import { decodeFrame, encodeFrame, FrameType } from "../../shared/peer/frames.ts";
import type { UdpAddress } from "../path_manager.ts";
import type { FilteringBehaviour, MappingBehaviour } from "../nat_probe/classify.ts";
import type { BirthdayEngine, BirthdayOutcome } from "./birthday_engine.ts";
import { decodeTraversal, encodeTraversal, type TraversalMessage } from "./codec.ts";
import {
  BIRTHDAY_AFTER_INTRO_MS,
  BIRTHDAY_LEAD_MS,
  DEFAULT_PASSIVE_MS,
  LinkTraversal,
  type LocalFacts,
} from "./link_traversal.ts";

Deno.test("traversal codec: every message round-trips; malformed bodies are refused", () => {
  const messages: TraversalMessage[] = [
    {
      type: "nat-info",
      udp: "reachable",
      mapping: "address-and-port-dependent",
      filtering: "address-and-port-dependent",
    },
    {
      type: "nat-info",
      udp: "blocked",
      mapping: "unknown",
      filtering: "unknown",
      mapped: { host: "2001:db8::1", port: 4000 },
    },
    {
      type: "birthday-start",
      attempt: 0xffff_fffe,
      key: new Uint8Array(32).fill(7),
      easy: { host: "198.18.0.2", port: 40000 },
    },
    { type: "birthday-stop", attempt: 3 },
  ];
  for (const message of messages) {
    const body = encodeTraversal(message);
    assert.deepEqual(decodeTraversal(body), message);
    // Inside a TRAVERSAL frame.
    const frame = decodeFrame(encodeFrame({ type: FrameType.Traversal, body }));
    assert.equal(frame.type, FrameType.Traversal);
    if (frame.type === FrameType.Traversal) assert.deepEqual(decodeTraversal(frame.body), message);
    // Every truncation is refused, never thrown.
    for (let cut = 0; cut < body.length; cut++) {
      assert.equal(decodeTraversal(body.subarray(0, cut)), undefined, `cut at ${cut}`);
    }
  }
  assert.equal(decodeTraversal(new Uint8Array([1, 9, 0, 0, 0])), undefined);
  assert.equal(decodeTraversal(new Uint8Array([1, 1, 0, 0, 2])), undefined);
  assert.equal(decodeTraversal(new Uint8Array([3, 0, 0, 0, 1, 0])), undefined);
  assert.throws(() => encodeFrame({ type: FrameType.Traversal, body: new Uint8Array(300) }));
});

const EASY_NAT = {
  udpReachable: true,
  mapping: "endpoint-independent",
  filtering: "address-and-port-dependent",
} as const;
const HARD_NAT = {
  udpReachable: true,
  mapping: "address-and-port-dependent",
  filtering: "address-and-port-dependent",
} as const;

class FakeEngine {
  easy: { key: Uint8Array; host: string; done: (o: BirthdayOutcome) => void }[] = [];
  hard: { key: Uint8Array; peer: UdpAddress; done: (o: BirthdayOutcome) => void }[] = [];
  busy(): boolean {
    return false;
  }
  startEasy(key: Uint8Array, host: string, done: (o: BirthdayOutcome) => void) {
    this.easy.push({ key, host, done });
    return () => {};
  }
  startHard(key: Uint8Array, peer: UdpAddress, done: (o: BirthdayOutcome) => void) {
    this.hard.push({ key, peer, done });
    return () => {};
  }
}

function side(local: LocalFacts, engine = new FakeEngine()) {
  const sent: TraversalMessage[] = [];
  const probed: UdpAddress[][] = [];
  const traversal = new LinkTraversal({
    runtime: systemRuntime,
    local: () => local,
    send: (body) => sent.push(decodeTraversal(body)!),
    probe: (addresses) => probed.push(addresses),
    birthday: engine as unknown as BirthdayEngine,
  });
  return { traversal, sent, probed, engine };
}

Deno.test("traversal: the easy side leads birthday punching; the hard side follows only when its own facts agree", () => {
  const easyEndpoint = { host: "198.18.0.2", port: 40000 };
  const hardEndpoint = { host: "198.18.0.3", port: 51234 };
  const easy = side({ nat: EASY_NAT, mapped: undefined, publicEndpoint: easyEndpoint });
  const hard = side({ nat: HARD_NAT, mapped: undefined, publicEndpoint: hardEndpoint });
  easy.traversal.introduced(0, "initiator", [{ ...hardEndpoint, kind: "public" }]);
  hard.traversal.introduced(0, "responder", [{ ...easyEndpoint, kind: "public" }]);
  easy.traversal.sessionUp();
  hard.traversal.sessionUp();
  // Each tells the other its facts.
  const deliver = (from: typeof easy, to: typeof easy, now: number) => {
    for (const message of from.sent.splice(0)) to.traversal.receive(encodeTraversal(message), now);
  };
  deliver(easy, hard, 0);
  deliver(hard, easy, 0);
  assert.deepEqual(easy.traversal.plan, { kind: "birthday", role: "easy" });
  assert.deepEqual(hard.traversal.plan, { kind: "birthday", role: "hard" });
  // Plain punching goes first.
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS - 1, false);
  assert.equal(easy.sent.length, 0);
  assert.equal(easy.traversal.nextDeadline(0), BIRTHDAY_AFTER_INTRO_MS);
  // Not while direct.
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS, true);
  assert.equal(easy.sent.length, 0);
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS, false);
  const start = easy.sent[0];
  assert.equal(start.type, "birthday-start");
  if (start.type !== "birthday-start") return;
  assert.deepEqual(start.easy, easyEndpoint);
  assert.equal(start.key.length, 32);
  // The easy side probes after the lead time, toward the hard side's public address.
  assert.equal(easy.engine.easy.length, 0);
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS + BIRTHDAY_LEAD_MS, false);
  assert.equal(easy.engine.easy[0].host, hardEndpoint.host);
  assert.deepEqual(easy.engine.easy[0].key, start.key);
  // The hard side opens its sockets toward the easy endpoint, with the same key.
  deliver(easy, hard, BIRTHDAY_AFTER_INTRO_MS);
  assert.equal(hard.engine.hard.length, 1);
  assert.deepEqual(hard.engine.hard[0].peer, easyEndpoint);
  assert.deepEqual(hard.engine.hard[0].key, start.key);
  // The same attempt again is not started twice; a client that is not the hard side ignores it.
  hard.traversal.receive(encodeTraversal(start), 0);
  assert.equal(hard.engine.hard.length, 1);
  // Toward an address the server never saw the peer at: refused.
  const elsewhere = side({ nat: HARD_NAT, mapped: undefined, publicEndpoint: hardEndpoint });
  elsewhere.traversal.introduced(0, "responder", [{ ...easyEndpoint, kind: "public" }]);
  elsewhere.traversal.sessionUp();
  elsewhere.traversal.receive(
    encodeTraversal({ type: "nat-info", udp: "reachable", ...pick(EASY_NAT) }),
    0,
  );
  elsewhere.traversal.receive(
    encodeTraversal({ ...start, easy: { host: "192.0.2.99", port: 9 } }),
    0,
  );
  assert.equal(elsewhere.engine.hard.length, 0, "only toward where the server saw the peer");
  const other = side({ nat: EASY_NAT, mapped: undefined, publicEndpoint: easyEndpoint });
  other.traversal.introduced(0, "responder", []);
  other.traversal.sessionUp();
  other.traversal.receive(encodeTraversal(start), 0);
  assert.equal(other.engine.hard.length, 0, "no packet cannon at a peer's word");
  // The answer becomes a candidate probed at once, and the path found says birthday.
  const remote = { host: hardEndpoint.host, port: 61000 };
  easy.engine.easy[0].done({ remote, packetsSent: 300, elapsedMs: 3000 });
  assert.deepEqual(easy.probed.at(-1), [remote]);
  assert.deepEqual(easy.traversal.explain("direct", remote, 3), { how: "birthday" });
  hard.engine.hard[0].done({ remote: easyEndpoint, packetsSent: 256, elapsedMs: 3000 });
  assert.deepEqual(hard.probed.at(-1), [easyEndpoint]);
  assert.deepEqual(hard.traversal.explain("direct", easyEndpoint, 2), { how: "birthday" });
  assert.equal(easy.traversal.attempts[0].packetsSent, 300);
  // Until the pair validates, no new attempt (a new key would miss the hard side's sockets).
  const starts = () => easy.sent.filter((m) => m.type === "birthday-start").length;
  const sentBefore = starts();
  const now = performance.now();
  easy.traversal.tick(now, false);
  easy.traversal.tick(now + BIRTHDAY_LEAD_MS, false);
  assert.equal(starts(), sentBefore, "no new BIRTHDAY_START right after a success");
  assert.equal(easy.engine.easy.length, 1);
});

Deno.test("traversal: an attempt that finds nothing is reported, stopped on both sides, and retried later", () => {
  const easy = side({
    nat: EASY_NAT,
    mapped: undefined,
    publicEndpoint: { host: "198.18.0.2", port: 40000 },
  });
  easy.traversal.introduced(0, "initiator", [{ host: "198.18.0.3", port: 5, kind: "public" }]);
  easy.traversal.sessionUp();
  easy.traversal.receive(
    encodeTraversal({ type: "nat-info", udp: "reachable", ...pick(HARD_NAT) }),
    0,
  );
  easy.sent.length = 0;
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS, false);
  easy.traversal.tick(BIRTHDAY_AFTER_INTRO_MS + BIRTHDAY_LEAD_MS, false);
  easy.engine.easy[0].done({ remote: undefined, packetsSent: 2048, elapsedMs: 22_000 });
  assert.equal(easy.sent.at(-1)?.type, "birthday-stop");
  assert.deepEqual(easy.traversal.explain("relayed", undefined, 2), {
    why: "birthday punching found no port",
  });
  const now = performance.now();
  for (const later of [0, 10_000, 30_000, 50_000]) {
    easy.traversal.tick(now + later, false);
    easy.traversal.tick(now + later + BIRTHDAY_LEAD_MS, false);
  }
  assert.equal(easy.engine.easy.length, 1, "no retry within a minute");
  // A new introduction does not reset the budget.
  easy.traversal.introduced(now, "initiator", []);
  easy.traversal.tick(now + 50_000, false);
  easy.traversal.tick(now + 50_000 + BIRTHDAY_LEAD_MS, false);
  assert.equal(easy.engine.easy.length, 1, "no retry after a new introduction");
  easy.traversal.tick(now + 70_000, false);
  easy.traversal.tick(now + 70_000 + BIRTHDAY_LEAD_MS, false);
  assert.equal(easy.engine.easy.length, 2, "a retry after a minute");
});

function pick(nat: { mapping: MappingBehaviour; filtering: FilteringBehaviour }) {
  return { mapping: nat.mapping, filtering: nat.filtering };
}

Deno.test("traversal: the mapped side sends only where the peer was heard from, for a while", () => {
  const mapped = { host: "198.18.0.2", port: 40000 };
  const { traversal } = side({ nat: HARD_NAT, mapped, publicEndpoint: undefined });
  traversal.introduced(1000, "initiator", [{ host: "198.18.0.3", port: 7, kind: "public" }]);
  const peer = { host: "198.18.0.3", port: 7 };
  assert.equal(traversal.passive(1000), true);
  assert.equal(traversal.allowSend(peer, 1000), false);
  assert.equal(traversal.allowSend({ host: "10.0.2.2", port: 7 }, 1000), true, "LAN: allowed");
  traversal.heard(peer);
  assert.equal(traversal.allowSend(peer, 1000), true);
  assert.equal(traversal.allowSend({ host: "198.18.0.3", port: 8 }, 1000), false);
  // After the window, it sends first too (a mapping that does not work must not strand it).
  assert.equal(
    traversal.allowSend({ host: "198.18.0.3", port: 8 }, 1000 + DEFAULT_PASSIVE_MS),
    true,
  );
  assert.deepEqual(traversal.explain("direct", peer, 1), { how: "port-mapped" });
  // Both sides mapped: the initiator sends first.
  traversal.sessionUp();
  traversal.receive(
    encodeTraversal({
      type: "nat-info",
      udp: "reachable",
      ...pick(HARD_NAT),
      mapped: { host: "198.18.0.3", port: 9 },
    }),
    1000,
  );
  assert.equal(traversal.passive(1000), false);
  assert.equal(traversal.allowSend({ host: "198.18.0.3", port: 8 }, 1000), true);
});

Deno.test("traversal: why a peer is relayed, and how a direct path was found", () => {
  const sym = side({ nat: HARD_NAT, mapped: undefined, publicEndpoint: undefined });
  sym.traversal.introduced(0, "responder", [
    { host: "198.18.0.3", port: 7, kind: "public" },
    { host: "10.0.2.2", port: 7, kind: "local" },
  ]);
  assert.deepEqual(sym.traversal.explain("relayed", undefined, 2), {
    why: "no answer from candidates",
  });
  assert.deepEqual(sym.traversal.explain("relayed", undefined, 0), { why: "no direct candidates" });
  sym.traversal.receive(
    encodeTraversal({ type: "nat-info", udp: "reachable", ...pick(HARD_NAT) }),
    0,
  );
  assert.deepEqual(sym.traversal.explain("relayed", undefined, 2), {
    why: "both sides map per destination",
  });
  sym.traversal.receive(
    encodeTraversal({ type: "nat-info", udp: "blocked", mapping: "unknown", filtering: "unknown" }),
    0,
  );
  assert.deepEqual(sym.traversal.explain("relayed", undefined, 2), {
    why: "peer unreachable over UDP",
  });
  assert.deepEqual(sym.traversal.explain("direct", { host: "198.18.0.3", port: 7 }, 2), {
    how: "server-reflexive",
  });
  assert.deepEqual(sym.traversal.explain("direct", { host: "10.0.2.2", port: 7 }, 2), {
    how: "host",
  });
  assert.deepEqual(sym.traversal.explain("mixed", { host: "198.18.0.3", port: 999 }, 2), {
    how: "peer-reflexive",
  });
  // The peer's mapping, announced in-band, is probed at once and named.
  sym.traversal.receive(
    encodeTraversal({
      type: "nat-info",
      udp: "reachable",
      ...pick(HARD_NAT),
      mapped: { host: "198.18.0.3", port: 4444 },
    }),
    0,
  );
  assert.deepEqual(sym.probed.at(-1), [{ host: "198.18.0.3", port: 4444 }]);
  assert.deepEqual(sym.traversal.explain("direct", { host: "198.18.0.3", port: 4444 }, 3), {
    how: "port-mapped",
  });
  const blocked = side({
    nat: { udpReachable: false, mapping: "unknown", filtering: "unknown" },
    mapped: undefined,
    publicEndpoint: undefined,
  });
  assert.deepEqual(blocked.traversal.explain("relayed", undefined, 1), {
    why: "udp blocked here",
  });
  assert.deepEqual(blocked.traversal.explain("none", undefined, 1), {});
});
