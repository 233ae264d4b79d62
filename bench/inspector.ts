/**
 * A minimal V8 inspector client (Chrome DevTools Protocol over WebSocket) for reading a Deno
 * server's heap from outside: forced garbage collection, heap usage, and a heap snapshot summed
 * by constructor. The server must run with `--inspect=127.0.0.1:PORT`.
 *
 * @module
 */

/** Self size summed over the heap objects of one kind. */
export interface HeapGroup {
  /** Constructor name for objects, closures and native objects; `(type)` for the rest. */
  name: string;
  /** Objects in the group. */
  count: number;
  /** Sum of their self sizes, bytes. */
  bytes: number;
}

/** The parts of a V8 `.heapsnapshot` used here. */
export interface HeapSnapshot {
  /** Field layout. */
  snapshot: { meta: { node_fields: string[]; node_types: unknown[] } };
  /** Flat node array, `node_fields.length` numbers per node. */
  nodes: number[];
  /** String table. */
  strings: string[];
}

/**
 * Sums a heap snapshot's nodes by constructor (objects, closures, native objects) or by type
 * (strings, arrays, code, ...) and returns the largest groups.
 *
 * @example
 * ```ts
 * const snapshot = {
 *   snapshot: { meta: { node_fields: ["type", "name", "id", "self_size", "edge_count"], node_types: [["hidden", "array", "string", "object"]] } },
 *   nodes: [3, 0, 1, 40, 0, 3, 0, 3, 40, 0, 2, 1, 5, 16, 0],
 *   strings: ["Session", "hello"],
 * };
 * console.log(summarizeHeapSnapshot(snapshot, 5)[0]); // { name: "Session", count: 2, bytes: 80 }
 * ```
 */
export function summarizeHeapSnapshot(snapshot: HeapSnapshot, top = 15): HeapGroup[] {
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  if (typeAt < 0 || nameAt < 0 || sizeAt < 0 || !Array.isArray(types)) {
    throw new SyntaxError("heap snapshot lacks type, name or self_size");
  }
  const groups = new Map<string, HeapGroup>();
  for (let i = 0; i + width <= snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]] ?? "unknown";
    const named = type === "object" || type === "closure" || type === "native";
    const name = named ? snapshot.strings[snapshot.nodes[i + nameAt]] ?? "?" : `(${type})`;
    const group = groups.get(name) ?? { name, count: 0, bytes: 0 };
    group.count++;
    group.bytes += snapshot.nodes[i + sizeAt];
    groups.set(name, group);
  }
  return [...groups.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top);
}

/** An open inspector session. */
export class InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, (message: Record<string, unknown>) => void>();
  #nextId = 0;
  #chunks: string[] = [];

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (typeof message.id === "number") {
        this.#pending.get(message.id)?.(message);
        this.#pending.delete(message.id);
      } else if (message.method === "HeapProfiler.addHeapSnapshotChunk") {
        this.#chunks.push(message.params.chunk);
      }
    };
  }

  /**
   * Connects to the inspector listening on `127.0.0.1:port`, retrying until `timeoutMs`.
   *
   * @example
   * ```ts
   * // const session = await InspectorSession.connect(9229, 10_000);
   * ```
   */
  static async connect(port: number, timeoutMs: number): Promise<InspectorSession> {
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    while (url === undefined) {
      try {
        const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
        url = list?.[0]?.webSocketDebuggerUrl;
      } catch {
        // not listening yet
      }
      if (url === undefined) {
        if (Date.now() > deadline) throw new Error(`no inspector on port ${port}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot open ${url}`));
    });
    return new InspectorSession(socket);
  }

  /**
   * Calls a protocol method and returns its `result`; throws on a protocol error or after
   * `timeoutMs`.
   *
   * @example
   * ```ts
   * // const usage = await session.call("Runtime.getHeapUsage");
   * ```
   */
  call(method: string, params: Record<string, unknown> = {}, timeoutMs = 120_000) {
    const id = ++this.#nextId;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.error !== undefined) {
          reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        } else resolve((message.result ?? {}) as Record<string, unknown>);
      });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /**
   * Forces a full garbage collection and returns the JS heap's used bytes.
   *
   * @example
   * ```ts
   * // const used = await session.collectAndMeasure();
   * ```
   */
  async collectAndMeasure(): Promise<number> {
    await this.call("HeapProfiler.collectGarbage");
    const usage = await this.call("Runtime.getHeapUsage");
    return Number(usage.usedSize);
  }

  /**
   * Takes a heap snapshot and returns it summed by constructor.
   *
   * @example
   * ```ts
   * // const groups = await session.heapByConstructor(15);
   * ```
   */
  async heapByConstructor(top: number): Promise<HeapGroup[]> {
    this.#chunks = [];
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 300_000);
    const snapshot = JSON.parse(this.#chunks.join("")) as HeapSnapshot;
    this.#chunks = [];
    return summarizeHeapSnapshot(snapshot, top);
  }

  /**
   * Closes the session.
   *
   * @example
   * ```ts
   * // await session.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => {
      this.#socket.onclose = () => resolve();
    });
    this.#socket.close();
    await closed;
  }
}
