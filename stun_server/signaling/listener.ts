/**
 * The accept loop: takes connections from a listener and hands each to `accept`. Accept failures
 * (out of file descriptors and the like) are logged and retried after a short, growing pause on
 * the runtime's clock; closing the listener ends the loop.
 *
 * @module
 */
import {
  type Runtime,
  sleep,
  type StreamConn,
  type StreamListener,
} from "../../shared/runtime/mod.ts";
import type { ServerLog } from "../server_log.ts";

/**
 * Accepts until the listener is closed or `stopped()` turns true.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * import { getLogger } from "@logtape/logtape";
 * import { ServerLog } from "../server_log.ts";
 * const listener = systemRuntime.net.listen({ hostname: "127.0.0.1", port: 0 });
 * const done = acceptLoop(listener, (conn) => conn.close(), {
 *   runtime: systemRuntime,
 *   log: new ServerLog(getLogger(["example"]), () => 0),
 *   stopped: () => false,
 * });
 * listener.close();
 * await done;
 * ```
 */
export async function acceptLoop(
  listener: StreamListener,
  accept: (conn: StreamConn) => void,
  context: { runtime: Runtime; log: ServerLog; stopped: () => boolean },
): Promise<void> {
  let failures = 0;
  while (!context.stopped()) {
    let conn: StreamConn;
    try {
      conn = await listener.accept();
      failures = 0;
    } catch (error) {
      if (context.stopped() || error instanceof Deno.errors.BadResource) return;
      failures++;
      context.log.warn("accepting a connection failed: {error}", { error: String(error) });
      await sleep(context.runtime, Math.min(1000, 10 * failures));
      continue;
    }
    try {
      accept(conn);
    } catch (error) {
      context.log.error("admitting a connection failed: {error}", { error: String(error) });
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }
}
