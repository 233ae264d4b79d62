/**
 * Progress bars of file transfers on a terminal, drawn with `cli-progress` (a well-kept npm
 * library: multi-bar, redraw throttling, terminal width) from the same `file` events `--json`
 * prints. One bar per running transfer: name, direction, bar, percent, bytes, rate, ETA; a final
 * line when it ends (`sent`, `saved to PATH`, or `failed: REASON`).
 *
 * @module
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import type { FileEvent } from "./types.ts";

/** Where the bars are drawn: the terminal's stdout, or a fake in tests. */
export interface ProgressStream {
  /** Writes text (ANSI sequences included). */
  write(text: string): boolean;
  /** True on a terminal. */
  isTTY?: boolean;
  /** Terminal width. */
  columns?: number;
}

/**
 * A name from a peer made safe to print on a terminal: control characters (escape sequences
 * included) and bidirectional overrides become U+FFFD.
 *
 * @example
 * ```ts
 * console.log(printable("evil\u001b[2Jname")); // "evil\ufffd[2Jname"
 * ```
 */
export function printable(name: string): string {
  // deno-lint-ignore no-control-regex
  return name.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "\ufffd");
}

/**
 * Formats a byte count: `999 B`, `1.5 kB`, `12.3 MB`, `1.07 GB` (SI units, as rates are).
 *
 * @example
 * ```ts
 * console.log(formatBytes(1_500_000)); // "1.50 MB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

/**
 * Formats seconds left: `45 s`, `3 min 20 s`, `2 h 05 min`.
 *
 * @example
 * ```ts
 * console.log(formatEta(200)); // "3 min 20 s"
 * ```
 */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/**
 * The final line of a transfer, or `undefined` while it runs.
 *
 * @example
 * ```ts
 * console.log(finalLine({ type: "file", id: "ab12", peer: "p", direction: "receive", name: "a.txt", bytes: 3, size: 3, state: "received", path: "/d/a.txt", sha256: "00" }));
 * ```
 */
export function finalLine(event: FileEvent): string | undefined {
  const what = `${event.direction === "send" ? "→" : "←"} ${printable(event.name)} (${
    formatBytes(event.size)
  }) ${event.direction === "send" ? "to" : "from"} ${event.peer.slice(0, 8)}`;
  switch (event.state) {
    case "sent":
      return `${what}: sent, SHA-256 ${event.sha256?.slice(0, 16)}… confirmed`;
    case "received":
      return `${what}: saved to ${event.path} (SHA-256 ${event.sha256?.slice(0, 16)}… verified)`;
    case "failed":
      return `${what}: failed: ${event.reason}`;
    default:
      return undefined;
  }
}

/**
 * One line for a `progress` event, its bar drawn by `cli-progress`'s formatter, for output that
 * prints events as lines (the prompt prints them above the line being typed):
 * `→ big.iso [████████░░░░░░░░░░░░] 42% 27.3 MB/64.0 MB 12.0 MB/s ETA 3 s`.
 *
 * @example
 * ```ts
 * console.log(progressLine({ type: "file", id: "ab", peer: "p", direction: "send", name: "a.bin", bytes: 50, size: 100, state: "progress", rate: 10, etaSeconds: 5 }));
 * ```
 */
export function progressLine(event: FileEvent): string {
  const fraction = event.size > 0 ? Math.min(1, event.bytes / event.size) : 1;
  const bar = cliProgress.Format.BarFormat(fraction, {
    barsize: 20,
    barCompleteString: "█".repeat(20),
    barIncompleteString: "░".repeat(20),
    barGlue: "",
  });
  const rate = event.rate === undefined ? "" : ` ${formatBytes(event.rate)}/s`;
  const eta = event.etaSeconds === undefined ? "" : ` ETA ${formatEta(event.etaSeconds)}`;
  return `${event.direction === "send" ? "→" : "←"} ${printable(event.name)} [${bar}] ${
    Math.floor(fraction * 100)
  }% ${formatBytes(event.bytes)}/${formatBytes(event.size)}${rate}${eta}`;
}

/**
 * One multi-bar for all transfers.
 *
 * @example
 * ```ts
 * const view = new FileProgressView({ write: () => true, isTTY: true, columns: 100 });
 * // for every file event: view.update(event);
 * view.stop();
 * ```
 */
export class FileProgressView {
  readonly #multi: cliProgress.MultiBar;
  readonly #bars = new Map<string, cliProgress.SingleBar>();

  /**
   * @param stream Where to draw (a terminal).
   * @param redrawsPerSecond At most this many redraws per second (default 5).
   */
  constructor(stream: ProgressStream, redrawsPerSecond = 5) {
    this.#multi = new cliProgress.MultiBar({
      // deno-lint-ignore no-explicit-any
      stream: stream as any,
      format: "{arrow} {name} [{bar}] {percentage}% | {done}/{all} | {rate} | ETA {left}",
      barsize: 24,
      hideCursor: false,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: redrawsPerSecond,
      noTTYOutput: stream.isTTY !== true,
      notTTYSchedule: 2000,
      forceRedraw: false,
      autopadding: true,
    }, cliProgress.Presets.shades_classic);
  }

  /**
   * Number of bars shown.
   *
   * @example
   * ```ts
   * const view = new FileProgressView({ write: () => true });
   * console.log(view.bars); // 0
   * view.stop();
   * ```
   */
  get bars(): number {
    return this.#bars.size;
  }

  /**
   * Takes a `file` event: adds, moves or ends that transfer's bar.
   *
   * @example
   * ```ts
   * import type { FileEvent } from "./types.ts";
   * declare const event: FileEvent;
   * const view = new FileProgressView({ write: () => true, isTTY: true });
   * view.update(event);
   * ```
   */
  update(event: FileEvent): void {
    const payload = {
      arrow: event.direction === "send" ? "→" : "←",
      name: printable(event.name.length > 28 ? `${event.name.slice(0, 27)}…` : event.name),
      done: formatBytes(event.bytes),
      all: formatBytes(event.size),
      rate: event.rate === undefined ? "–" : `${formatBytes(event.rate)}/s`,
      left: formatEta(event.etaSeconds),
    };
    const final = finalLine(event);
    let bar = this.#bars.get(event.id);
    if (final !== undefined) {
      if (bar !== undefined) {
        bar.update(event.bytes, payload);
        this.#multi.remove(bar);
        this.#bars.delete(event.id);
      }
      this.#multi.log(`${final}\n`);
      this.#multi.update();
      return;
    }
    if (event.state === "offered" && event.direction === "receive" && bar === undefined) {
      this.#multi.log(
        `← ${event.peer.slice(0, 8)} offers ${printable(event.name)} (${
          formatBytes(event.size)
        }): ` +
          `accept ${event.id.slice(0, 8)} / reject ${event.id.slice(0, 8)}\n`,
      );
    }
    if (bar === undefined) {
      bar = this.#multi.create(Math.max(1, event.size), event.bytes, payload);
      this.#bars.set(event.id, bar);
    } else {
      bar.update(event.bytes, payload);
    }
    this.#multi.update(); // events come at most twice a second per transfer
  }

  /**
   * Stops drawing (at exit).
   *
   * @example
   * ```ts
   * const view = new FileProgressView({ write: () => true });
   * view.stop();
   * ```
   */
  stop(): void {
    this.#multi.stop();
  }
}
