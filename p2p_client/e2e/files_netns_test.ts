/**
 * A file transfer across a forced path switch: the clients and the real server run in a private
 * network namespace; UDP between the clients is blocked at first (the transfer starts over the
 * relay), then unblocked mid-transfer (the link goes direct and the transfer carries on). Needs
 * root; skipped elsewhere with the reason.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ClientProcess } from "../../testing/client_process.ts";
import { NetnsServer, netnsUnavailable, TestNamespace } from "../../testing/netns.ts";
import { peerStateIs } from "./scenarios.ts";

const unavailable = await netnsUnavailable();
const WAIT = 120_000;
const MiB = 1 << 20;
const FIRST_UDP_PORT = 40101;
const BLOCK_ALL = `udp sport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} ` +
  `udp dport ${FIRST_UDP_PORT}-${FIRST_UDP_PORT + 9} drop`;

Deno.test({
  name: `files e2e: 64 MiB across a forced switch from the relay to a direct path${
    unavailable ? ` (skipped: ${unavailable})` : ""
  }`,
  ignore: unavailable !== undefined,
  fn: async () => {
    const ns = await TestNamespace.create("p2pf");
    const dir = await Deno.makeTempDir({ prefix: "p2p-files-switch-" });
    let server: NetnsServer | undefined;
    const clients: ClientProcess[] = [];
    try {
      await ns.addRule(BLOCK_ALL);
      server = await NetnsServer.start(ns, 3478, 54321);
      for (const [i, name] of ["a", "b"].entries()) {
        clients.push(ClientProcess.start({
          servers: ["127.0.0.1:3478"],
          args: [
            "--udp-port",
            String(FIRST_UDP_PORT + i),
            "--accept-files",
            "anyone",
            "--downloads",
            `${dir}/${name}`,
          ],
          netns: ns.name,
        }));
      }
      const [a, b] = clients;
      await Promise.all(clients.map((c) => c.registered()));
      await a.command(`connect ${b.id}`);
      await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "relayed while UDP is blocked");
      const hash = createHash("sha256");
      const data = new Uint8Array(64 * MiB);
      for (let i = 0; i < data.length; i += 97) data[i] = i & 0xff;
      hash.update(data);
      await Deno.writeFile(`${dir}/switch.bin`, data);
      await a.command(`sendfile ${b.id} ${dir}/switch.bin`);
      await b.waitFor(
        (e) => e.type === "file" && e.state === "progress" && Number(e.bytes) >= 2 * MiB,
        WAIT,
        "2 MiB over the relay",
      );
      await ns.flush();
      await a.waitFor(peerStateIs(b.id, "direct"), WAIT, "direct mid-transfer");
      const received = await b.waitFor(
        (e) => e.type === "file" && e.state === "received",
        WAIT,
        "received",
      );
      assert.equal(received.sha256, hash.digest("hex"));
      assert.deepEqual(await Deno.readFile(`${dir}/b/switch.bin`), data);
      // The switch happened before the end.
      const directAt = a.events.findIndex(peerStateIs(b.id, "direct"));
      const sentAt = a.events.findIndex((e) => e.type === "file" && e.state === "sent");
      assert.ok(directAt >= 0 && (sentAt === -1 || directAt < sentAt));
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
      await server?.stop();
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
