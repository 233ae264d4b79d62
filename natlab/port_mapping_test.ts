import assert from "node:assert/strict";
import { checkLabSupport } from "./environment.ts";
import { EventLog, type JsonEvent } from "./json_lines.ts";
import { NatLab, OBSERVER_ADDRESSES, SERVER_ADDRESS, sweepStaleNamespaces } from "./lab.ts";
import {
  MINIUPNPD_HTTP_PORT,
  miniupnpdConfig,
  miniupnpdRules,
  miniupnpdRuleset,
  RFC5780_ADDRESSES,
  stunAnswersRule,
} from "./port_mapping.ts";
import { ProbeProcess } from "./probe_process.ts";
import { missingProgram } from "../testing/find_program.ts";

const support = await checkLabSupport();

/** miniupnpd, coturn and the reference clients must be installed (`.ci/run` does). */
function toolsMissing(): string | undefined {
  if (!support.ok) return support.reason;
  return missingProgram(["miniupnpd", "turnserver", "natpmpc", "upnpc"]);
}
const skip = toolsMissing();
const skipReason = skip === undefined ? "" : ` (SKIPPED: ${skip})`;

Deno.test("port-mapping router config and rules", () => {
  assert.deepEqual(RFC5780_ADDRESSES, [SERVER_ADDRESS, OBSERVER_ADDRESSES[0]]);
  const config = miniupnpdConfig({
    wan: "wan",
    lan: "lan",
    lanNetwork: "10.0.1.0/24",
    uuid: "00000000-0000-4000-8000-000000000001",
  });
  assert.match(config, /^ext_ifname=wan$/m);
  assert.match(config, /^enable_natpmp=yes$/m);
  assert.match(config, /^enable_upnp=yes$/m);
  assert.match(config, /^ext_perform_stun=yes$/m);
  assert.match(config, /^allow 1024-65535 10\.0\.1\.0\/24 1024-65535$/m);
  assert.match(miniupnpdRuleset(), /chain prerouting_miniupnpd \{/);
  assert.equal(stunAnswersRule("wan").at(-1), "accept");
});

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes. */
async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const TOOL = new URL("./portmap_tool.ts", import.meta.url).pathname;

/** The port-mapping tool running in a lab host's namespace. */
async function startTool(lab: NatLab, namespace: string, protocol: string) {
  const child = lab.spawn(namespace, [
    Deno.execPath(),
    "run",
    "--no-prompt",
    // Deno grants /proc/net/route (the default gateway) only with all permissions.
    "--allow-all",
    TOOL,
    "--protocol",
    protocol,
  ], { stderr: "null" });
  const log = new EventLog(child.stdout);
  const stdin = child.stdin.getWriter();
  const started = await log.waitFor(
    (e) => e.type === "started" || e.type === "error",
    60_000,
    "the port-mapping tool",
  );
  return {
    log,
    started,
    command: (line: string) => stdin.write(new TextEncoder().encode(line + "\n")),
    close: async () => {
      await stdin.write(new TextEncoder().encode("exit\n")).catch(() => {});
      await stdin.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
      await log.done;
    },
  };
}

Deno.test({
  name:
    `natlab: miniupnpd maps ports with PCP, NAT-PMP and UPnP on symmetric and port-restricted NATs${skipReason}`,
  ignore: skip !== undefined,
  fn: async (t) => {
    await sweepStaleNamespaces();
    await using lab = await NatLab.create({
      hosts: [
        { name: "sym", kind: "symmetric", portMapping: true },
        { name: "portr", kind: "port-restricted", portMapping: true },
      ],
    });
    await using observer = await ProbeProcess.start(lab, lab.publicNamespace, [
      "--udp",
      `${OBSERVER_ADDRESSES[1]}:3300`,
      "--udp",
      `${OBSERVER_ADDRESSES[1]}:3301`,
    ]);
    for (const hostName of ["sym", "portr"]) {
      const host = lab.host(hostName);
      const natNs = host.natNamespace!;
      for (const protocol of ["pcp", "nat-pmp", "upnp"]) {
        await t.step(`${host.kind}: our client maps with ${protocol}`, async () => {
          const tool = await startTool(lab, host.namespace, protocol);
          try {
            assert.equal(tool.started.type, "started", JSON.stringify(tool.started));
            const mapping = tool.started.mapping as Record<string, unknown> | undefined;
            assert.ok(
              mapping,
              `no mapping: ${JSON.stringify(tool.log.events)}\n${
                lab.routerLog(hostName).join("\n")
              }`,
            );
            assert.equal(mapping.protocol, protocol);
            assert.equal(mapping.externalAddress, host.publicAddress);
            const offer = tool.started.offer as Record<string, boolean>;
            assert.equal(offer[protocol === "nat-pmp" ? "natPmp" : protocol], true);
            const external = `${mapping.externalAddress}:${mapping.externalPort}`;
            assert.match(
              await miniupnpdRules(lab, natNs),
              new RegExp(`dport ${mapping.externalPort}\\b`),
            );

            // A datagram from the public segment to the mapped address reaches the socket.
            const text = `via-${protocol}-${hostName}`;
            await pollUntil(
              async () => {
                await observer.command(`send 0 ${external} ${text}`);
                await new Promise((resolve) => setTimeout(resolve, 100));
                return tool.log.events.some((e: JsonEvent) => e.type === "recv" && e.text === text);
              },
              15_000,
              "the datagram through the mapping",
            );

            // Deleted: the rule is gone and a datagram of a new flow (another source port: the
            // first flow's conntrack entry outlives the rule) is dropped at the router.
            await tool.command("unmap");
            await tool.log.waitFor((e) => e.type === "unmapped", 15_000, "unmap");
            assert.doesNotMatch(
              await miniupnpdRules(lab, natNs),
              new RegExp(`dport ${mapping.externalPort}\\b`),
            );
            const before = await lab.natCounter(hostName, "unsolicited");
            await observer.command(`send 1 ${external} after-${text}`);
            await pollUntil(
              async () => (await lab.natCounter(hostName, "unsolicited")) > before,
              15_000,
              "the router to drop the datagram to the deleted mapping",
            );
            assert.equal(
              tool.log.events.some((e: JsonEvent) =>
                e.type === "recv" && e.text === `after-${text}`
              ),
              false,
            );
          } finally {
            await tool.close();
          }
        });
      }

      if (host.kind === "symmetric") {
        await t.step(
          "symmetric with a mapping: answers leave through the mapping only if the peer sent first",
          async () => {
            for (const order of ["peer-first", "mapped-first"] as const) {
              const tool = await startTool(lab, host.namespace, "pcp");
              await using peer = await ProbeProcess.start(lab, lab.host("portr").namespace, [
                "--udp",
                "0.0.0.0:0",
              ]);
              try {
                const mapping = tool.started.mapping as {
                  externalAddress: string;
                  externalPort: number;
                };
                const external = `${mapping.externalAddress}:${mapping.externalPort}`;
                const peerPublic = `${lab.host("portr").publicAddress}:${
                  peer.udp[0].split(":").at(-1)
                }`;
                if (order === "mapped-first") {
                  await tool.command(`send ${peerPublic} first-${order}`);
                  await tool.log.waitFor((e) => e.type === "sent", 15_000, "sent");
                }
                // The peer's packets reach the socket through the mapping either way.
                await pollUntil(
                  async () => {
                    await peer.command(`send 0 ${external} in-${order}`);
                    await new Promise((resolve) => setTimeout(resolve, 100));
                    return tool.log.events.some((e) =>
                      e.type === "recv" && e.text === `in-${order}`
                    );
                  },
                  15_000,
                  "the peer's datagram through the mapping",
                );
                // The answer: from the mapped address when the peer sent first; from another
                // port (the earlier flow's), dropped by the peer's NAT, when the mapped side did.
                const unsolicited = await lab.natCounter("portr", "unsolicited");
                await tool.command(`send ${peerPublic} answer-${order}`);
                if (order === "peer-first") {
                  const answer = await peer.log.waitFor(
                    (e) => e.type === "recv" && e.text === `answer-${order}`,
                    15_000,
                    "the answer",
                  );
                  assert.equal(answer.from, external);
                } else {
                  await pollUntil(
                    async () => (await lab.natCounter("portr", "unsolicited")) > unsolicited,
                    15_000,
                    "the peer's NAT to drop the answer from another port",
                  );
                  assert.equal(peer.received(0).some((e) => e.text === `answer-${order}`), false);
                }
              } finally {
                await tool.close();
              }
            }
          },
        );
      }

      await t.step(
        `${host.kind}: the reference clients natpmpc and upnpc map and unmap`,
        async () => {
          const gateway = host.address.replace(/\.2$/, ".1");
          const natpmp = await lab.exec(host.namespace, [
            "timeout",
            "20",
            "natpmpc",
            "-g",
            gateway,
            "-a",
            "41001",
            "41001",
            "udp",
            "120",
          ]);
          assert.match(
            natpmp,
            new RegExp(`Public IP address : ${host.publicAddress.replaceAll(".", "\\.")}`),
          );
          assert.match(natpmp, /Mapped public port 41001 protocol UDP to local port 41001/);
          assert.match(await miniupnpdRules(lab, natNs), /dport 41001\b/);
          await lab.exec(host.namespace, [
            "timeout",
            "20",
            "natpmpc",
            "-g",
            gateway,
            "-a",
            "41001",
            "41001",
            "udp",
            "0",
          ]);
          assert.doesNotMatch(await miniupnpdRules(lab, natNs), /dport 41001\b/);

          const upnp = await lab.exec(host.namespace, [
            "timeout",
            "20",
            "upnpc",
            // miniupnpc's discovery skips gateways whose external address is reserved (the
            // lab's 198.18.0.0/15 is), so the description URL is given.
            "-u",
            `http://${gateway}:${MINIUPNPD_HTTP_PORT}/rootDesc.xml`,
            "-a",
            host.address,
            "41002",
            "41002",
            "UDP",
          ]);
          assert.match(
            upnp,
            new RegExp(`ExternalIPAddress = ${host.publicAddress.replaceAll(".", "\\.")}`),
          );
          assert.match(upnp, /is redirected to internal/);
          assert.match(await miniupnpdRules(lab, natNs), /dport 41002\b/);
          await lab.exec(host.namespace, [
            "timeout",
            "20",
            "upnpc",
            "-u",
            `http://${gateway}:${MINIUPNPD_HTTP_PORT}/rootDesc.xml`,
            "-d",
            "41002",
            "UDP",
          ]);
          assert.doesNotMatch(await miniupnpdRules(lab, natNs), /dport 41002\b/);
        },
      );
    }
  },
});

Deno.test({
  name:
    `natlab: a mapping behind a symmetric NAT gives a two-way path with every peer kind but udp-blocked${skipReason}`,
  ignore: skip !== undefined,
  fn: async (t) => {
    await sweepStaleNamespaces();
    const peers = [
      { name: "none", kind: "none" },
      { name: "full", kind: "full-cone" },
      { name: "restricted", kind: "restricted-cone" },
      { name: "portr", kind: "port-restricted" },
      { name: "symmetric", kind: "symmetric" },
      { name: "blocked", kind: "udp-blocked" },
    ] as const;
    await using lab = await NatLab.create({
      hosts: [{ name: "mapped", kind: "symmetric", portMapping: true }, ...peers],
    });
    const tool = await startTool(lab, lab.host("mapped").namespace, "all");
    try {
      const mapping = tool.started.mapping as { externalAddress: string; externalPort: number };
      assert.ok(mapping, JSON.stringify(tool.started));
      const external = `${mapping.externalAddress}:${mapping.externalPort}`;
      for (const { name, kind } of peers) {
        await t.step(`${kind} peer`, async () => {
          await using peer = await ProbeProcess.start(lab, lab.host(name).namespace, [
            "--udp",
            "0.0.0.0:0",
          ]);
          if (kind === "udp-blocked") {
            const before = await lab.natCounter(name, "udp_blocked");
            await peer.command(`send 0 ${external} hello-${name}`);
            await pollUntil(
              async () => (await lab.natCounter(name, "udp_blocked")) > before,
              15_000,
              "the peer's NAT to drop UDP",
            );
            assert.equal(
              tool.log.events.some((e: JsonEvent) => e.text === `hello-${name}`),
              false,
            );
            return;
          }
          // The peer sends first (planDirect's order); the mapped side answers the sender.
          await pollUntil(
            async () => {
              await peer.command(`send 0 ${external} hello-${name}`);
              await new Promise((resolve) => setTimeout(resolve, 100));
              return tool.log.events.some((e: JsonEvent) =>
                e.type === "recv" && e.text === `hello-${name}`
              );
            },
            15_000,
            "the peer's datagram through the mapping",
          );
          const hello = tool.log.events.find((e: JsonEvent) =>
            e.type === "recv" && e.text === `hello-${name}`
          )!;
          assert.equal(String(hello.from).split(":")[0], lab.host(name).publicAddress);
          await tool.command(`send ${hello.from} answer-${name}`);
          const answer = await peer.log.waitFor(
            (e) => e.type === "recv" && e.text === `answer-${name}`,
            15_000,
            "the answer",
          );
          assert.equal(answer.from, external, "the answer comes from the mapped address");
        });
      }
    } finally {
      await tool.close();
    }
  },
});
