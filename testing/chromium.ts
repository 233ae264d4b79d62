/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for interop tests
 * that need a real WebRTC stack: launch (optionally inside a network namespace), evaluate a
 * script in a blank page and get its JSON result, close. Every wait has a deadline.
 *
 * @module
 */

/** Options of {@linkcode Chromium.launch}. */
export interface ChromiumOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** More command-line switches. */
  args?: string[];
  /** Deadline for the DevTools endpoint to appear (default 30 s). */
  startTimeoutMs?: number;
}

/** The Chromium binary on PATH, or undefined. */
export function findChromium(): string | undefined {
  for (const name of ["chromium", "chromium-browser"]) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (dir !== "" && Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * A running headless Chromium with one page.
 *
 * @example
 * ```ts
 * const browser = await Chromium.launch();
 * try {
 *   console.log(await browser.evaluate("1 + 1")); // 2
 * } finally {
 *   await browser.close();
 * }
 * ```
 */
export class Chromium {
  readonly #child: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  readonly #pending = new Map<number, (message: Record<string, unknown>) => void>();
  #session = "";
  #nextId = 1;
  #stderr = "";

  private constructor(child: Deno.ChildProcess, socket: WebSocket, profile: string) {
    this.#child = child;
    this.#socket = socket;
    this.#profile = profile;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      const resolve = this.#pending.get(message.id);
      if (resolve !== undefined) {
        this.#pending.delete(message.id);
        resolve(message);
      }
    };
  }

  /** Launches Chromium and opens a blank page. */
  static async launch(options: ChromiumOptions = {}): Promise<Chromium> {
    const binary = findChromium();
    if (binary === undefined) {
      throw new Error(
        "chromium not found on PATH: install the Debian package chromium (.ci/run does)",
      );
    }
    const profile = await Deno.makeTempDir({ prefix: "p2p-chromium-" });
    const chromeArgs = [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-dev-shm-usage",
      "--remote-debugging-port=0",
      "--remote-allow-origins=*",
      `--user-data-dir=${profile}`,
      ...(options.args ?? []),
      "about:blank",
    ];
    const command = options.netns === undefined
      ? new Deno.Command(binary, {
        args: chromeArgs,
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      })
      : new Deno.Command("ip", {
        args: ["netns", "exec", options.netns, binary, ...chromeArgs],
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      });
    const child = command.spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    let endpoint: string | undefined;
    try {
      while (endpoint === undefined) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no DevTools endpoint within the deadline:\n${text}`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<{ done: true; value: undefined }>((resolve) => {
            timer = setTimeout(() => resolve({ done: true, value: undefined }), left);
          }),
        ]);
        clearTimeout(timer);
        if (chunk.done) throw new Error(`chromium exited or stalled before listening:\n${text}`);
        text += chunk.value;
        endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1];
      }
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw error;
    }
    // Keep draining stderr so the browser never blocks on a full pipe.
    (async () => {
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (chunk.done) return;
      }
    })();
    const socket = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
    });
    const browser = new Chromium(child, socket, profile);
    browser.#stderr = text;
    const targets = await browser.#call("Target.getTargets", {}) as {
      targetInfos: { targetId: string; type: string }[];
    };
    const page = targets.targetInfos.find((t) => t.type === "page");
    if (page === undefined) throw new Error("no page target");
    const attached = await browser.#call("Target.attachToTarget", {
      targetId: page.targetId,
      flatten: true,
    }) as { sessionId: string };
    browser.#session = attached.sessionId;
    return browser;
  }

  #call(method: string, params: Record<string, unknown>, timeoutMs = 30_000): Promise<unknown> {
    const id = this.#nextId++;
    const message: Record<string, unknown> = { id, method, params };
    if (this.#session !== "") message.sessionId = this.#session;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (answer) => {
        clearTimeout(timer);
        if (answer.error !== undefined) {
          reject(new Error(`${method}: ${JSON.stringify(answer.error)}`));
        } else resolve(answer.result);
      });
      this.#socket.send(JSON.stringify(message));
    });
  }

  /**
   * Evaluates `expression` in the page (promises awaited) and returns its value as JSON.
   *
   * @example
   * ```ts
   * const browser = await Chromium.launch();
   * console.log(await browser.evaluate("Promise.resolve([1, 2])")); // [1, 2]
   * await browser.close();
   * ```
   */
  async evaluate<T = unknown>(expression: string, timeoutMs = 60_000): Promise<T> {
    const result = await this.#call("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }, timeoutMs) as {
      result: { value: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (result.exceptionDetails !== undefined) {
      throw new Error(
        `page script failed: ${
          result.exceptionDetails.exception?.description ?? result.exceptionDetails.text
        }`,
      );
    }
    return result.result.value;
  }

  /** Closes the browser and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // gone
    }
    await this.#child.status;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
