/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests that load
 * a page and read what it shows. Starts the browser with a throwaway profile on a free debugging
 * port, evaluates expressions in the page, and always kills the browser and removes the profile.
 *
 * @module
 */

/** Where Chromium is looked for. */
const CANDIDATES = ["chromium", "chromium-browser", "google-chrome"];

/** The path of an installed Chromium, or undefined. */
export async function findChromium(): Promise<string | undefined> {
  for (const name of CANDIDATES) {
    try {
      const out = await new Deno.Command("sh", {
        args: ["-c", `command -v ${name}`],
        stdout: "piped",
        stderr: "null",
      }).output();
      const path = new TextDecoder().decode(out.stdout).trim();
      if (out.success && path !== "") return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/**
 * One page in a headless Chromium.
 *
 * @example
 * ```ts ignore
 * const page = await HeadlessPage.open("http://127.0.0.1:9464/");
 * try {
 *   console.log(await page.evaluate("document.title"));
 * } finally {
 *   await page.close();
 * }
 * ```
 */
export class HeadlessPage {
  readonly #browser: Deno.ChildProcess;
  readonly #profile: string;
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, (reply: { result?: unknown; error?: unknown }) => void>();
  #nextId = 1;

  private constructor(browser: Deno.ChildProcess, profile: string, socket: WebSocket) {
    this.#browser = browser;
    this.#profile = profile;
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      const resolve = this.#pending.get(message.id);
      if (resolve !== undefined) {
        this.#pending.delete(message.id);
        resolve(message);
      }
    };
  }

  /** Starts Chromium on `url` and connects to the page (within `timeoutMs`). */
  static async open(url: string, timeoutMs = 60_000): Promise<HeadlessPage> {
    const executable = await findChromium();
    if (executable === undefined) throw new Error("chromium is not installed");
    const profile = await Deno.makeTempDir({ prefix: "chromium-test-" });
    const browser = new Deno.Command(executable, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        url,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const port = await debuggingPort(browser.stderr, timeoutMs);
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
          type: string;
          url: string;
          webSocketDebuggerUrl: string;
        }[];
        const page = targets.find((t) => t.type === "page" && t.url.startsWith(url));
        if (page !== undefined) {
          const socket = new WebSocket(page.webSocketDebuggerUrl);
          await new Promise<void>((resolve, reject) => {
            socket.onopen = () => resolve();
            socket.onerror = () => reject(new Error("cannot connect to the page"));
          });
          return new HeadlessPage(browser, profile, socket);
        }
        if (performance.now() > deadline) throw new Error(`no page for ${url}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } catch (error) {
      await stop(browser, profile);
      throw error;
    }
  }

  /** Evaluates `expression` in the page and returns its (JSON-serialisable) value. */
  async evaluate(expression: string): Promise<unknown> {
    const id = this.#nextId++;
    const reply = await new Promise<{ result?: unknown; error?: unknown }>((resolve) => {
      this.#pending.set(id, resolve);
      this.#socket.send(JSON.stringify({
        id,
        method: "Runtime.evaluate",
        params: { expression, returnByValue: true, awaitPromise: true },
      }));
    });
    if (reply.error !== undefined) throw new Error(JSON.stringify(reply.error));
    const result = reply.result as { result: { value?: unknown }; exceptionDetails?: unknown };
    if (result.exceptionDetails !== undefined) {
      throw new Error(`page threw: ${JSON.stringify(result.exceptionDetails)}`);
    }
    return result.result.value;
  }

  /**
   * Polls `expression` until it is truthy (returns it) or `timeoutMs` pass (throws with the last
   * value or error). An expression that throws (the page is still loading) counts as not yet.
   */
  async waitFor(expression: string, timeoutMs = 30_000): Promise<unknown> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      let value: unknown;
      try {
        value = await this.evaluate(expression);
      } catch (error) {
        value = error;
        if (performance.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (value) return value;
      if (performance.now() > deadline) throw new Error(`page never showed: ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Closes the browser and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    await stop(this.#browser, this.#profile);
  }
}

async function debuggingPort(
  stderr: ReadableStream<Uint8Array>,
  timeoutMs: number,
): Promise<number> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`chromium did not start: ${text}`)), timeoutMs);
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`chromium exited: ${text}`);
      text += value;
      const match = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) {
        // Keep draining stderr so the browser never blocks on a full pipe.
        (async () => {
          try {
            while (!(await reader.read()).done) { /* discard */ }
          } catch {
            // browser gone
          }
        })();
        return Number(match[1]);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

async function stop(browser: Deno.ChildProcess, profile: string): Promise<void> {
  try {
    browser.kill("SIGKILL");
  } catch {
    // already gone
  }
  await browser.status;
  await Deno.remove(profile, { recursive: true }).catch(() => {});
}
