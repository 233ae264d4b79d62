/**
 * Output lines gathered into one write per turn of the event loop. A busy client prints an event
 * per message sent, acknowledged and received; written one by one, each is a system call (and a
 * wake-up of whoever reads the pipe). Gathered, the lines printed while a burst of datagrams or a
 * chunk of piped commands is processed leave in one write, right after it: a deferred callback runs
 * once the I/O already waiting is handled, tens of microseconds later when nothing waits.
 *
 * @module
 */
import { systemRuntime } from "../shared/runtime/mod.ts";

/** Settings of a {@linkcode LineBatcher}. */
export interface LineBatcherOptions {
  /** Writes text (one or more complete lines), synchronously. */
  write: (text: string) => void;
  /** Runs `callback` once the pending I/O is handled (default the system runtime's `defer`). */
  schedule?: (callback: () => void) => void;
  /** Buffered characters that trigger a write at once (default 64 Ki): memory stays bounded. */
  maxBufferedChars?: number;
}

/**
 * Gathers lines and writes them together, in order.
 *
 * @example
 * ```ts
 * const batcher = new LineBatcher({ write: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)) });
 * batcher.push('{"type":"sent","messageId":1}');
 * batcher.push('{"type":"sent","messageId":2}');
 * batcher.flush(); // one write of both lines (it would also happen by itself right after this turn)
 * ```
 */
export class LineBatcher {
  readonly #write: (text: string) => void;
  readonly #schedule: (callback: () => void) => void;
  readonly #maxChars: number;
  #lines: string[] = [];
  #chars = 0;
  #scheduled = false;

  /**
   * Creates an empty batcher.
   *
   * @example
   * ```ts
   * const batcher = new LineBatcher({ write: (text) => console.log(text.trimEnd()) });
   * ```
   */
  constructor(options: LineBatcherOptions) {
    this.#write = options.write;
    this.#schedule = options.schedule ?? ((callback) => systemRuntime.defer(callback));
    this.#maxChars = options.maxBufferedChars ?? 65_536;
  }

  /** Characters waiting to be written. */
  get bufferedChars(): number {
    return this.#chars;
  }

  /**
   * Queues one line (without its newline).
   *
   * @example
   * ```ts
   * const batcher = new LineBatcher({ write: (text) => console.log(text.trimEnd()) });
   * batcher.push("hello");
   * ```
   */
  push(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length + 1;
    if (this.#chars >= this.#maxChars) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
  }

  /**
   * Writes every queued line now (a no-op when none waits).
   *
   * @example
   * ```ts
   * const batcher = new LineBatcher({ write: (text) => console.log(text.trimEnd()) });
   * batcher.push("hello");
   * batcher.flush();
   * ```
   */
  flush(): void {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    this.#chars = 0;
    this.#write(text);
  }
}
