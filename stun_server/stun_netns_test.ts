// The server bound to all interfaces on a host with two addresses of each family answers every
// request from the address it was sent to (a wildcard socket answers from whatever source the
// kernel picks: the issue-12 defect, reproduced here as the control). Runs in a network namespace
// of its own (root and `ip` needed; skipped otherwise), with real sockets and the real program;
// headless Chromium then gets a server-reflexive candidate from each of the four addresses.
import assert from "node:assert/strict";
import { programRunArgs } from "../testing/programs.ts";
import { findChromium } from "../testing/headless_chromium.ts";

const chromium = await findChromium();

const V4 = ["10.77.0.1", "10.77.0.2"];
const V6 = ["fd77::1", "fd77::2"];

async function sh(args: string[]): Promise<string> {
  const result = await new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (result.code !== 0) {
    throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  }
  return new TextDecoder().decode(result.stdout);
}

const supported = Deno.build.os === "linux" && Deno.uid() === 0 &&
  (await new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).output()
    .then((r) => r.success, () => false));

async function withNamespace(body: (ns: string) => Promise<void>): Promise<void> {
  const ns = `turn${Deno.pid}x${Math.floor(Math.random() * 1e6)}`;
  await sh(["ip", "netns", "add", ns]);
  try {
    await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    // A veth pair inside the namespace (no dummy module needed); the addresses sit on d0.
    await sh(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    await sh(["ip", "-n", ns, "link", "set", "d1", "up"]);
    await sh(["ip", "-n", ns, "link", "set", "d0", "up"]);
    for (const a of V4) await sh(["ip", "-n", ns, "addr", "add", `${a}/24`, "dev", "d0"]);
    for (const a of V6) {
      await sh(["ip", "-n", ns, "addr", "add", `${a}/64`, "dev", "d0", "nodad"]);
    }
    await body(ns);
  } finally {
    // Kill whatever still runs inside, then delete the namespace.
    const pids = await sh(["ip", "netns", "pids", ns]).catch(() => "");
    for (const pid of pids.split(/\s+/).filter((p) => p !== "")) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch {
        // gone
      }
    }
    await sh(["ip", "netns", "delete", ns]).catch(() => {});
  }
}

/** Starts the real server inside `ns`; returns its STUN port and a stop function. */
async function startServer(
  ns: string,
  args: string[],
): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      ...programRunArgs("stun_server", ["--stun-port", "0", "--tcp-port", "0", ...args]),
    ],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  try {
    while (!text.includes("\n")) {
      const left = deadline - Date.now();
      assert.ok(left > 0, "server did not announce itself within 60 s");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<{ done: true; value: undefined }>((r) => {
          timer = setTimeout(() => r({ done: true, value: undefined }), left);
        }),
      ]);
      clearTimeout(timer);
      assert.ok(!chunk.done, `server exited or stalled: ${text}`);
      text += chunk.value;
    }
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  const announcement = JSON.parse(text.slice(0, text.indexOf("\n")));
  return {
    port: announcement.stun[0].port,
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

/**
 * From every address to every other of its family, inside `ns`: sends a Binding request and
 * reports the source address of the answer.
 */
async function probe(ns: string, port: number): Promise<{ to: string; from: string }[]> {
  const script = `
    const pairs = ${
    JSON.stringify([[V4[0], V4[1]], [V4[1], V4[0]], [V6[0], V6[1]], [V6[1], V6[0]]])
  };
    const results = [];
    for (const [local, remote] of pairs) {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
      const request = new Uint8Array(20);
      request.set([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
      crypto.getRandomValues(request.subarray(8));
      let from = "none";
      for (let attempt = 0; attempt < 3 && from === "none"; attempt++) {
        await socket.send(request, { transport: "udp", hostname: remote, port: ${port} });
        const got = await Promise.race([socket.receive(), new Promise((r) => setTimeout(() => r(null), 1000))]);
        if (got !== null) from = got[1].hostname;
      }
      socket.close();
      results.push({ to: remote, from });
    }
    console.log(JSON.stringify(results));
    Deno.exit(0);
  `;
  const out = await sh([
    "ip",
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "eval",
    "--unstable-net",
    script,
  ]);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

Deno.test({
  name:
    "stun netns: bound to all interfaces, every answer leaves from the address the request reached",
  ignore: !supported,
  fn: async () => {
    await withNamespace(async (ns) => {
      const server = await startServer(ns, []);
      try {
        const results = await probe(ns, server.port);
        for (const { to, from } of results) assert.equal(from, to, JSON.stringify(results));
      } finally {
        await server.stop();
      }
      // Control: a single wildcard socket (--host ::) answers from the wrong address, which is
      // exactly what the first half would catch.
      const wildcard = await startServer(ns, ["--host", "::"]);
      try {
        const results = await probe(ns, wildcard.port);
        assert.ok(
          results.some(({ to, from }) => from !== to),
          `the wildcard control answered correctly: ${JSON.stringify(results)}`,
        );
      } finally {
        await wildcard.stop();
      }
    });
  },
});

/**
 * Runs `pageScript` (an async function body returning JSON) in headless Chromium inside `ns`.
 * DevTools would listen on the namespace's own loopback, out of this process's reach, so a small
 * HTTP server inside the namespace serves the page and prints what the page posts back.
 */
async function runPageInNamespace(
  ns: string,
  pageScript: string,
  timeoutMs: number,
): Promise<unknown> {
  const binary = chromium!;
  const profile = await Deno.makeTempDir({ prefix: "p2p-chromium-" });
  const page = `<!doctype html><script>(async () => {
    let result;
    try { result = await (async () => { ${pageScript} })(); } catch (e) { result = { error: String(e) }; }
    await fetch("/result", { method: "POST", body: JSON.stringify(result) });
  })();</script>`;
  const helper = `
    const page = ${JSON.stringify(page)};
    const done = Promise.withResolvers();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => {
      const chrome = new Deno.Command(${JSON.stringify(binary)}, {
        args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
          "--disable-dev-shm-usage", "--user-data-dir=${profile}", "http://127.0.0.1:" + port + "/"],
        stdout: "null", stderr: "null", stdin: "null",
      }).spawn();
      done.promise.then(() => chrome.kill("SIGKILL"));
      setTimeout(() => { console.log(JSON.stringify({ error: "timeout" })); done.resolve(); }, ${timeoutMs});
    } }, async (request) => {
      if (request.method === "POST") {
        console.log(await request.text());
        done.resolve();
        return new Response("ok");
      }
      return new Response(page, { headers: { "content-type": "text/html" } });
    });
    await done.promise;
    await server.shutdown();
    Deno.exit(0);
  `;
  try {
    const out = await sh(["ip", "netns", "exec", ns, Deno.execPath(), "eval", helper]);
    return JSON.parse(out.trim().split("\n").at(-1)!);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    "stun netns: headless Chromium gets a server-reflexive candidate from each of two addresses per family",
  ignore: !supported || chromium === undefined,
  fn: async () => {
    await withNamespace(async (ns) => {
      const server = await startServer(ns, []);
      try {
        const urls = [...V4, ...V6].map((a) =>
          `stun:${a.includes(":") ? `[${a}]` : a}:${server.port}`
        );
        // One peer connection per STUN server, so each must answer on its own.
        const results = await runPageInNamespace(
          ns,
          `return await Promise.all(${JSON.stringify(urls)}.map(async (url) => {
            const pc = new RTCPeerConnection({ iceServers: [{ urls: url }] });
            const srflx = [], errors = [];
            pc.onicecandidate = (e) => { if (e.candidate && / typ srflx /.test(e.candidate.candidate)) srflx.push(e.candidate.candidate); };
            pc.onicecandidateerror = (e) => errors.push(e.errorCode + " " + e.errorText);
            const done = new Promise((r) => pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r());
            pc.createDataChannel("x");
            await pc.setLocalDescription(await pc.createOffer());
            await Promise.race([done, new Promise((r) => setTimeout(r, 20000))]);
            pc.close();
            return { url, srflx, errors };
          }));`,
          60_000,
        ) as { url: string; srflx: string[]; errors: string[] }[];
        assert.ok(Array.isArray(results), JSON.stringify(results));
        assert.equal(results.length, 4);
        for (const result of results) {
          assert.ok(result.srflx.length > 0, `no srflx candidate from ${JSON.stringify(result)}`);
          assert.deepEqual(result.errors, [], result.url);
        }
      } finally {
        await server.stop();
      }
    });
  },
});
