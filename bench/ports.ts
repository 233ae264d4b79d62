/**
 * Free loopback ports for benchmark servers.
 *
 * @module
 */

/**
 * Returns a loopback port that is free for both TCP and UDP at the time of the call.
 *
 * @example
 * ```ts
 * const port = freePort();
 * console.log(port > 0);
 * ```
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (tcp.addr as Deno.NetAddr).port;
    try {
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
      udp.close();
      return port;
    } catch {
      // taken on UDP: try another
    } finally {
      tcp.close();
    }
  }
  throw new Error("no free loopback port found in 50 attempts");
}
