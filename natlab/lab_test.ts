import assert from "node:assert/strict";
import { delayHolderBinary } from "./delay_holder.ts";
import { checkLabSupport } from "./environment.ts";
import { NatLab, OBSERVER_ADDRESSES, SERVER_ADDRESS, sweepStaleNamespaces } from "./lab.ts";
import {
  directPossible,
  natBehaviour,
  type NatKind,
  natRuleset,
  REMAP_OFFSET,
} from "./nat_kind.ts";
import { ProbeProcess } from "./probe_process.ts";
import type { JsonEvent } from "./json_lines.ts";

const support = await checkLabSupport();
const skipReason = support.ok ? "" : ` (SKIPPED: ${support.reason})`;

/** The delay holder needs gcc (`.ci/run` installs it) to be built. */
async function delayUnavailable(): Promise<string | undefined> {
  if (!support.ok) return support.reason;
  try {
    await delayHolderBinary();
    return undefined;
  } catch (error) {
    return `the delay holder cannot be built: ${String(error)}`;
  }
}
const delaySkip = await delayUnavailable();

Deno.test("natRuleset builds the cone kinds from dynamic maps and sets", () => {
  const full = natRuleset({ kind: "full-cone", publicAddress: "198.18.0.2", wan: "w", lan: "l" });
  assert.match(full, /map mapped \{/);
  assert.match(full, /flags dynamic,timeout/);
  assert.match(full, /dnat ip to udp dport map @mapped/);
  assert.doesNotMatch(full, /@contacted/);
  const restricted = natRuleset({
    kind: "restricted-cone",
    publicAddress: "198.18.0.2",
    wan: "w",
    lan: "l",
  });
  assert.match(restricted, /ip saddr \. udp dport @contacted/);
  const symmetric = natRuleset({
    kind: "symmetric",
    publicAddress: "198.18.0.2",
    wan: "w",
    lan: "l",
    lossPercent: 5,
  });
  assert.match(symmetric, /fully-random/);
  assert.match(symmetric, /numgen random mod 100 < 5 counter drop/);
  assert.doesNotMatch(symmetric, /dnat ip to/);
  const remapped = natRuleset({
    kind: "port-restricted",
    publicAddress: "198.18.0.2",
    wan: "w",
    lan: "l",
    remap: true,
  });
  assert.match(remapped, /40000 : 50000/);
  assert.throws(() =>
    natRuleset({ kind: "symmetric", publicAddress: "x", wan: "w", lan: "l", remap: true })
  );
  assert.throws(() =>
    natRuleset({ kind: "full-cone", publicAddress: "x", wan: "w", lan: "l", lossPercent: 100 })
  );
});

Deno.test("directPossible follows the hole-punching rules", () => {
  assert.equal(directPossible("symmetric", "symmetric"), false);
  assert.equal(directPossible("port-restricted", "symmetric"), false);
  assert.equal(directPossible("symmetric", "restricted-cone"), true);
  assert.equal(directPossible("symmetric", "none"), true);
  assert.equal(directPossible("port-restricted", "port-restricted"), true);
  assert.equal(directPossible("none", "udp-blocked"), false);
});

/** Polls `condition` every 25 ms until it holds or `timeoutMs` passes. */
async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const S1 = `${SERVER_ADDRESS}:3000`;
const S2 = `${SERVER_ADDRESS}:3001`;
const S3 = `${OBSERVER_ADDRESSES[0]}:3000`;
const TCP_OBSERVER = `${SERVER_ADDRESS}:3100`;

interface HostCase {
  name: string;
  kind: NatKind;
  remap?: boolean;
}

const CASES: HostCase[] = [
  { name: "none", kind: "none" },
  { name: "full", kind: "full-cone" },
  { name: "restricted", kind: "restricted-cone" },
  { name: "portr", kind: "port-restricted" },
  { name: "symmetric", kind: "symmetric" },
  { name: "blocked", kind: "udp-blocked" },
  { name: "full-remap", kind: "full-cone", remap: true },
  { name: "portr-remap", kind: "port-restricted", remap: true },
];

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

Deno.test({
  name: `natlab: every NAT kind maps and filters as specified${skipReason}`,
  ignore: !support.ok,
  fn: async (t) => {
    await sweepStaleNamespaces();
    await using lab = await NatLab.create({
      hosts: [
        ...CASES.map(({ name, kind, remap }) => ({ name, kind, remap })),
        { name: "lossy", kind: "full-cone", lossPercent: 50 },
        ...(delaySkip === undefined
          ? [{ name: "slow", kind: "port-restricted", delayMs: 100 }] as const
          : []),
      ],
    });
    await using observer = await ProbeProcess.start(lab, lab.publicNamespace, [
      "--udp",
      S1,
      "--udp",
      S2,
      "--udp",
      S3,
      "--tcp",
      TCP_OBSERVER,
      "--echo",
    ]);
    const fromObserver = (socket: number, text: string) => (e: JsonEvent) =>
      e.type === "recv" && e.socket === socket && e.text === text;

    for (const { name, kind, remap } of CASES) {
      await t.step(`${kind}${remap ? " with port remapping" : ""}`, async () => {
        const host = lab.host(name);
        const behaviour = natBehaviour(kind);
        await using inside = await ProbeProcess.start(lab, host.namespace, [
          "--udp",
          "0.0.0.0:0",
        ]);
        const localPort = portOf(inside.udp[0]);

        // TCP always gets out, translated to the NAT's public address.
        await inside.command(`tcp ${TCP_OBSERVER} hello-${name}`);
        const tcpReply = await inside.log.waitFor(
          (e) => e.type === "tcp-reply",
          15_000,
          "TCP reply",
        );
        assert.match(String(tcpReply.text), new RegExp(`^seen ${host.publicAddress}:\\d+$`));

        if (!behaviour.udp) {
          const before = await lab.natCounter(name, "udp_blocked");
          await inside.command(`send 0 ${S1} m1-${name}`);
          await pollUntil(
            async () => (await lab.natCounter(name, "udp_blocked")) > before,
            15_000,
            "the UDP drop counter",
          );
          assert.equal(observer.log.events.some(fromObserver(0, `m1-${name}`)), false);
          return;
        }

        // Mapping seen by the first observer, and the reply comes back through it.
        await inside.command(`send 0 ${S1} m1-${name}`);
        const m1 = String(
          (await observer.log.waitFor(fromObserver(0, `m1-${name}`), 15_000, "m1")).from,
        );
        await inside.log.waitFor(
          (e) => e.type === "recv" && e.text === `seen ${m1}`,
          15_000,
          "echo",
        );
        assert.equal(m1.split(":")[0], host.publicAddress);
        if (remap) assert.equal(portOf(m1), localPort + REMAP_OFFSET);
        else if (behaviour.endpointIndependentMapping) assert.equal(portOf(m1), localPort);

        // Filtering: S2 (same address as S1, other port) and S3 (other address) try the mapping.
        const unsolicitedBefore = host.natNamespace === undefined
          ? 0
          : await lab.natCounter(name, "unsolicited");
        await observer.command(`send 1 ${m1} f2-${name}`);
        await observer.command(`send 2 ${m1} f3-${name}`);
        const arrived = (text: string) =>
          inside.log.events.some((e) => e.type === "recv" && e.text === text);
        await pollUntil(
          async () => {
            const dropped = host.natNamespace === undefined
              ? 0
              : (await lab.natCounter(name, "unsolicited")) - unsolicitedBefore;
            const through = Number(arrived(`f2-${name}`)) + Number(arrived(`f3-${name}`));
            return dropped + through >= 2;
          },
          15_000,
          "both unsolicited datagrams to arrive or be dropped",
        );
        const expectS2 = behaviour.filtering === "open" || behaviour.filtering === "address";
        const expectS3 = behaviour.filtering === "open";
        assert.equal(arrived(`f2-${name}`), expectS2, "same address, other port");
        assert.equal(arrived(`f3-${name}`), expectS3, "other address");
        // The host's own counter sees what came from addresses other than the server host's.
        assert.equal(await lab.udpFromPeers(name), expectS3 ? 1 : 0);

        // Mapping toward the two other observers.
        await inside.command(`send 0 ${S2} m2-${name}`);
        await inside.command(`send 0 ${S3} m3-${name}`);
        const m2 = String(
          (await observer.log.waitFor(fromObserver(1, `m2-${name}`), 15_000, "m2")).from,
        );
        const m3 = String(
          (await observer.log.waitFor(fromObserver(2, `m3-${name}`), 15_000, "m3")).from,
        );
        if (behaviour.endpointIndependentMapping) {
          assert.equal(m2, m1);
          assert.equal(m3, m1);
        } else {
          assert.equal(new Set([m1, m2, m3]).size, 3, `distinct mappings: ${m1} ${m2} ${m3}`);
          for (const mapped of [m2, m3]) assert.equal(mapped.split(":")[0], host.publicAddress);
        }
      });
    }

    await t.step({
      name: `a delay on the public side holds every datagram, each way, keeping order${
        delaySkip === undefined ? "" : ` (SKIPPED: ${delaySkip})`
      }`,
      ignore: delaySkip !== undefined,
      fn: async () => {
        await using inside = await ProbeProcess.start(lab, lab.host("slow").namespace, [
          "--udp",
          "0.0.0.0:0",
        ]);
        const sentAt = performance.now();
        await inside.command(`send 0 ${S1} slow-first`);
        const echo = await inside.log.waitFor(
          (e) => e.type === "recv" && String(e.text).startsWith("seen "),
          15_000,
          "the delayed echo",
        );
        const echoAt = inside.log.timeOf((e) => e === echo) ?? performance.now();
        // 100 ms out through the NAT's public side and 100 ms back in.
        assert.ok(echoAt - sentAt >= 195, `round trip ${echoAt - sentAt} ms with 2 x 100 ms`);
        await inside.command(`burst 0 ${S1} 50 slow`);
        await pollUntil(
          () => observer.received(0).filter((e) => String(e.text).startsWith("slow-")).length >= 51,
          15_000,
          "the delayed burst",
        );
        const order = observer.received(0).map((e) => String(e.text)).filter((text) =>
          text.startsWith("slow-") && text !== "slow-first"
        );
        assert.deepEqual(order, Array.from({ length: 50 }, (_, i) => `slow-${i}`));
      },
    });

    await t.step("random loss on the public side drops some datagrams, not all", async () => {
      await using inside = await ProbeProcess.start(lab, lab.host("lossy").namespace, [
        "--udp",
        "0.0.0.0:0",
      ]);
      const count = 200;
      await inside.command(`burst 0 ${S1} ${count} loss`);
      await inside.log.waitFor((e) => e.type === "burst-sent", 15_000, "burst sent");
      // A later datagram arriving means every earlier one has arrived or been dropped.
      let barrier = 0;
      await pollUntil(
        async () => {
          await inside.command(`send 0 ${S1} barrier-${barrier++}`);
          return observer.log.events.some((e) =>
            e.type === "recv" && String(e.text).startsWith("barrier-")
          );
        },
        15_000,
        "a barrier datagram",
      );
      const received = observer.received(0).filter((e) => String(e.text).startsWith("loss-"));
      assert.ok(
        received.length >= 40 && received.length <= 160,
        `${received.length} of ${count} arrived at 50% loss`,
      );
    });
  },
});
