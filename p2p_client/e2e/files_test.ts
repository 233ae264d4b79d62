/**
 * File transfer end to end with real processes on loopback: the real server and real clients
 * (`--json --accept-files anyone --downloads DIR`), 64 MiB files over the direct path, over the
 * relay, across a forced switch, and resumed after the receiving client restarts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ServerProcess } from "../../testing/server_process.ts";
import { ClientProcess, type JsonEvent } from "../../testing/client_process.ts";
import { peerStateIs } from "./scenarios.ts";

const WAIT = 120_000;
const MiB = 1 << 20;

async function makeFile(path: string, size: number, seed: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const piece = new Uint8Array(MiB);
  for (let at = 0; at < size; at += piece.length) {
    const part = piece.subarray(0, Math.min(piece.length, size - at));
    for (let i = 0; i < part.length; i += 64) part[i] = (at + i + seed) >>> 6;
    hash.update(part);
    let done = 0;
    while (done < part.length) done += await file.write(part.subarray(done));
  }
  file.close();
  return hash.digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path);
  const buffer = new Uint8Array(MiB);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  file.close();
  return hash.digest("hex");
}

function fileState(state: string, id?: string): (e: JsonEvent) => boolean {
  return (e) => e.type === "file" && e.state === state && (id === undefined || e.id === id);
}

async function setup(
  options: { relayOnly?: boolean; serverArgs?: string[]; logLevel?: string } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "p2p-files-e2e-" });
  const server = await ServerProcess.start({ args: options.serverArgs ?? [] });
  const servers = [`127.0.0.1:${server.tcpPort}`];
  const flags = (name: string) => [
    "--accept-files",
    "anyone",
    "--downloads",
    `${dir}/${name}`,
    ...(options.relayOnly ? ["--relay-only"] : []),
    ...(options.logLevel ? ["--log-level", options.logLevel] : []),
  ];
  const a = ClientProcess.start({ servers, args: flags("a") });
  const b = ClientProcess.start({
    servers,
    args: [...flags("b"), "--identity", `${dir}/b-identity.json`],
    ephemeral: false,
  });
  return { dir, server, servers, a, b, flags };
}

Deno.test("files e2e: 64 MiB over the direct path; ../../etc/passwd lands in the downloads folder", async () => {
  const { dir, server, a, b } = await setup({ logLevel: "debug" });
  try {
    await Promise.all([a.registered(), b.registered()]);
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "direct"), WAIT, "direct");
    const sha = await makeFile(`${dir}/big.bin`, 64 * MiB, 1);
    await a.command(`sendfile ${b.id} ${dir}/big.bin`);
    const received = await b.waitFor(fileState("received"), WAIT, "received at b");
    assert.equal(received.sha256, sha);
    // The receiver enlarged its UDP buffer (FFI) and told the sender in a PARAMETERS frame.
    const enlarged = /UDP receive buffer: (\d+)/.exec(b.logs)?.[1];
    assert.ok(enlarged !== undefined && Number(enlarged) > 212_992, "b's buffer was not enlarged");
    assert.ok(
      a.logs.includes(`${b.id}'s UDP receive buffer: ${enlarged} bytes`),
      "a never learned b's buffer",
    );
    assert.equal(received.path, `${dir}/b/big.bin`);
    assert.equal(await sha256File(`${dir}/b/big.bin`), sha);
    await a.waitFor(fileState("sent"), WAIT, "sent at a");
    // A chat line during a transfer, and a hostile name.
    await Deno.mkdir(`${dir}/x/y`, { recursive: true });
    await Deno.writeTextFile(`${dir}/x/y/passwd`, "not yours");
    // The name offered is the file's base name; a peer could send anything: the codec test and
    // the store test cover "../../etc/passwd" itself; here the receiver gets "passwd" in its
    // folder and, sent again once that one arrived, a second one next to it (sent again while
    // the first is still under way, the same file resumes that transfer: a restarted sender).
    await a.command(`sendfile ${b.id} ${dir}/x/y/passwd`);
    await b.waitFor(
      (e) => e.type === "file" && e.state === "received" && e.name === "passwd",
      WAIT,
      "the first passwd",
    );
    await a.command(`sendfile ${b.id} ${dir}/x/y/passwd`);
    await b.waitFor(
      (e) =>
        e.type === "file" && e.state === "received" && e.name === "passwd" &&
        String(e.path).endsWith("passwd (1)"),
      WAIT,
      "two passwd files",
    );
    assert.equal(await Deno.readTextFile(`${dir}/b/passwd`), "not yours");
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("files e2e: 64 MiB over the relay (rate limit raised)", async () => {
  const { dir, server, a, b } = await setup({
    relayOnly: true,
    serverArgs: ["--relay-rate", "1000000000", "--relay-queue", "16777216"],
  });
  try {
    await Promise.all([a.registered(), b.registered()]);
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "relayed");
    const sha = await makeFile(`${dir}/relay.bin`, 64 * MiB, 2);
    await a.command(`sendfile ${b.id} ${dir}/relay.bin`);
    const received = await b.waitFor(fileState("received"), WAIT, "received at b");
    assert.equal(received.sha256, sha);
    assert.equal(await sha256File(`${dir}/b/relay.bin`), sha);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("files e2e: the receiving client restarts mid-transfer and the transfer resumes", async () => {
  // Over the relay at 16 MB/s: slow enough that a progress event (every 0.5 s) shows b in the
  // middle of the file; a direct path on loopback can finish 64 MiB between two of them.
  const { dir, server, servers, a, b, flags } = await setup({
    relayOnly: true,
    serverArgs: ["--relay-rate", "16000000", "--relay-queue", "16777216"],
  });
  let b2: ClientProcess | undefined;
  try {
    await Promise.all([a.registered(), b.registered()]);
    await a.command(`connect ${b.id}`);
    await a.waitFor(peerStateIs(b.id, "relayed"), WAIT, "relayed");
    const sha = await makeFile(`${dir}/resume.bin`, 64 * MiB, 3);
    // Stop the transfer in the middle: restart b once 8 MiB are written.
    await a.command(`sendfile ${b.id} ${dir}/resume.bin`);
    await b.waitFor(
      (e) => e.type === "file" && e.state === "progress" && Number(e.bytes) >= 8 * MiB,
      WAIT,
      "8 MiB at b",
    );
    b.kill();
    await b.stop().catch(() => {});
    b2 = ClientProcess.start({
      servers,
      args: [...flags("b"), "--identity", `${dir}/b-identity.json`],
      ephemeral: false,
    });
    await b2.registered();
    await a.command(`connect ${b2.id}`);
    const received = await b2.waitFor(fileState("received"), WAIT, "received after restart");
    assert.equal(received.sha256, sha);
    assert.equal(await sha256File(`${dir}/b/resume.bin`), sha);
  } finally {
    await Promise.all([a.stop(), b2?.stop()]);
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
