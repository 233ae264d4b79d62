/**
 * Test helper: scenarios the end-to-end tests share, on top of {@linkcode ClientProcess}.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientProcess, JsonEvent } from "../../testing/client_process.ts";

/**
 * A predicate for the `peer` event that reports `peer` in `state`.
 *
 * @example
 * ```ts
 * import type { ClientProcess } from "../../testing/client_process.ts";
 * import { peerStateIs } from "./scenarios.ts";
 * declare const a: ClientProcess;
 * declare const b: ClientProcess;
 * await a.waitFor(peerStateIs(b.id, "direct"), 60_000, "direct path");
 * ```
 */
export function peerStateIs(peer: string, state: string): (event: JsonEvent) => boolean {
  return (e) => e.type === "peer" && e.peer === peer && e.state === state;
}

/**
 * The texts `client` received from `from`, in arrival order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClientProcess } from "../../testing/client_process.ts";
 * import { messageTexts } from "./scenarios.ts";
 * declare const a: ClientProcess;
 * declare const b: ClientProcess;
 * assert.deepEqual(messageTexts(b, a.id), ["hello"]);
 * ```
 */
export function messageTexts(client: ClientProcess, from: string): string[] {
  return client.of("message").filter((e) => e.from === from).map((e) => e.text as string);
}

/**
 * Connects every pair of `clients`, waits until each sees each other in `state`, sends one message
 * `i->j` from every client to every other, and asserts each arrived exactly once.
 *
 * @example
 * ```ts
 * import type { ClientProcess } from "../../testing/client_process.ts";
 * import { exchangeBetweenAll } from "./scenarios.ts";
 * declare const clients: ClientProcess[];
 * await exchangeBetweenAll(clients, "relayed", 60_000);
 * ```
 */
export async function exchangeBetweenAll(
  clients: readonly ClientProcess[],
  state: string,
  waitMs: number,
): Promise<void> {
  for (let i = 0; i < clients.length; i++) {
    for (let j = i + 1; j < clients.length; j++) {
      await clients[i].command(`connect ${clients[j].id}`);
    }
  }
  for (const a of clients) {
    for (const b of clients) {
      if (a !== b) await a.waitFor(peerStateIs(b.id, state), waitMs, `${state} path`);
    }
  }
  for (const [i, a] of clients.entries()) {
    for (const [j, b] of clients.entries()) {
      if (i !== j) await a.command(`send ${b.id} ${i}->${j}`);
    }
  }
  const others = clients.length - 1;
  for (const [j, b] of clients.entries()) {
    await b.waitForCount((e) => e.type === "message", others, waitMs, `messages at ${j}`);
    for (const [i, a] of clients.entries()) {
      if (i !== j) assert.deepEqual(messageTexts(b, a.id), [`${i}->${j}`]);
    }
  }
}
