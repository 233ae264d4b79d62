/**
 * Runs the client's NAT diagnosis ({@linkcode diagnoseNat}, what the `nat` command will run)
 * inside a lab namespace and prints the report as one JSON line. Arguments: STUN servers as
 * `host:port` (the first offering OTHER-ADDRESS runs RFC 5780). Needs `--allow-all` to read
 * the gateway from /proc/net/route.
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/system.ts";
import { diagnoseNat } from "../p2p_client/nat_probe/mod.ts";

if (import.meta.main) {
  const servers = Deno.args.filter((a) => !a.startsWith("--")).map((text) => {
    const at = text.lastIndexOf(":");
    return {
      hostname: text.slice(0, at).replace(/^\[|\]$/g, ""),
      port: Number(text.slice(at + 1)),
    };
  });
  const report = await diagnoseNat({
    runtime: systemRuntime,
    servers,
    interfaces: Deno.networkInterfaces(),
    readFile: (path) => Deno.readTextFile(path),
  });
  console.log(JSON.stringify({ type: "report", report }));
}
