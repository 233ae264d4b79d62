/**
 * Progress bars of file transfers on a terminal from the same `file` events `--json` prints, the
 * bars drawn with `cli-progress`'s formatter (a well-kept npm library). On the prompt one row per
 * running transfer stays above the line being typed, redrawn in place
 * ({@linkcode TransferStatusArea}): name, direction, bar, percent, bytes, rate, ETA, peer; a final
 * line when it ends (`sent`, `saved to PATH`, or `failed: REASON`).
 *
 * @module
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import type { FileEvent } from "./types.ts";

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
 * The rows a terminal prompt keeps above the line being typed while files move: one row per
 * running transfer (its {@linkcode progressLine} and the peer), redrawn in place as `progress`
 * events come, so concurrent transfers each keep one line instead of scrolling the screen with a
 * new line per event. A transfer's row goes when it ends; its final line ({@linkcode finalLine})
 * is printed to the log as any event.
 *
 * (`cli-progress`'s own multi-bar redraws from a timer and writes to the stream itself, which
 * fights the prompt's line editor for the cursor; the prompt draws these rows with the editor.)
 *
 * @example
 * ```ts
 * import type { FileEvent } from "./types.ts";
 * declare const event: FileEvent;
 * const area = new TransferStatusArea();
 * if (area.update(event, "alice")) console.log(area.rows(80).join("\n"));
 * ```
 */
export class TransferStatusArea {
  readonly #rows = new Map<string, string>();
  /** Most rows shown (the rest are summed up in one more row). */
  readonly #maxRows: number;

  /**
   * @param maxRows Most transfers shown one per row (default 8).
   */
  constructor(maxRows = 8) {
    this.#maxRows = maxRows;
  }

  /**
   * Number of running transfers shown.
   *
   * @example
   * ```ts
   * console.log(new TransferStatusArea().size); // 0
   * ```
   */
  get size(): number {
    return this.#rows.size;
  }

  /**
   * Takes a `file` event. Returns true when the rows changed: a `progress` event sets its
   * transfer's row (and is not printed as a line), an ending one (`sent`, `received`, `failed`)
   * removes it (and is printed).
   *
   * @example
   * ```ts
   * const area = new TransferStatusArea();
   * area.update({ type: "file", id: "ab", peer: "p", direction: "send", name: "a.bin", bytes: 1, size: 2, state: "progress" }, "alice");
   * console.log(area.size); // 1
   * ```
   */
  update(event: FileEvent, peerLabel: string): boolean {
    if (event.state === "progress") {
      this.#rows.set(
        event.id,
        `${progressLine(event)} ${event.direction === "send" ? "to" : "from"} ${
          printable(peerLabel)
        }`,
      );
      return true;
    }
    if (finalLine(event) !== undefined) return this.#rows.delete(event.id);
    return false;
  }

  /**
   * The rows to draw, each cut to fit `columns` (a row never wraps, so the prompt knows how many
   * lines to move up to redraw them).
   *
   * @example
   * ```ts
   * console.log(new TransferStatusArea().rows(80)); // []
   * ```
   */
  rows(columns: number): string[] {
    const width = Math.max(10, columns - 1);
    const all = [...this.#rows.values()];
    const shown = all.length > this.#maxRows ? all.slice(0, this.#maxRows - 1) : all;
    if (shown.length < all.length) {
      shown.push(`… and ${all.length - shown.length} more transfers (files)`);
    }
    return shown.map((row) =>
      [...row].length > width ? [...row].slice(0, width - 1).join("") + "…" : row
    );
  }
}
