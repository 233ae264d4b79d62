/**
 * The client's front end: reads commands (an interactive prompt with line editing, completion and
 * history on a terminal; plain lines from a pipe) and prints events (text, or one JSON object per
 * line with `--json`).
 *
 * On a terminal the line being typed is always the last row: everything printed (events, logs)
 * goes above it — clear the row, print, redraw the line — so output never breaks what is being
 * typed. Input is read raw and applied a chunk at a time by the {@linkcode LineEditor}, so a
 * paste appears at once. The prompt shows the server state (`(connecting) > `).
 *
 * Output that cannot be written (stdout closed: `| head -1`) ends the prompt quietly
 * (`finished` resolves to `"output-closed"`), instead of an uncaught EPIPE.
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/mod.ts";
import { completeLine, HELP_TEXT, parseCommand } from "./commands.ts";
import { type ContactBook, resolvePeer } from "./contacts.ts";
import { type ClientEvent, formatTextEvent, type PeerSummary, type ServerState } from "./events.ts";
import { type EditorEvent, LineEditor } from "./line_editor.ts";
import { FILE_HELP_TEXT, parseFileCommand } from "./files/commands.ts";
import { TransferStatusArea } from "./files/progress_view.ts";
import type { TransferSummary } from "./files/types.ts";
import { LineBatcher } from "./line_batcher.ts";
import { safetyNumber } from "./safety_number.ts";
import type { NatReport } from "./nat_probe/nat_probe.ts";

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
  /** Our public key (for `verify`). */
  readonly publicKey?: Uint8Array;
  /** A connected peer's public key (for `verify`), if known. */
  peerPublicKey?(peer: string): Uint8Array | undefined;
  /** `nat`: the NAT diagnosis. */
  natReport(): Promise<NatReport>;
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

/** The prompt's input and output. */
export interface PromptIO {
  /** Reads the next input chunk; null at end of input. */
  read(): Promise<Uint8Array | null>;
  /** Writes text, synchronously and completely; throws when the output is closed. */
  write(text: string): void;
  /** Switches the terminal's raw mode (terminal only). */
  setRaw?(raw: boolean): void;
  /** Terminal width in columns (default 80). */
  columns?(): number;
}

/** Settings of a {@linkcode Prompt}. */
export interface PromptOptions {
  /** Input and output. */
  io: PromptIO;
  /** True for an interactive terminal (line editing, completion, history). */
  terminal: boolean;
  /** One JSON object per line. */
  json: boolean;
  /** Prefix text lines with the local time (`--timestamps`). */
  timestamps?: boolean;
  /** The contact list (names shown and accepted; `name`, `forget`). */
  contacts?: ContactBook;
  /** Wall clock, ms since the epoch (default the system's): `ts` of JSON events, timestamps. */
  wallClock?: () => number;
  /** Runs a callback after the I/O already waiting (default the system's `defer`). */
  defer?: (callback: () => void) => void;
}

/** Why the prompt finished. */
export type PromptEnd = "exit" | "eof" | "output-closed";

const MAX_LINE_CHARS = 1_100_000;
const PROMPT_STATES: Record<ServerState, string> = {
  connecting: "(connecting) > ",
  registered: "> ",
  unreachable: "(unreachable) > ",
  refused: "(refused) > ",
};

/**
 * Whether an error is a write to a closed pipe or terminal.
 *
 * @example
 * ```ts
 * isClosedOutput(new Deno.errors.BrokenPipe("x")); // true
 * ```
 */
export function isClosedOutput(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    (error as { code?: string })?.code === "EPIPE" ||
    /broken pipe|EPIPE|os error 32/i.test((error as Error)?.message ?? "");
}

/**
 * The prompt.
 *
 * @example
 * ```ts
 * // const prompt = new Prompt(client, { io, terminal: true, json: false });
 * // prompt.start(); // `prompt.finished` resolves on exit, Ctrl-D, end of input or closed output
 * ```
 */
export class Prompt {
  readonly #target: PromptTarget;
  readonly #options: PromptOptions;
  readonly #wallClock: () => number;
  readonly #lines: LineBatcher;
  readonly #editor: LineEditor;
  readonly #interactive: boolean;
  #finish!: (end: PromptEnd) => void;
  #closed = false;
  #outputClosed = false;
  #raw = false;
  #serverState: ServerState = "connecting";
  #server: { address: string | null; reason: string | null } = { address: null, reason: null };
  /** The server whose registration refusal was the last line printed. */
  #refusedRegistration: string | undefined;
  readonly #online = new Set<string>();
  /** Peers that left (closed, timed out): hidden from `list` unless contacts or `--all`. */
  readonly #gone = new Set<string>();
  /** Peers the user asked for in this session (`connect`, `send`): listed while connecting. */
  readonly #requested = new Set<string>();
  /** On a terminal: one row per running file transfer, kept above the line being typed. */
  readonly #transfers = new TransferStatusArea();
  /** Rows of {@linkcode Prompt.#transfers} drawn above the prompt line right now. */
  #statusRows = 0;
  /** Resolves when the user typed `exit`/`quit`, pressed Ctrl-D, input ended, or output closed. */
  readonly finished: Promise<PromptEnd>;

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
    this.#wallClock = options.wallClock ?? (() => systemRuntime.wallClock());
    this.#interactive = options.terminal && !options.json;
    this.#lines = new LineBatcher({
      write: (text) => this.#writeAbove(text),
      schedule: options.defer ?? ((callback) => systemRuntime.defer(callback)),
    });
    this.#editor = new LineEditor({
      completer: (line) =>
        completeLine(line, this.#target.knownPeers, this.#options.contacts?.names),
    });
    this.finished = new Promise((resolve) => (this.#finish = resolve));
  }

  /** The server connection's state, as last reported. */
  get serverState(): ServerState {
    return this.#serverState;
  }

  /** Whether the output is gone (stdout closed). */
  get outputClosed(): boolean {
    return this.#outputClosed;
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
    if (this.#interactive) {
      try {
        this.#options.io.setRaw?.(true);
        this.#raw = true;
      } catch {
        // not a terminal after all: lines still work
      }
      this.#redraw();
    }
    void this.#readLoop();
  }

  /**
   * Prints an event above the line being typed (or as a JSON line with a `ts` field).
   *
   * @example
   * ```ts
   * // prompt.print({ type: "message", from, text: "hi" });
   * ```
   */
  print(event: ClientEvent): void {
    const cameOnline = event.type === "peer" && isUp(event.state) &&
      !this.#online.has(event.peer) && this.#options.contacts?.has(event.peer) === true;
    this.#observe(event);
    this.#printOne(event);
    if (cameOnline) {
      this.#printOne({ type: "presence", peer: event.peer, state: "online", path: event.path });
    }
  }

  #printOne(event: ClientEvent): void {
    if (this.#options.json) {
      const ts = new Date(this.#wallClock()).toISOString();
      const named = this.#withName(event);
      // JSON.stringify escapes every control character: one line, the exact text.
      this.#lines.push(JSON.stringify({ ...named, ts }));
      return;
    }
    // The registered line already says it; the prompt shows the state.
    if (event.type === "server" && event.state === "registered") return;
    // A refused registration was just printed with the server's words: the state line would
    // only repeat it (the prompt shows `(refused) > `).
    const repeats = event.type === "server" && event.state === "refused" &&
      this.#refusedRegistration === event.server;
    this.#refusedRegistration = event.type === "refused" && event.during === "registration"
      ? event.server
      : undefined;
    if (repeats) return;
    if (
      this.#interactive && event.type === "file" &&
      this.#transfers.update(event, this.label(event.peer))
    ) {
      // A progress event only moves its transfer's row; an ending also prints its line below.
      if (event.state === "progress") {
        if (this.#lines.bufferedChars > 0) this.#lines.flush(); // redraws the rows too
        else if (!this.#closed) this.#write(this.#statusRedraw() + this.#render());
        return;
      }
    }
    this.#pushText(formatTextEvent(event, (id) => this.label(id)));
  }

  /**
   * Prints a log line (text mode) above the line being typed.
   *
   * @example
   * ```ts
   * // prompt.log("DEBUG p2p-client: STUN mapped address 1.2.3.4:5");
   * ```
   */
  log(line: string): void {
    this.#pushText(line.replace(/\n$/, ""));
  }

  /**
   * How a peer is shown: its contact name, else the first 8 hex digits of its ID.
   *
   * @example
   * ```ts
   * // prompt.label("ab".repeat(20)); // "alice" or "abababab…"
   * ```
   */
  label(id: string): string {
    return this.#options.contacts?.nameOf(id) ?? `${id.slice(0, 8)}…`;
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
   * Stops reading (the `finished` promise resolves with `"exit"`) and gives the terminal back.
   *
   * @example
   * ```ts
   * // prompt.close();
   * ```
   */
  close(): void {
    this.#end("exit");
  }

  #pushText(text: string): void {
    if (this.#options.timestamps) {
      const time = new Date(this.#wallClock()).toTimeString().slice(0, 8);
      text = `${time} ${text}`;
    }
    this.#lines.push(text);
  }

  #withName(event: ClientEvent): ClientEvent | (ClientEvent & { name: string }) {
    const contacts = this.#options.contacts;
    if (!contacts) return event;
    const id = "peer" in event ? event.peer : "from" in event ? event.from : undefined;
    const name = id === undefined ? undefined : contacts.nameOf(id);
    return name === undefined ? event : { ...event, name };
  }

  #observe(event: ClientEvent): void {
    let state: ServerState | undefined;
    if (event.type === "server") {
      state = event.state;
      this.#server = { address: event.server, reason: event.reason ?? null };
    } else if (event.type === "registered") {
      state = "registered";
      this.#server = { address: event.server, reason: null };
    } else if (event.type === "disconnected") {
      state = "connecting";
      this.#server = { address: event.server, reason: event.reason };
    } else if (event.type === "peer") {
      if (event.state === "disconnected") this.#online.delete(event.peer);
      else if (event.state !== "connecting") this.#online.add(event.peer);
      // Gone: closed, or back to `connecting` because it left (the event says why).
      if (isUp(event.state)) this.#gone.delete(event.peer);
      else if (event.state === "disconnected" || event.reason) {
        this.#gone.add(event.peer);
        this.#online.delete(event.peer);
      }
      if (event.state !== "connecting" && event.state !== "disconnected") {
        this.#options.contacts?.markSeen(event.peer, this.#wallClock());
      }
    }
    if (state !== undefined && state !== this.#serverState) {
      this.#serverState = state;
      if (this.#interactive && !this.#closed) this.#redraw();
    }
  }

  #promptText(): string {
    return PROMPT_STATES[this.#serverState];
  }

  #write(text: string): void {
    if (this.#outputClosed) return;
    try {
      this.#options.io.write(text);
    } catch (error) {
      if (!isClosedOutput(error)) throw error;
      this.#outputClosed = true;
      this.#end("output-closed");
    }
  }

  /** Writes complete lines; on a terminal, above the line being typed, which is then redrawn. */
  #writeAbove(text: string): void {
    if (!this.#interactive) {
      this.#write(text);
      return;
    }
    const lines = `${this.#statusClear()}${text.replace(/\n/g, "\r\n")}`;
    this.#statusRows = 0;
    this.#write(this.#closed ? lines : lines + this.#statusRedraw() + this.#render());
  }

  /**
   * From the prompt line: moves up to the first transfer row drawn above it and clears from there
   * (or, with no rows, clears the prompt line as before).
   */
  #statusClear(): string {
    return this.#statusRows > 0 ? `\x1b[${this.#statusRows}A\r\x1b[J` : "\r\x1b[K";
  }

  /**
   * Redraws the transfer rows above the prompt line, from the prompt line (the cursor ends at the
   * start of the prompt line, which the caller draws next). Rows never wrap (cut to the width),
   * so the count of lines to move up is the count of rows.
   */
  #statusRedraw(): string {
    const rows = this.#transfers.rows(this.#options.io.columns?.() ?? 80);
    if (rows.length === 0 && this.#statusRows === 0) return "";
    const out = `${this.#statusClear()}${rows.map((row) => `${row}\r\n`).join("")}`;
    this.#statusRows = rows.length;
    return out;
  }

  #render(): string {
    const columns = this.#options.io.columns?.() ?? 80;
    return this.#editor.render(this.#promptText(), columns);
  }

  #redraw(): void {
    if (this.#lines.bufferedChars > 0) {
      this.#lines.flush(); // redraws too
      return;
    }
    this.#write(this.#render());
  }

  async #readLoop(): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    let skipping = false;
    for (;;) {
      let chunk: Uint8Array | null;
      try {
        chunk = await this.#options.io.read();
      } catch {
        chunk = null;
      }
      if (this.#closed) return;
      if (chunk === null) {
        const rest = partial + decoder.decode();
        if (!this.#interactive && rest !== "" && !skipping) this.#onLine(rest);
        this.#end("eof");
        return;
      }
      const text = decoder.decode(chunk, { stream: true });
      if (this.#interactive) {
        this.#onKeys(text);
        continue;
      }
      partial += text;
      let newline: number;
      while (!this.#closed && (newline = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, newline).replace(/\r$/, "");
        partial = partial.slice(newline + 1);
        if (skipping) skipping = false;
        else this.#onLine(line);
      }
      if (partial.length > MAX_LINE_CHARS) {
        if (!skipping) this.#lineTooLong();
        skipping = true;
        partial = "";
      }
    }
  }

  #onKeys(text: string): void {
    const events = this.#editor.feed(text);
    let drawn = false;
    for (const event of events) {
      if (this.#closed) return;
      drawn = this.#onEditorEvent(event) || drawn;
    }
    if (!this.#closed && !drawn) this.#redraw();
  }

  /** Handles one editor event; true when it already redrew the line. */
  #onEditorEvent(event: EditorEvent): boolean {
    switch (event.type) {
      case "submit":
        // The submitted line stays on screen (the transfer rows move below it); the output goes
        // below it.
        this.#write(
          this.#statusRows > 0
            ? `${this.#statusClear()}${this.#promptText()}${event.line}\r\n`
            : `\r${this.#promptText()}${event.line}\x1b[K\r\n`,
        );
        this.#statusRows = 0;
        if (this.#transfers.size > 0) this.#write(this.#statusRedraw());
        if (event.line.length > MAX_LINE_CHARS) this.#lineTooLong();
        else this.#run(event.line);
        return false;
      case "interrupt":
        if (!event.hadText) this.#pushText("(Ctrl-C clears the line; Ctrl-D or exit quits)");
        return false;
      case "eof":
        this.#write(this.#render() + "\r\n");
        this.#end("exit");
        return true;
      case "redraw-screen":
        this.#write("\x1b[2J\x1b[H");
        this.#statusRows = 0;
        if (this.#transfers.size > 0) this.#write(this.#statusRedraw());
        return false;
      case "candidates":
        this.#pushText(event.candidates.map((c) => c.trimEnd()).join("  "));
        return false;
    }
  }

  #lineTooLong(): void {
    this.print({
      type: "error",
      code: "bad-command",
      message: `line longer than ${MAX_LINE_CHARS} characters: ignored`,
    });
  }

  #onLine(line: string): void {
    if (this.#closed) return;
    if (line.length > MAX_LINE_CHARS) this.#lineTooLong();
    else this.#run(line);
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
        const contacts = this.#options.contacts;
        const resolved = contacts
          ? contacts.resolve(file.peer, target.knownPeers)
          : resolvePeer(file.peer, target.knownPeers, new Map());
        if (!resolved.ok) {
          this.print({ type: "error", code: "bad-command", message: resolved.error });
          return true;
        }
        void target.sendFile!(resolved.id, file.path);
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
    const contacts = this.#options.contacts;
    const parsed = parseCommand(
      line,
      contacts
        ? (text) => contacts.resolve(text, this.#target.knownPeers)
        : this.#target.knownPeers,
    );
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
        if (this.#serverState !== "registered" && !this.#options.json) {
          this.print({
            type: "info",
            text: `(not registered yet: server ${this.#serverState}; "status" says more)`,
          });
        }
        return;
      case "list":
        this.print({ type: "peers", peers: this.#rows(command.all) });
        return;
      case "stats":
        this.print({
          type: "stats",
          pendingMessages: this.#target.pendingMessages,
          rejectedPackets: this.#target.rejectedPackets,
          peers: this.#target.knownPeers.length,
        });
        return;
      case "status":
        this.print({
          type: "status",
          id: this.#target.id,
          server: this.#serverState,
          address: this.#server.address,
          reason: this.#server.reason,
          pendingMessages: this.#target.pendingMessages,
          connectedPeers: this.#target.list().filter((row) => isUp(row.state)).length,
          contacts: contacts?.size ?? 0,
        });
        return;
      case "nat":
        this.#target.natReport().then(
          (report) => this.print({ type: "nat", report }),
          (error) =>
            this.print({ type: "error", code: "nat-failed", message: (error as Error).message }),
        );
        return;
      case "connect":
        if (this.#target.list().some((row) => row.peer === command.peer && isUp(row.state))) {
          const row = this.#target.list().find((row) => row.peer === command.peer)!;
          this.print({
            type: "info",
            text: `already connected to ${this.label(command.peer)} (${row.state}${
              row.path ? ` via ${row.path}` : ""
            })`,
          });
          return;
        }
        this.#requested.add(command.peer);
        this.#gone.delete(command.peer);
        this.#target.connect(command.peer);
        return;
      case "send":
        this.#requested.add(command.peer);
        this.#target.send(command.peer, command.text);
        return;
      case "name":
        this.#name(command.peer, command.name);
        return;
      case "forget":
        this.#forget(command.peer);
        return;
      case "verify":
        void this.#verify(command.peer);
        return;
      case "exit":
        this.close();
        return;
    }
  }

  #rows(all: boolean): PeerSummary[] {
    const contacts = this.#options.contacts;
    const rows = this.#target.list().map((row) => {
      const name = contacts?.nameOf(row.peer);
      return name === undefined ? row : { ...row, name };
    });
    // Shown: contacts, peers with a path, and peers the user is connecting to; hidden (unless
    // --all): peers that left, and peers remembered from an earlier run that are not back.
    const shown = rows.filter((row) =>
      all || row.name !== undefined || isUp(row.state) ||
      (row.state === "connecting" && this.#requested.has(row.peer) && !this.#gone.has(row.peer))
    );
    if (contacts) {
      const listed = new Set(rows.map((row) => row.peer));
      for (const contact of contacts.list()) {
        if (listed.has(contact.id)) continue;
        shown.push({
          peer: contact.id,
          name: contact.name,
          state: "disconnected",
          path: null,
          rttMs: null,
          ...(contact.lastSeen !== undefined ? { lastSeen: contact.lastSeen } : {}),
        });
      }
    }
    return shown;
  }

  #name(peer: string, name: string): void {
    const contacts = this.#options.contacts;
    if (!contacts) return;
    let problem: string | undefined;
    try {
      problem = contacts.setName(peer, name);
    } catch (error) {
      problem = `${(error as Error).message}: the name is not saved`;
    }
    if (problem) {
      this.print({ type: "error", code: "bad-name", message: problem, peer });
      return;
    }
    if (this.#online.has(peer)) contacts.markSeen(peer, this.#wallClock());
    this.print({ type: "contact", peer, name });
  }

  #forget(peer: string): void {
    const contacts = this.#options.contacts;
    let removed = false;
    try {
      removed = contacts?.remove(peer) ?? false;
    } catch (error) {
      this.print({ type: "error", code: "bad-name", message: (error as Error).message, peer });
      return;
    }
    if (!removed) {
      this.print({
        type: "error",
        code: "bad-argument",
        message: `${peer} is not a contact ("list" shows the contacts)`,
        peer,
      });
      return;
    }
    this.print({ type: "contact", peer, name: null });
  }

  async #verify(peer: string): Promise<void> {
    const ours = this.#target.publicKey;
    const theirs = this.#target.peerPublicKey?.(peer);
    if (!ours || !theirs) {
      this.print({
        type: "error",
        code: "unknown-key",
        message: `no key for ${this.label(peer)} yet: "connect ${peer}" first, then verify`,
        peer,
      });
      return;
    }
    this.print({ type: "verify", peer, safetyNumber: await safetyNumber(ours, theirs) });
  }

  #end(end: PromptEnd): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lines.flush();
    if (this.#raw) {
      this.#raw = false;
      try {
        this.#options.io.setRaw?.(false);
      } catch {
        // the terminal is gone
      }
    }
    this.#finish(end);
  }
}

function isUp(state: string): boolean {
  return state !== "connecting" && state !== "disconnected";
}

/**
 * The process's standard input and output as a {@linkcode PromptIO}.
 *
 * @example
 * ```ts
 * // const prompt = new Prompt(client, { io: stdioPromptIO(), terminal: Deno.stdin.isTerminal(), json: false });
 * ```
 */
export function stdioPromptIO(): PromptIO {
  const encoder = new TextEncoder();
  const buffer = new Uint8Array(64 * 1024);
  return {
    async read() {
      const count = await Deno.stdin.read(buffer);
      return count === null ? null : buffer.slice(0, count);
    },
    write(text: string) {
      let bytes = encoder.encode(text);
      while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
    },
    setRaw(raw: boolean) {
      Deno.stdin.setRaw(raw);
    },
    columns() {
      try {
        // A pty nobody sized (e.g. under `script` from a pipe) reports 0 columns.
        return Deno.consoleSize().columns || 80;
      } catch {
        return 80;
      }
    },
  };
}
