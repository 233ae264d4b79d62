import assert from "node:assert/strict";
import { Identity } from "../shared/identity/mod.ts";
import {
  type DataFrame,
  encodeDataHead,
  encodeFrame,
  type Frame,
  FrameType,
} from "../shared/peer/frames.ts";
import type { ClientEvent } from "./events.ts";
import { linkFrameCodec } from "./link_frame_codec.ts";
import type { MessageChannel, MessageChannelHooks } from "./link_frames.ts";
import { formatUdpAddress, type UdpAddress } from "./path_manager.ts";
import { PeerTable } from "./peer_table.ts";
import { classifyPacket } from "./inbound_packet.ts";
import { systemRuntime } from "../shared/runtime/mod.ts";

/** A minimal stop-and-retransmit channel: one DATA frame per message, acked by seq. */
function fakeChannel(
  hooks: MessageChannelHooks,
  maxUnacked = Infinity,
  parts = false,
): MessageChannel {
  let nextSeq = 0;
  const unacked = new Map<number, { frame: Uint8Array; sentAt: number }>();
  const seen = new Set<number>();
  return {
    wasSent: () => true,
    cancel: () => false,
    hasRoomFor() {
      return unacked.size < maxUnacked;
    },
    sendMessage(message) {
      if (unacked.size >= maxUnacked) {
        const full = new Error(`${unacked.size} messages are not yet acknowledged`);
        full.name = "SendQueueFullError";
        throw full;
      }
      const seq = nextSeq++;
      const data: DataFrame = {
        type: FrameType.Data,
        streamId: 1,
        seq,
        first: true,
        last: true,
        messageLength: message.length,
        payload: message,
      };
      const frame = encodeFrame(data);
      unacked.set(seq, { frame, sentAt: Date.now() });
      // As the reliable channel sends DATA: its header and the message, sealed without joining.
      if (parts && hooks.sendParts) hooks.sendParts(encodeDataHead(data), message);
      else hooks.send(frame);
      return seq;
    },
    receive(frame) {
      const f = frame as Frame;
      if (f.type === FrameType.Data) {
        const data = f as DataFrame;
        if (!seen.has(data.seq)) {
          seen.add(data.seq);
          hooks.deliver(data.payload.slice());
        }
        let cumulative = 0;
        while (seen.has(cumulative)) cumulative++;
        hooks.send(
          encodeFrame({ type: FrameType.Ack, streamId: 1, cumulative, window: 64, ranges: [] }),
        );
      } else if (f.type === FrameType.Ack) {
        for (const seq of [...unacked.keys()]) {
          if (seq < f.cumulative && unacked.delete(seq)) hooks.onAcknowledged(seq);
        }
      }
    },
    tick() {
      for (const entry of unacked.values()) {
        if (Date.now() - entry.sentAt > 100) {
          entry.sentAt = Date.now();
          hooks.send(entry.frame);
        }
      }
    },
    nextDeadline: () => Infinity,
    srttMs: undefined,
    pathChanged() {},
    close(reason) {
      hooks.onFailure(reason, [...unacked.keys()], []);
      unacked.clear();
    },
  };
}

interface Side {
  identity: Identity;
  table: PeerTable;
  events: ClientEvent[];
  /** The address this side sends from (what the other side sees). */
  seenAs: UdpAddress;
}

interface Network {
  udpBlocked: boolean;
  /** Rewrites UDP datagrams in flight (tampering). */
  mutate?: (bytes: Uint8Array) => Uint8Array;
  /** Destinations that drop everything (a symmetric NAT's unused mappings). */
  deadAddresses: Set<string>;
}

async function pair(
  net: Network,
  addresses: [UdpAddress, UdpAddress],
  advertised: [UdpAddress, UdpAddress],
  maxUnacked = Infinity,
  /** Offer `reserveRelay` (relay frames built in place) and send DATA as parts. */
  reserve = false,
) {
  const reserved: Uint8Array[] = [];
  const identities = [await Identity.generate(), await Identity.generate()];
  const sides: Side[] = [];
  for (let i = 0; i < 2; i++) {
    const events: ClientEvent[] = [];
    const self = i;
    const table = new PeerTable({
      identity: identities[i],
      runtime: systemRuntime,
      sendUdp: (bytes, to) => {
        if (net.udpBlocked || net.deadAddresses.has(formatUdpAddress(to))) return;
        const other = sides[1 - self];
        if (formatUdpAddress(to) !== formatUdpAddress(addresses[1 - self])) return;
        const delivered = net.mutate ? net.mutate(bytes) : bytes;
        setTimeout(
          () =>
            other.table.dispatch(classifyPacket(delivered), {
              kind: "udp",
              address: sides[self].seenAs,
            }),
          1,
        );
      },
      sendRelay: (_peer, bytes) => {
        setTimeout(
          () =>
            sides[1 - self].table.dispatch(
              classifyPacket(bytes),
              { kind: "relay" },
              identities[self].id,
            ),
          1,
        );
        return true;
      },
      ...(reserve
        ? {
          reserveRelay: (_peer: string, length: number) => {
            // Like a write queue: the space goes out once the caller has filled it.
            const space = new Uint8Array(length);
            reserved.push(space);
            setTimeout(() => {
              if (!reserved.includes(space)) return; // cancelled
              sides[1 - self].table.dispatch(
                classifyPacket(space),
                { kind: "relay" },
                identities[self].id,
              );
            }, 1);
            return space;
          },
          cancelRelay: (space: Uint8Array) => reserved.splice(reserved.indexOf(space), 1),
        }
        : {}),
      emit: (event) => events.push(event),
      createChannel: (hooks) => fakeChannel(hooks, maxUnacked, reserve),
      frames: linkFrameCodec,
      pathOptions: {
        connectTimeoutMs: 400,
        directTimeoutMs: 600,
        keepaliveMs: 100,
        burstIntervalMs: 20,
        burstMs: 300,
        slowIntervalMs: 100,
      },
    });
    sides.push({ identity: identities[i], table, events, seenAs: addresses[i] });
  }
  const now = systemRuntime.now();
  for (let i = 0; i < 2; i++) {
    sides[i].table.getOrCreate(identities[1 - i].id).introduce({
      publicKey: identities[1 - i].publicKey,
      candidates: [advertised[1 - i]],
      role: i === 0 ? "initiator" : "responder",
      punchAt: now + 20,
    });
  }
  const ticker = setInterval(() => sides.forEach((s) => s.table.tick()), 10);
  return { sides, reserved, stop: () => clearInterval(ticker) };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function stateOf(side: Side, peer: Identity) {
  return side.table.get(peer.id)?.summary();
}

function shutdown(sides: Side[]) {
  for (const side of sides) for (const link of side.table.links()) link.disconnect("test over");
}

const A = { host: "10.0.0.1", port: 1000 };
const B = { host: "10.0.0.2", port: 2000 };

Deno.test("two peers establish a direct path and exchange messages exactly once", async () => {
  const net = { udpBlocked: false, deadAddresses: new Set<string>() };
  const { sides, stop } = await pair(net, [A, B], [A, B]);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "direct", "A direct");
    await until(() => stateOf(b, a.identity)?.state === "direct", "B direct");
    assert.equal(stateOf(a, b.identity)?.path, "udp 10.0.0.2:2000");
    a.table.get(b.identity.id)!.send(1, new TextEncoder().encode("hello"));
    await until(() => a.events.some((e) => e.type === "delivered"), "delivery");
    const messages = b.events.filter((e) => e.type === "message");
    assert.deepEqual(messages, [{ type: "message", from: a.identity.id, text: "hello" }]);
    assert.ok(!a.events.some((e) => e.type === "peer" && e.state === "relayed"));
  } finally {
    stop();
    shutdown(sides);
  }
});

Deno.test("UDP blocked: relayed after the timeout, then upgraded to direct when UDP works", async () => {
  const net = { udpBlocked: true, deadAddresses: new Set<string>() };
  const { sides, stop } = await pair(net, [A, B], [A, B]);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "relayed", "A relayed");
    const link = a.table.get(b.identity.id)!;
    link.send(1, new TextEncoder().encode("over the relay"));
    await until(() => b.events.some((e) => e.type === "message"), "relayed message");
    net.udpBlocked = false;
    await until(() => stateOf(a, b.identity)?.state === "direct", "upgrade to direct");
    const upgrade = a.events.find((e) => e.type === "peer" && e.state === "direct");
    assert.equal((upgrade as { reason?: string }).reason, "upgraded from relay");
    link.send(2, new TextEncoder().encode("direct now"));
    await until(
      () => a.events.filter((e) => e.type === "delivered").length === 2,
      "both delivered",
    );
    assert.deepEqual(
      b.events.filter((e) => e.type === "message").map((e) => (e as { text: string }).text),
      ["over the relay", "direct now"],
    );
    net.udpBlocked = true;
    await until(() => stateOf(a, b.identity)?.state === "relayed", "fallback to relay");
    link.send(3, new TextEncoder().encode("relay again"));
    await until(
      () => a.events.filter((e) => e.type === "delivered").length === 3,
      "third delivered",
    );
  } finally {
    stop();
    shutdown(sides);
  }
});

Deno.test("relayed DATA packets are sealed straight into relay space the signaling queue reserved", async () => {
  // Issue 14: no packet array and no relay frame array of their own per DATA packet.
  const net = { udpBlocked: true, deadAddresses: new Set<string>() };
  const { sides, reserved, stop } = await pair(net, [A, B], [A, B], Infinity, true);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "relayed", "A relayed");
    const before = reserved.length;
    const text = "x".repeat(5000);
    a.table.get(b.identity.id)!.send(1, new TextEncoder().encode(text));
    await until(() => a.events.some((e) => e.type === "delivered"), "delivery");
    assert.deepEqual(
      b.events.filter((e) => e.type === "message").map((e) => (e as { text: string }).text),
      [text],
    );
    // The DATA packet went into reserved space: header, frame head, message and tag exactly.
    const mine = reserved.slice(before).filter((space) => space.length > 5000);
    assert.equal(mine.length >= 1, true, `reservations: ${reserved.map((r) => r.length)}`);
  } finally {
    stop();
    shutdown(sides);
  }
});

Deno.test("a peer behind a per-destination NAT is answered at its peer-reflexive address", async () => {
  // B advertises 10.0.0.2:2000 but its packets to A come from 10.0.0.2:2999, and only that
  // mapping reaches B; packets to 2000 are dropped.
  const nat = { host: "10.0.0.2", port: 2999 };
  const net = { udpBlocked: false, deadAddresses: new Set([formatUdpAddress(B)]) };
  const { sides, stop } = await pair(net, [A, nat], [A, B]);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "direct", "A direct");
    assert.equal(stateOf(a, b.identity)?.path, "udp 10.0.0.2:2999");
    await until(() => stateOf(b, a.identity)?.state === "direct", "B direct");
  } finally {
    stop();
    shutdown(sides);
  }
});

Deno.test("tampered transport packets are rejected; the message still arrives once", async () => {
  const net: Network = { udpBlocked: false, deadAddresses: new Set<string>() };
  const { sides, stop } = await pair(net, [A, B], [A, B]);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "direct", "A direct");
    await until(() => stateOf(b, a.identity)?.state === "direct", "B direct");
    let tampered = 0;
    net.mutate = (bytes) => {
      const transport = bytes[0] === 0xe4 || bytes[0] === 0xe5; // 0xE5 once the peer has shown it reads it
      if (!transport || bytes.length < 60 || tampered >= 3) return bytes;
      tampered++;
      const copy = bytes.slice();
      copy[copy.length - 20] ^= 0x01;
      return copy;
    };
    a.table.get(b.identity.id)!.send(1, new TextEncoder().encode("x".repeat(100)));
    await until(() => a.events.some((e) => e.type === "delivered"), "delivery despite tampering");
    assert.ok(tampered >= 1);
    assert.ok(b.table.get(a.identity.id)!.rejectedPackets >= 1, "tampered packet rejected");
    assert.equal(b.events.filter((e) => e.type === "message").length, 1);
  } finally {
    stop();
    shutdown(sides);
  }
});

Deno.test("messages beyond the channel's window wait in the link and all arrive in order", async () => {
  const net: Network = { udpBlocked: false, deadAddresses: new Set<string>() };
  const { sides, stop } = await pair(net, [A, B], [A, B], 4);
  const [a, b] = sides;
  try {
    await until(() => stateOf(a, b.identity)?.state === "direct", "A direct");
    const link = a.table.get(b.identity.id)!;
    for (let i = 1; i <= 30; i++) link.send(i, new TextEncoder().encode(`n${i}`));
    assert.ok(link.pendingMessages > 4, "the backlog waits in the link");
    await until(
      () => a.events.filter((e) => e.type === "delivered").length === 30,
      "all delivered",
    );
    assert.deepEqual(
      b.events.filter((e) => e.type === "message").map((e) => (e as { text: string }).text),
      Array.from({ length: 30 }, (_, i) => `n${i + 1}`),
    );
    assert.ok(!a.events.some((e) => e.type === "error"), "no message refused");
  } finally {
    stop();
    shutdown(sides);
  }
});
