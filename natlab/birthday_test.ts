import assert from "node:assert/strict";
import { checkLabSupport } from "./environment.ts";
import { EventLog, type JsonEvent } from "./json_lines.ts";
import { NatLab, sweepStaleNamespaces } from "./lab.ts";
import { DEFAULT_BUDGET } from "../p2p_client/birthday/birthday.ts";

const support = await checkLabSupport();
const skipReason = support.ok ? "" : ` (SKIPPED: ${support.reason})`;

/** Runs in `deno task test`; `NATLAB_BIRTHDAY_RUNS=20` for the 20-run figure. */
const RUNS = Number(Deno.env.get("NATLAB_BIRTHDAY_RUNS") ?? "3");

const TOOL = new URL("./birthday_tool.ts", import.meta.url).pathname;
const COUNTER_TABLE = "natlab_bday";

function tool(lab: NatLab, namespace: string, args: string[]) {
  const child = lab.spawn(namespace, [
    Deno.execPath(),
    "run",
    "--no-prompt",
    "--allow-net",
    TOOL,
    ...args,
  ], { stderr: "null" });
  return { child, log: new EventLog(child.stdout), stdin: child.stdin.getWriter() };
}

/** An nft counter of the UDP datagrams leaving the easy host from its probing port. */
async function countSent(
  lab: NatLab,
  namespace: string,
  port: number,
): Promise<() => Promise<number>> {
  await lab.exec(namespace, ["nft", "delete", "table", "ip", COUNTER_TABLE]).catch(() => {});
  await lab.exec(namespace, ["nft", "add", "table", "ip", COUNTER_TABLE]);
  await lab.exec(namespace, ["nft", "add", "counter", "ip", COUNTER_TABLE, "sent"]);
  await lab.exec(namespace, [
    "nft",
    "add chain ip",
    COUNTER_TABLE,
    "out { type filter hook output priority 0; policy accept; }",
  ]);
  await lab.exec(namespace, [
    "nft",
    "add rule ip",
    COUNTER_TABLE,
    "out",
    `udp sport ${port} counter name sent`,
  ]);
  return async () => {
    const out = await lab.exec(namespace, [
      "nft",
      "-j",
      "list",
      "counter",
      "ip",
      COUNTER_TABLE,
      "sent",
    ]);
    const parsed = JSON.parse(out) as { nftables: { counter?: { packets: number } }[] };
    return parsed.nftables.find((item) => item.counter)?.counter?.packets ?? -1;
  };
}

Deno.test({
  name:
    `natlab: birthday punching joins port-restricted x symmetric within the packet budget${skipReason}`,
  ignore: !support.ok,
  fn: async () => {
    await sweepStaleNamespaces();
    await using lab = await NatLab.create({
      hosts: [{ name: "easy", kind: "port-restricted" }, { name: "hard", kind: "symmetric" }],
    });
    const easyHost = lab.host("easy");
    const hardHost = lab.host("hard");
    const outcomes: { ok: boolean; elapsedMs?: number; sent: number; counted: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const key = crypto.getRandomValues(new Uint8Array(32)).toHex();
      const easy = tool(lab, easyHost.namespace, [
        "--role",
        "easy",
        "--key",
        key,
        "--peer-address",
        hardHost.publicAddress,
      ]);
      const ready = await easy.log.waitFor((e) => e.type === "ready", 60_000, "easy ready");
      const port = Number(ready.port);
      const counted = await countSent(lab, easyHost.namespace, port);
      // A port-restricted NAT keeps the port (the lab's self-test asserts it).
      const hard = tool(lab, hardHost.namespace, [
        "--role",
        "hard",
        "--key",
        key,
        "--peer",
        `${easyHost.publicAddress}:${port}`,
      ]);
      await hard.log.waitFor((e) => e.type === "ready", 60_000, "hard ready");
      await easy.stdin.write(new TextEncoder().encode("go\n"));
      const isResult = (e: JsonEvent) => e.type === "result" || e.type === "error";
      const [easyResult, hardResult] = await Promise.all([
        easy.log.waitFor(isResult, 60_000, "easy result"),
        hard.log.waitFor(isResult, 60_000, "hard result"),
      ]);
      const final = await easy.log.waitFor((e) => e.type === "final", 15_000, "easy final");
      await Promise.all([easy.child.status, hard.child.status]);
      const sent = Number(final.packetsSent);
      const onWire = await counted();
      // The nft counter sees exactly what the client says it sent, within the budget.
      assert.equal(onWire, sent, `nft counted ${onWire}, client says ${sent}`);
      assert.ok(sent <= DEFAULT_BUDGET.maxProbes + 4, `easy side sent ${sent}`);
      const ok = easyResult.ok === true && hardResult.ok === true;
      if (ok) {
        assert.equal(
          easyResult.remote,
          `${hardHost.publicAddress}:${String(easyResult.remote).split(":")[1]}`,
        );
        assert.equal(hardResult.remote, `${easyHost.publicAddress}:${port}`);
        assert.equal(hardResult.openSockets, 1, "the other sockets closed");
        // Pace: probes / elapsed time stays within the rate (plus the first one).
        const probes = Number(easyResult.probes);
        const elapsed = Number(easyResult.elapsedMs);
        assert.ok(
          probes <= 1 + (elapsed / 1000) * DEFAULT_BUDGET.ratePerSecond * 1.05,
          `${probes} probes in ${elapsed} ms`,
        );
      }
      outcomes.push({ ok, elapsedMs: Number(easyResult.elapsedMs), sent, counted: onWire });
    }
    const successes = outcomes.filter((o) => o.ok);
    const times = successes.map((o) => o.elapsedMs ?? 0).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(
      `birthday port-restricted x symmetric: ${successes.length}/${RUNS} direct, median ${
        Math.round(median ?? NaN)
      } ms, easy-side packets ${outcomes.map((o) => o.sent).join(",")}`,
    );
    assert.ok(
      successes.length >= Math.ceil(RUNS * 0.9) - (RUNS < 10 ? 1 : 0),
      JSON.stringify(outcomes),
    );
    assert.ok(median < 10_000, `median ${median} ms`);
  },
});
