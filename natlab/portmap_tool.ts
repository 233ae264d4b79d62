/**
 * A small program for lab tests of the port mapper: run inside a host's namespace, it finds the
 * default gateway in `/proc/net/route`, binds a UDP socket, maps it with
 * {@linkcode PortMapper} (the protocols named by `--protocol`, default all) and prints JSON
 * lines: `{"type":"started","mapping":…,"offer":…}`, `{"type":"mapping",…}` on each change,
 * `{"type":"recv","text":…,"from":…}` for each datagram. Commands on stdin: `send HOST:PORT TEXT`,
 * `unmap` (delete the mapping, keep the socket), `exit`.
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/system.ts";
import {
  localAddressToward,
  PORT_MAP_PROTOCOLS,
  PortMapper,
  type PortMapProtocol,
  readDefaultRoute,
} from "../p2p_client/portmap/mod.ts";

function print(event: Record<string, unknown>): void {
  console.log(JSON.stringify(event));
}

async function main(): Promise<void> {
  const at = Deno.args.indexOf("--protocol");
  const named = at >= 0 ? Deno.args[at + 1] : "all";
  const protocols: readonly PortMapProtocol[] = named === "all"
    ? PORT_MAP_PROTOCOLS
    : [named as PortMapProtocol];
  if (!protocols.every((p) => (PORT_MAP_PROTOCOLS as readonly string[]).includes(p))) {
    print({ type: "error", message: `unknown protocol ${named}` });
    return;
  }
  const route = await readDefaultRoute((path) => Deno.readTextFile(path));
  if (route === undefined) return print({ type: "error", message: "no default route" });
  const local = localAddressToward(route.gateway, Deno.networkInterfaces(), route.iface);
  if (local === undefined) return print({ type: "error", message: "no address toward gateway" });
  const socket = systemRuntime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 });
  const mapper = new PortMapper({
    runtime: systemRuntime,
    gateway: route.gateway,
    localAddress: local,
    internalPort: socket.addr.port,
    protocols,
    onChange: (mapping, reason) => print({ type: "mapping", mapping, reason }),
  });
  void (async () => {
    for (let i = 0; i < 10_000; i++) {
      try {
        const [bytes, from] = await socket.receive();
        print({
          type: "recv",
          text: new TextDecoder().decode(bytes.subarray(0, 200)),
          from: `${from.hostname}:${from.port}`,
        });
      } catch {
        return;
      }
    }
  })();
  const mapping = await mapper.start();
  print({
    type: "started",
    gateway: route.gateway,
    local,
    port: socket.addr.port,
    mapping,
    offer: mapper.offer,
  });
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let rest = "";
  for await (const chunk of lines) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const line of parts) {
      const send = /^send (\S+):(\d+) (\S+)$/.exec(line.trim());
      if (send) {
        await socket.send(new TextEncoder().encode(send[3]), {
          transport: "udp",
          hostname: send[1],
          port: Number(send[2]),
        }).catch(() => {});
        print({ type: "sent", text: send[3] });
      } else if (line.trim() === "unmap") {
        await mapper.close();
        print({ type: "unmapped" });
      } else if (line.trim() === "exit") {
        await mapper.close();
        socket.close();
        return;
      }
    }
  }
  await mapper.close();
  socket.close();
}

if (import.meta.main) {
  const lifetime = setTimeout(() => Deno.exit(3), 120_000);
  await main().catch((error) => print({ type: "error", message: String(error) }));
  clearTimeout(lifetime);
  Deno.exit(0);
}
