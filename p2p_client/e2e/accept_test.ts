/**
 * Issue 11 with the real programs: `--accept contacts` (a stranger's `connect` learns nothing:
 * the same `unknown-peer` as for an offline ID, and the callee reports `declined`; a contact
 * connects and exchanges messages), and server refusals reported as one `refused` event with the
 * server's code and words.
 */
import assert from "node:assert/strict";
import { ServerProcess } from "../../testing/server_process.ts";
import { ClientProcess, waitUntil } from "../../testing/client_process.ts";

const WAIT = 60_000;

Deno.test("--accept contacts: a stranger gets what an offline ID gets; a contact connects", async () => {
  await using server = await ServerProcess.start();
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const callee = ClientProcess.start({ servers, args: ["--accept", "contacts"] });
  const friend = ClientProcess.start({ servers });
  const stranger = ClientProcess.start({ servers });
  try {
    const [calleeId, friendId, strangerId] = await Promise.all([
      callee.registered(),
      friend.registered(),
      stranger.registered(),
    ]);
    await callee.command(`name ${friendId} friend`);
    await callee.waitFor((e) => e.type === "contact" && e.peer === friendId, WAIT, "contact");

    // The stranger asks for the callee, then for an ID nobody has: the same answer both times.
    await stranger.command(`connect ${calleeId}`);
    const declined = await stranger.waitFor(
      (e) => e.type === "error" && e.code === "unknown-peer",
      WAIT,
      "refusal of the stranger",
    );
    const offlineId = "0123456789abcdef0123456789abcdef01234567";
    await stranger.command(`connect ${offlineId}`);
    const offline = await stranger.waitFor(
      (e) => e.type === "error" && e.code === "unknown-peer" && e.peer === offlineId,
      WAIT,
      "refusal of an offline ID",
    );
    assert.equal(declined.peer, calleeId);
    assert.equal(declined.message, offline.message, "a decline reads as offline");
    assert.deepEqual(Object.keys(declined).sort(), Object.keys(offline).sort());
    // The stranger never got a key, an address or a peer state for the callee.
    const toCallee = stranger.events.filter((e) => e.type === "peer" && e.peer === calleeId);
    assert.ok(
      toCallee.every((e) =>
        e.path === null && (e.state === "connecting" || e.state === "disconnected")
      ),
      `no path to the callee: ${JSON.stringify(toCallee)}`,
    );
    // The callee says it declined, and never met the stranger.
    const said = await callee.waitFor((e) => e.type === "declined", WAIT, "declined event");
    assert.equal(said.peer, strangerId);
    assert.ok(!callee.events.some((e) => e.type === "peer" && e.peer === strangerId));

    // The contact connects and talks.
    await friend.command(`connect ${calleeId}`);
    await friend.waitFor(
      (e) => e.type === "peer" && e.peer === calleeId && e.state === "direct",
      WAIT,
      "friend direct",
    );
    await friend.command(`send ${calleeId} hello from a contact`);
    await callee.waitFor(
      (e) => e.type === "message" && e.from === friendId && e.text === "hello from a contact",
      WAIT,
      "message from the contact",
    );
    await friend.waitFor((e) => e.type === "delivered", WAIT, "delivered");
    for (const client of [callee, friend, stranger]) assert.deepEqual(client.badLines, []);
  } finally {
    await Promise.all([callee.dispose(), friend.dispose(), stranger.dispose()]);
  }
});

Deno.test("a server refusal is one `refused` event with the server's code and words", async () => {
  await using server = await ServerProcess.start({ args: ["--max-clients", "1"] });
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const first = ClientProcess.start({ servers });
  let second: ClientProcess | undefined;
  try {
    await first.registered();
    second = ClientProcess.start({ servers, args: ["--log-level", "debug"] });
    const refused = await second.waitFor((e) => e.type === "refused", WAIT, "refused event");
    assert.equal(refused.server, servers[0]);
    assert.equal(refused.code, "server-full");
    assert.equal(refused.during, "registration");
    assert.match(String(refused.message), /maximum of 1 clients/);
    const state = await second.waitFor(
      (e) => e.type === "server" && e.state === "refused",
      WAIT,
      "refused state",
    );
    assert.match(String(state.reason), /^server-full: /);
    // The client retries; the refusal is said once, not at every retry.
    const retried = second;
    await waitUntil(() => retried.logs.split("cannot register").length > 2, WAIT, "a retry");
    assert.equal(second.of("refused").length, 1);
    // Room again: it registers.
    await first.stop();
    await second.registered();
  } finally {
    await second?.dispose();
    await first.dispose();
  }
});
