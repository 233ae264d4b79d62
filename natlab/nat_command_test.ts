import assert from "node:assert/strict";
import { checkLabSupport } from "./environment.ts";
import { NatLab, OBSERVER_ADDRESSES, SERVER_ADDRESS, sweepStaleNamespaces } from "./lab.ts";
import { LabProcess } from "./lab_process.ts";
import { programRunArgs } from "../testing/programs.ts";
import { missingProgram } from "../testing/find_program.ts";
import type { NatReport } from "../p2p_client/nat_probe/mod.ts";

const support = await checkLabSupport();

function toolsMissing(): string | undefined {
  if (!support.ok) return support.reason;
  return missingProgram(["miniupnpd", "turnserver"]);
}
const skip = toolsMissing();
const skipReason = skip === undefined ? "" : ` (SKIPPED: ${skip})`;

const TCP_PORT = 3700;
const STUN_PORT = 3778;

Deno.test({
  name:
    `natlab: the client's nat command reports its NAT and the gateway's port mapping${skipReason}`,
  ignore: skip !== undefined,
  fn: async () => {
    await sweepStaleNamespaces();
    await using lab = await NatLab.create({
      hosts: [
        { name: "sym", kind: "symmetric", portMapping: true },
        { name: "portr", kind: "port-restricted" },
      ],
    });
    await using server = LabProcess.start(lab, lab.publicNamespace, [
      Deno.execPath(),
      ...programRunArgs("stun_server", [
        "--host",
        SERVER_ADDRESS,
        "--alt-host",
        OBSERVER_ADDRESSES[0],
        "--tcp-port",
        String(TCP_PORT),
        "--stun-port",
        String(STUN_PORT),
        "--alt-port",
        String(STUN_PORT + 1),
      ]),
    ]);
    const deadline = Date.now() + 60_000;
    while (
      (await lab.exec(lab.publicNamespace, ["ss", "-Hltn", `sport = :${TCP_PORT}`])).trim() === ""
    ) {
      if (Date.now() > deadline) throw new Error(`server did not start: ${server.stderrTail}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const expected = {
      sym: { mapping: "address-and-port-dependent", portMapping: true },
      portr: { mapping: "endpoint-independent", portMapping: false },
    } as const;
    await Promise.all((["sym", "portr"] as const).map(async (name) => {
      await using client = LabProcess.start(lab, lab.host(name).namespace, [
        Deno.execPath(),
        ...programRunArgs("p2p_client", [
          "--ephemeral",
          "--json",
          "--server",
          `${SERVER_ADDRESS}:${TCP_PORT}`,
        ]),
      ]);
      await client.log.waitFor((e) => e.type === "registered", 60_000, `${name} registered`);
      await client.command("nat");
      const event = await client.log.waitFor((e) => e.type === "nat", 30_000, `${name} nat`);
      const report = event.report as NatReport;
      const where = `${name}: ${JSON.stringify(report)}`;
      assert.equal(report.udpReachable, true, where);
      assert.equal(report.rfc5780, true, where);
      assert.equal(report.behindNat, true, where);
      assert.equal(report.mapping, expected[name].mapping, where);
      assert.equal(report.filtering, "address-and-port-dependent", where);
      assert.equal(report.ipv4?.split(":")[0], lab.host(name).publicAddress, where);
      assert.equal(report.latency[0].server, `${SERVER_ADDRESS}:${STUN_PORT}`, where);
      assert.ok((report.latency[0].rttMs ?? -1) >= 0, where);
      const offer = report.portMapping;
      assert.equal(offer?.pcp, expected[name].portMapping, where);
      assert.equal(offer?.natPmp, expected[name].portMapping, where);
      assert.equal(offer?.upnp, expected[name].portMapping, where);
    }));
  },
});
