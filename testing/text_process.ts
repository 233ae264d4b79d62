/**
 * Test helpers for the client as a person uses it: a program whose stdout is collected as text,
 * run through a pipe or inside a pseudo-terminal (util-linux `script`), and a minimal terminal
 * screen model (carriage return, erase to end of line, cursor right, newline) to assert what a
 * user would see on the screen.
 *
 * @module
 */
import { programRunArgs } from "./programs.ts";

/** A running program with its output collected. */
export interface TextProcess {
  /** Raw stdout (in a pty, the terminal output). */
  readonly out: () => string;
  /** Stderr. */
  readonly err: () => string;
  /** Writes to stdin (in a pty: what the user types). */
  write(text: string): Promise<void>;
  /** Closes stdin. */
  closeStdin(): Promise<void>;
  /** Stops reading stdout and closes it (as `| head -1` does once it has its line). */
  closeStdout(): Promise<void>;
  /** Sends a signal to the process (the `script` wrapper in a pty). */
  signal(signal: Deno.Signal): void;
  /** Waits for exit (at most `timeoutMs`); throws with the output on timeout. */
  exit(timeoutMs?: number): Promise<number>;
  /** Kills and reaps (for `finally`). */
  dispose(): Promise<void>;
}

/** The `deno` command line of the client with its real runtime flags. */
export function clientCommand(args: string[]): [string, string[]] {
  return [Deno.execPath(), programRunArgs("p2p_client", args)];
}

/** Whether util-linux `script` (for pty tests) is available. */
export async function hasScript(): Promise<boolean> {
  try {
    await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch {
    return false;
  }
}

/** Starts the client with `args`, through pipes or (`tty: true`) in a pseudo-terminal. */
export function startClient(
  args: string[],
  options: { tty?: boolean; env?: Record<string, string>; stdout?: "piped" | "null" } = {},
): TextProcess & { child: Deno.ChildProcess } {
  const [exe, exeArgs] = clientCommand(args);
  const [command, commandArgs] = options.tty
    ? [
      "script",
      // `exec`: under dash (script's shell when SHELL is unset, as in CI) the shell would stay
      // in the pty's foreground group and die of the Ctrl-C meant for the client (exit 130).
      ["-qfec", `exec ${[exe, ...exeArgs].map((part) => `'${part}'`).join(" ")}`, "/dev/null"],
    ]
    : [exe, exeArgs];
  const child = new Deno.Command(command, {
    args: commandArgs,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { TERM: "xterm", DENO_NO_UPDATE_CHECK: "1", ...options.env },
  }).spawn();
  let out = "";
  let err = "";
  const reader = child.stdout.getReader();
  const pumps = Promise.all([
    (async () => {
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          out += decoder.decode(value, { stream: true });
        }
      } catch {
        // cancelled
      }
    })(),
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
    })(),
  ]);
  const writer = child.stdin.getWriter();
  return {
    child,
    out: () => out,
    err: () => err,
    write: (text: string) => writer.write(new TextEncoder().encode(text)),
    closeStdin: () => writer.close().catch(() => {}),
    closeStdout: () => reader.cancel().catch(() => {}),
    signal: (signal: Deno.Signal) => {
      try {
        child.kill(signal);
      } catch {
        // exited
      }
    },
    async exit(timeoutMs = 30_000): Promise<number> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (status === null) throw new Error(`no exit; output:\n${out}\nstderr:\n${err}`);
      await pumps;
      return status.code;
    },
    async dispose() {
      await writer.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await child.status;
      await pumps;
    },
  };
}

/**
 * The rows a terminal shows after `raw` output: printable text overwrites at the cursor, `\r`
 * returns to column 0, `\n` goes to the next row, `ESC[K` erases to the end of the row, `ESC[nC`
 * moves right, `ESC[2J` clears; other sequences are ignored. Enough for the prompt's output.
 *
 * @example
 * ```ts
 * screenOf("> abc\r\x1b[Klog\r\n> abc"); // ["log", "> abc"]
 * ```
 */
export function screenOf(raw: string): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let column = 0;
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i];
    if (char === "\x1b") {
      // deno-lint-ignore no-control-regex
      const match = /^\x1b\[([0-9;?]*)([A-Za-z~])/.exec(raw.slice(i, i + 16));
      if (!match) continue;
      i += match[0].length - 1;
      if (match[2] === "K") rows[row].length = Math.min(rows[row].length, column);
      else if (match[2] === "C") column += Number(match[1] || "1");
      else if (match[2] === "J" && match[1] === "2") {
        rows.length = 0;
        rows.push([]);
        row = 0;
      }
      continue;
    }
    if (char === "\r") {
      column = 0;
    } else if (char === "\n") {
      row++;
      column = 0;
      rows[row] ??= [];
    } else if (char >= " ") {
      while (rows[row].length < column) rows[row].push(" ");
      rows[row][column++] = char;
    }
  }
  return rows.map((cells) => cells.join("").trimEnd());
}

/** Waits (polling, with a deadline) until `condition()` holds; the message shows `context()`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  context: () => string = () => "",
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
