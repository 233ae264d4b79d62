import assert from "node:assert/strict";
import { Identity } from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import { HandshakeInitiator, HandshakeResponder } from "./handshake.ts";
import { handshakeInitSenderId, handshakeResponseReceiverIndex } from "./packet.ts";

interface Pair {
  alice: Identity;
  bob: Identity;
  clock: { t: number };
  responder: HandshakeResponder;
  allocated: number[];
}

async function pair(): Promise<Pair> {
  const alice = await Identity.generate();
  const bob = await Identity.generate();
  const clock = { t: 1_700_000_000_000 };
  const allocated: number[] = [];
  let next = 100;
  const responder = new HandshakeResponder({
    identity: bob,
    now: () => clock.t,
    lookupPeer: (id) => (id === alice.id ? alice.publicKey : undefined),
    allocateIndex: () => {
      allocated.push(next);
      return next++;
    },
  });
  return { alice, bob, clock, responder, allocated };
}

function startFrom(p: Pair, localIndex = 7): Promise<HandshakeInitiator> {
  return HandshakeInitiator.start({
    identity: p.alice,
    remoteId: p.bob.id,
    remotePublicKey: p.bob.publicKey,
    localIndex,
    now: () => p.clock.t,
  });
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("handshake: happy path gives matching sessions in both directions", async () => {
  const p = await pair();
  const initiator = await startFrom(p);
  assert.equal(handshakeInitSenderId(initiator.packet), p.alice.id);
  const accepted = await p.responder.respond(initiator.packet);
  assert.ok(accepted);
  assert.equal(accepted.isNew, true);
  assert.equal(accepted.remoteId, p.alice.id);
  assert.equal(handshakeResponseReceiverIndex(accepted.response), 7);
  const a = await initiator.complete(accepted.response);
  assert.ok(a);
  assert.equal(initiator.completed, true);
  const b = accepted.session;
  assert.equal(a.remoteId, p.bob.id);
  assert.equal(b.remoteId, p.alice.id);
  assert.equal(a.localIndex, 7);
  assert.equal(a.remoteIndex, 100);
  assert.equal(b.localIndex, 100);
  assert.equal(b.remoteIndex, 7);
  assert.equal(a.confirmed, true);
  assert.equal(b.confirmed, false);
  assert.deepEqual(await b.open(await a.seal(text("ping"))), text("ping"));
  assert.equal(b.confirmed, true);
  assert.deepEqual(await a.open(await b.seal(text("pong"))), text("pong"));
  // A second valid response is ignored: the ephemeral key is gone.
  assert.equal(await initiator.complete(accepted.response), undefined);
});

Deno.test("handshake: a retransmitted INIT returns the same session and response", async () => {
  const p = await pair();
  const initiator = await startFrom(p);
  const [first, second] = await Promise.all([
    p.responder.respond(initiator.packet),
    p.responder.respond(initiator.packet.slice()),
  ]);
  assert.ok(first && second);
  assert.equal(first.session, second.session);
  assert.deepEqual(first.response, second.response);
  assert.deepEqual([first.isNew, second.isNew].sort(), [false, true]);
  const third = await p.responder.respond(initiator.packet);
  assert.ok(third);
  assert.equal(third.isNew, false);
  assert.equal(third.session, first.session);
  assert.deepEqual(p.allocated, [100]);
  // Once the client closed that session, the old INIT no longer yields it.
  third.session.close();
  assert.equal(await p.responder.respond(initiator.packet), undefined);
});

Deno.test("handshake: a replayed old INIT is refused and leaves the live session alone", async () => {
  const p = await pair();
  const old = await startFrom(p, 1);
  const oldAccepted = await p.responder.respond(old.packet);
  assert.ok(oldAccepted);
  p.clock.t += 5;
  const fresh = await startFrom(p, 2);
  const freshAccepted = await p.responder.respond(fresh.packet);
  assert.ok(freshAccepted?.isNew);
  const live = await fresh.complete(freshAccepted.response);
  assert.ok(live);
  // The attacker replays the older INIT: refused.
  assert.equal(await p.responder.respond(old.packet), undefined);
  // An INIT with the same timestamp but other bytes (a new ephemeral) is refused too.
  const sameTime = await startFrom(p, 3);
  assert.equal(await p.responder.respond(sameTime.packet), undefined);
  // The live session still works.
  assert.deepEqual(await freshAccepted.session.open(await live.seal(text("x"))), text("x"));
  assert.deepEqual(p.allocated, [100, 101]);
});

Deno.test("handshake: the wrong key or ID is refused", async () => {
  const p = await pair();
  const mallory = await Identity.generate();
  // The initiator refuses a key that does not hash to the ID.
  await assert.rejects(
    () =>
      HandshakeInitiator.start({
        identity: p.alice,
        remoteId: p.bob.id,
        remotePublicKey: mallory.publicKey,
        localIndex: 1,
        now: () => p.clock.t,
      }),
    HandshakeError,
  );
  await assert.rejects(
    () =>
      HandshakeInitiator.start({
        identity: p.alice,
        remoteId: p.bob.id,
        remotePublicKey: p.bob.publicKey,
        localIndex: -1,
        now: () => p.clock.t,
      }),
    HandshakeError,
  );
  // Mallory (unknown to Bob) cannot start a session with Bob.
  const fromMallory = await HandshakeInitiator.start({
    identity: mallory,
    remoteId: p.bob.id,
    remotePublicKey: p.bob.publicKey,
    localIndex: 1,
    now: () => p.clock.t,
  });
  assert.equal(await p.responder.respond(fromMallory.packet), undefined);
  // Bob refuses an INIT meant for someone else.
  const toMallory = await HandshakeInitiator.start({
    identity: p.alice,
    remoteId: mallory.id,
    remotePublicKey: mallory.publicKey,
    localIndex: 1,
    now: () => p.clock.t,
  });
  assert.equal(await p.responder.respond(toMallory.packet), undefined);
  // A responder that maps Alice's ID to Mallory's key refuses (key/ID binding is checked).
  const confused = new HandshakeResponder({
    identity: p.bob,
    now: () => p.clock.t,
    lookupPeer: () => mallory.publicKey,
    allocateIndex: () => 1,
  });
  assert.equal(await confused.respond((await startFrom(p)).packet), undefined);
  // Mallory answering Alice's INIT with her own key is refused by Alice.
  const initiator = await startFrom(p);
  const mallorysResponder = new HandshakeResponder({
    identity: mallory,
    now: () => p.clock.t,
    lookupPeer: (id) => (id === p.alice.id ? p.alice.publicKey : undefined),
    allocateIndex: () => 1,
  });
  // Mallory cannot even accept it (not addressed to her); she forges a response from a
  // handshake Alice made with her, replayed against Alice's handshake with Bob.
  assert.equal(await mallorysResponder.respond(initiator.packet), undefined);
  const aliceToMallory = await HandshakeInitiator.start({
    identity: p.alice,
    remoteId: mallory.id,
    remotePublicKey: mallory.publicKey,
    localIndex: 7,
    now: () => p.clock.t,
  });
  const mallorysResponse = await mallorysResponder.respond(aliceToMallory.packet);
  assert.ok(mallorysResponse);
  assert.equal(await initiator.complete(mallorysResponse.response), undefined);
  assert.equal(initiator.completed, false);
});

Deno.test("handshake: every single-bit flip of INIT or RESPONSE is refused", async () => {
  const p = await pair();
  const initiator = await startFrom(p);
  // Flip INIT bits, each against a fresh responder so the timestamp rule does not mask the test.
  for (let bit = 0; bit < initiator.packet.length * 8; bit += 7) {
    const tampered = initiator.packet.slice();
    tampered[bit >> 3] ^= 1 << (bit & 7);
    const responder = new HandshakeResponder({
      identity: p.bob,
      now: () => p.clock.t,
      lookupPeer: (id) => (id === p.alice.id ? p.alice.publicKey : undefined),
      allocateIndex: () => 1,
    });
    assert.equal(await responder.respond(tampered), undefined, `INIT bit ${bit}`);
  }
  const accepted = await p.responder.respond(initiator.packet);
  assert.ok(accepted);
  for (let bit = 0; bit < accepted.response.length * 8; bit += 5) {
    const tampered = accepted.response.slice();
    tampered[bit >> 3] ^= 1 << (bit & 7);
    assert.equal(await initiator.complete(tampered), undefined, `RESPONSE bit ${bit}`);
  }
  assert.equal(await initiator.complete(accepted.response.subarray(1)), undefined);
  assert.ok(await initiator.complete(accepted.response));
});

Deno.test("handshake: forward secrecy inputs are fresh per handshake", async () => {
  const p = await pair();
  const one = await startFrom(p, 1);
  p.clock.t += 1;
  const two = await startFrom(p, 1);
  // Ephemeral keys (bytes 53..85) differ between handshakes.
  assert.notDeepEqual(one.packet.subarray(53, 85), two.packet.subarray(53, 85));
  const a1 = await p.responder.respond(one.packet);
  const a2 = await p.responder.respond(two.packet);
  assert.ok(a1 && a2);
  const s1 = await one.complete(a1.response);
  const s2 = await two.complete(a2.response);
  assert.ok(s1 && s2);
  // Same indices, different keys: a packet of one session does not open in the other.
  assert.equal(await a2.session.open(await s1.seal(text("x"))), undefined);
});

Deno.test("handshake: a declined INIT is answered afresh when resent; an older one stays refused", async () => {
  const p = await pair();
  const old = await startFrom(p, 1);
  assert.ok(await p.responder.respond(old.packet));
  p.clock.t += 5;
  const initiator = await startFrom(p, 2);
  const first = await p.responder.respond(initiator.packet);
  assert.ok(first?.isNew);
  // The client lost a tie with its own INIT: it closes and declines the session.
  first.session.close();
  p.responder.decline(first.session);
  await Promise.resolve();
  const again = await p.responder.respond(initiator.packet);
  assert.ok(again, "the resend is answered");
  assert.equal(again.isNew, true);
  assert.notEqual(again.session, first.session);
  const session = await initiator.complete(again.response);
  assert.ok(session, "the initiator completes on the fresh answer");
  assert.deepEqual(await again.session.open(await session.seal(text("hi"))), text("hi"));
  // Not declined: a further resend gives the same session; the older INIT stays refused.
  const third = await p.responder.respond(initiator.packet);
  assert.equal(third?.session, again.session);
  assert.equal(third?.isNew, false);
  assert.equal(await p.responder.respond(old.packet), undefined);
});
