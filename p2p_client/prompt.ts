/**
 * The client's front end: reads commands line by line (an interactive prompt with completion and
 * history on a terminal; plain lines from a pipe) and prints events (text, or one JSON object per
 * line with `--json`). Incoming events never break the line being typed.
 *
 * @module
 */
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import { completeLine, HELP_TEXT, parseCommand, resolvePeerId } from "./commands.ts";
import { FILE_HELP_TEXT, parseFileCommand } from "./files/commands.ts";
import type { TransferSummary } from "./files/types.ts";
import { type ClientEvent, formatJsonEvent, formatTextEvent, type PeerSummary } from "./events.ts";
import { LineBatcher } from "./line_batcher.ts";

/** What the prompt drives. */
export interface PromptTarget {
  /** Our ID. */
  readonly id: string;
  /** Known peers, for completion and ID prefixes. */
  readonly knownPeers: string[];
  /** `connect`. */
  connect(peer: string): void;
  /** `send`. */
  send(peer: string, text: string): number | undefined;
  /** `list`. */
  list(): PeerSummary[];
  /** Messages not yet delivered or reported failed. */
  readonly pendingMessages: number;
  /** Packets rejected (failed authentication, replays). */
  readonly rejectedPackets: number;
  /** `sendfile`. */
  sendFile?(peer: string, path: string): Promise<string | undefined>;
  /** `files`. */
  files?(): TransferSummary[];
  /** `cancel`. */
  cancelFile?(id: string): boolean;
  /** `accept`. */
  acceptFile?(id: string): boolean;
  /** `reject`. */
  rejectFile?(id: string): boolean;
}

/** Settings of a {@linkcode Prompt}. */
export interface PromptOptions {
  /** Where commands come from. */
  input: Readable;
  /** Where events go (stdout). */
  output: Writable;
  /** True for an interactive terminal (prompt, completion, history). */
  terminal: boolean;
  /** One JSON object per line. */
  json: boolean;
}

const MAX_LINE_CHARS = 1_100_000;

/**
 * The prompt.
 *
 * @example
 * ```ts
 * // const prompt = new Prompt(client, { input: process.stdin, output: process.stdout, terminal: true, json: false });
 * // prompt.start(); // resolves `prompt.finished` on exit / EOF
 * ```
 */
export class Prompt {
  readonly #target: PromptTarget;
  readonly #options: PromptOptions;
  #rl: readline.Interface | undefined;
  /** Lines printed without a prompt to redraw (`--json`, or a pipe), written once per turn. */
  readonly #lines: LineBatcher;
  #finish!: () => void;
  #closed = false;
  /** Resolves when the user typed `exit`/`quit`, pressed Ctrl-D/Ctrl-C, or input ended. */
  readonly finished: Promise<void>;

  /**
   * Creates the prompt (call {@linkcode Prompt.start}).
   *
   * @example
   * ```ts
   * // new Prompt(client, options);
   * ```
   */
  constructor(target: PromptTarget, options: PromptOptions) {
    this.#target = target;
    this.#options = options;
    this.#lines = new LineBatcher({ write: (text) => options.output.write(text) });
    this.finished = new Promise((resolve) => (this.#finish = resolve));
  }

  /**
   * Starts reading commands.
   *
   * @example
   * ```ts
   * // prompt.start();
   * ```
   */
  start(): void {
    const interactive = this.#options.terminal && !this.#options.json;
    const rl = readline.createInterface({
      input: this.#options.input,
      output: interactive ? this.#options.output : undefined,
      terminal: interactive,
      historySize: interactive ? 500 : 0,
      completer: interactive
        ? (line: string) => completeLine(line, this.#target.knownPeers)
        : undefined,
      prompt: "> ",
    });
    this.#rl = rl;
    rl.on("line", (line) => this.#onLine(line));
    rl.on("close", () => this.#end());
    rl.on("SIGINT", () => rl.close());
    if (interactive) rl.prompt();
  }

  /**
   * Prints an event, keeping the line being typed intact.
   *
   * @example
   * ```ts
   * // prompt.print({ type: "message", from, text: "hi" });
   * ```
   */
  print(event: ClientEvent): void {
    if (this.#options.json) {
      this.#lines.push(formatJsonEvent(event));
      return;
    }
    const text = formatTextEvent(event);
    const rl = this.#rl;
    if (rl && this.#options.terminal && !this.#closed) {
      this.#lines.flush();
      readline.clearLine(this.#options.output, 0);
      readline.cursorTo(this.#options.output, 0);
      this.#options.output.write(text + "\n");
      rl.prompt(true);
    } else {
      this.#lines.push(text);
    }
  }

  /**
   * Writes the printed events that still wait in the output batch (they otherwise leave right
   * after the current turn of the event loop). Call it before the process exits.
   *
   * @example
   * ```ts
   * // prompt.flush();
   * ```
   */
  flush(): void {
    this.#lines.flush();
  }

  /**
   * Stops reading.
   *
   * @example
   * ```ts
   * // prompt.close();
   * ```
   */
  close(): void {
    this.#lines.flush();
    this.#rl?.close();
  }

  #onLine(line: string): void {
    if (this.#closed) return;
    if (line.length > MAX_LINE_CHARS) {
      this.print({
        type: "error",
        code: "bad-command",
        message: `line longer than ${MAX_LINE_CHARS} characters`,
      });
    } else {
      this.#run(line);
    }
    if (!this.#closed && this.#options.terminal && !this.#options.json) this.#rl?.prompt();
  }

  #runFile(line: string): boolean {
    const file = parseFileCommand(line);
    if (file === undefined || this.#target.sendFile === undefined) return false;
    if ("error" in file) {
      this.print({ type: "error", code: "bad-command", message: file.error });
      return true;
    }
    const target = this.#target;
    switch (file.kind) {
      case "sendfile": {
        const peer = resolvePeerId(file.peer, target.knownPeers);
        if (typeof peer !== "string") {
          this.print({ type: "error", code: "bad-command", message: peer.error });
          return true;
        }
        void target.sendFile!(peer, file.path);
        return true;
      }
      case "files":
        this.print({ type: "files", transfers: target.files?.() ?? [] });
        return true;
      default: {
        const done = file.kind === "cancel"
          ? target.cancelFile?.(file.transfer)
          : file.kind === "accept"
          ? target.acceptFile?.(file.transfer)
          : target.rejectFile?.(file.transfer);
        if (!done) {
          this.print({
            type: "error",
            code: "unknown-transfer",
            message: `no transfer ${file.transfer} to ${file.kind} (see files)`,
          });
        }
        return true;
      }
    }
  }

  #run(line: string): void {
    if (this.#runFile(line)) return;
    const parsed = parseCommand(line, this.#target.knownPeers);
    if (!parsed.ok) {
      this.print({ type: "error", code: "bad-command", message: parsed.error });
      return;
    }
    const command = parsed.command;
    if (!command) return;
    switch (command.kind) {
      case "help":
        this.print({
          type: "help",
          text: this.#target.sendFile ? `${HELP_TEXT}\n${FILE_HELP_TEXT}` : HELP_TEXT,
        });
        return;
      case "id":
        this.print({ type: "id", id: this.#target.id });
        return;
      case "list":
        this.print({ type: "peers", peers: this.#target.list() });
        return;
      case "stats":
        this.print({
          type: "stats",
          pendingMessages: this.#target.pendingMessages,
          rejectedPackets: this.#target.rejectedPackets,
          peers: this.#target.knownPeers.length,
        });
        return;
      case "connect":
        this.#target.connect(command.peer);
        return;
      case "send":
        this.#target.send(command.peer, command.text);
        return;
      case "exit":
        this.close();
        return;
    }
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#finish();
  }
}
