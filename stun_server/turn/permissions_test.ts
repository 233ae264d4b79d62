import assert from "node:assert/strict";
import { CHANNEL_LIFETIME_MS, PeerTables, PERMISSION_LIFETIME_MS } from "./permissions.ts";

Deno.test("turn permissions: 5-minute permissions by IP, 10-minute channels, bounded", () => {
  const tables = new PeerTables(2, 2);
  tables.permit("192.0.2.1", 0);
  assert.ok(tables.permitted("192.0.2.1", PERMISSION_LIFETIME_MS - 1));
  assert.ok(!tables.permitted("192.0.2.1", PERMISSION_LIFETIME_MS));
  assert.ok(tables.hasRoomFor(["192.0.2.2"], 0));
  assert.ok(!tables.hasRoomFor(["192.0.2.2", "192.0.2.3"], 0));
  const peer = { hostname: "192.0.2.5", port: 7 };
  assert.equal(tables.bindChannel(0x4000, peer, 0), undefined);
  assert.equal(tables.channel(0x4000, CHANNEL_LIFETIME_MS - 1)?.peer.port, 7);
  assert.equal(tables.channel(0x4000, CHANNEL_LIFETIME_MS), undefined);
  assert.equal(tables.channelOf("192.0.2.5", 7, 1)?.channel, 0x4000);
  assert.equal(tables.bindChannel(0x4001, peer, 0), "peer-has-other-channel");
  assert.equal(tables.bindChannel(0x4000, { hostname: "192.0.2.6", port: 7 }, 0), "channel-in-use");
  // Refreshing a binding refreshes its permission too.
  assert.equal(tables.bindChannel(0x4000, peer, 200_000), undefined);
  assert.ok(tables.permitted("192.0.2.5", 200_000 + PERMISSION_LIFETIME_MS - 1));
  // The number stays reserved 5 minutes after expiry, then is purged.
  const expired = 200_000 + CHANNEL_LIFETIME_MS;
  assert.equal(
    tables.bindChannel(0x4000, { hostname: "192.0.2.6", port: 7 }, expired),
    "channel-in-use",
  );
  tables.purge(expired + PERMISSION_LIFETIME_MS);
  assert.equal(tables.channelCount, 0);
  assert.equal(
    tables.bindChannel(
      0x4000,
      { hostname: "192.0.2.6", port: 7 },
      expired + PERMISSION_LIFETIME_MS,
    ),
    undefined,
  );
  assert.equal(
    tables.bindChannel(
      0x4001,
      { hostname: "192.0.2.7", port: 7 },
      expired + PERMISSION_LIFETIME_MS,
    ),
    undefined,
  );
  assert.equal(
    tables.bindChannel(
      0x4002,
      { hostname: "192.0.2.8", port: 7 },
      expired + PERMISSION_LIFETIME_MS,
    ),
    "too-many",
  );
});
