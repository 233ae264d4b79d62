// Interop: headless Chromium (Debian's chromium) uses the real server as its TURN server: it
// gathers a relay candidate, and two peer connections restricted to relays
// (iceTransportPolicy "relay") exchange data-channel messages through it, over UDP and TCP.
import assert from "node:assert/strict";
import { ServerProcess } from "../testing/server_process.ts";
import { findChromium, HeadlessPage } from "../testing/headless_chromium.ts";

const chromium = await findChromium();

for (const transport of ["udp", "tcp"] as const) {
  Deno.test({
    name:
      `turn chromium: two relay-only peers exchange data-channel messages through our TURN (${transport})`,
    ignore: chromium === undefined,
    fn: async () => {
      const server = await ServerProcess.start({
        args: ["--turn-user", "alice:wonderland", "--allow-loopback-peers"],
      });
      const browser = await HeadlessPage.open("about:blank");
      try {
        const url = `turn:127.0.0.1:${server.stunPort}?transport=${transport}`;
        const result = (await browser.evaluate(
          `(async () => {
          const config = {
            iceServers: [{ urls: ${
            JSON.stringify(url)
          }, username: "alice", credential: "wonderland" }],
            iceTransportPolicy: "relay",
          };
          const a = new RTCPeerConnection(config), b = new RTCPeerConnection(config);
          const candidates = [], errors = [];
          for (const [pc, other] of [[a, b], [b, a]]) {
            pc.onicecandidate = (e) => {
              if (e.candidate) { candidates.push(e.candidate.candidate); other.addIceCandidate(e.candidate); }
            };
            pc.onicecandidateerror = (e) => errors.push(e.errorCode + " " + e.errorText);
          }
          const received = [];
          b.ondatachannel = (e) => { e.channel.onmessage = (m) => received.push(m.data); };
          const channel = a.createDataChannel("chat");
          await a.setLocalDescription(await a.createOffer());
          await b.setRemoteDescription(a.localDescription);
          await b.setLocalDescription(await b.createAnswer());
          await a.setRemoteDescription(b.localDescription);
          await Promise.race([
            new Promise((r) => channel.onopen = r),
            new Promise((r) => setTimeout(r, 20000)),
          ]);
          if (channel.readyState === "open") for (let i = 0; i < 50; i++) channel.send("message " + i);
          const deadline = Date.now() + 20000;
          while (received.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          const state = channel.readyState;
          a.close();
          b.close();
          return { state, received, candidates, errors };
        })()`,
        )) as { state: string; received: string[]; candidates: string[]; errors: string[] };
        assert.equal(result.state, "open", JSON.stringify(result));
        const relays = result.candidates.filter((c) => / typ relay /.test(c));
        assert.ok(relays.length >= 2, `relay candidates: ${JSON.stringify(result.candidates)}`);
        assert.ok(relays.every((c) => c.includes(" 127.0.0.1 ")));
        assert.deepEqual(
          result.received,
          Array.from({ length: 50 }, (_, i) => `message ${i}`),
          "every message, in order",
        );
      } finally {
        await browser.close();
        await server.stop();
      }
    },
  });
}
