/**
 * Runs the client's NAT behaviour discovery ({@linkcode probeNat}) inside a lab namespace and
 * prints the report as one JSON line. Arguments: STUN servers as `host:port` (the first offering
 * OTHER-ADDRESS runs RFC 5780), `--port-mapping` to also probe the gateway (needs
 * `--allow-all` for /proc/net/route).
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/system.ts";
import { probeNat } from "../p2p_client/nat_probe/mod.ts";
import { localAddressToward, PortMapper, readDefaultRoute } from "../p2p_client/portmap/mod.ts";

if (import.meta.main) {
  const servers = Deno.args.filter((a) => !a.startsWith("--")).map((text) => {
    const at = text.lastIndexOf(":");
    return {
      hostname: text.slice(0, at).replace(/^\[|\]$/g, ""),
      port: Number(text.slice(at + 1)),
    };
  });
  const interfaces = Deno.networkInterfaces();
  const report = await probeNat({
    runtime: systemRuntime,
    servers,
    localAddresses: interfaces.map((i) => i.address),
    portMappingProbe: Deno.args.includes("--port-mapping")
      ? async () => {
        const route = await readDefaultRoute((path) => Deno.readTextFile(path));
        if (route === undefined) return undefined;
        const local = localAddressToward(route.gateway, interfaces, route.iface);
        if (local === undefined) return undefined;
        const mapper = new PortMapper({
          runtime: systemRuntime,
          gateway: route.gateway,
          localAddress: local,
          internalPort: 1,
        });
        try {
          return await mapper.probe();
        } finally {
          await mapper.close();
        }
      }
      : undefined,
  });
  console.log(JSON.stringify({ type: "report", report }));
}
