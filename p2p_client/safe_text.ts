/**
 * Showing text that came from someone else (a peer's message) on the user's terminal, so that it
 * can neither pose as another line nor reorder or restyle the screen:
 *
 * - a newline (LF, CR LF, CR, U+2028, U+2029, NEL U+0085) starts a *continuation line* that
 *   begins with {@linkcode CONTINUATION_MARK}, never at column 0 — so `"\n[alice] hi"` inside a
 *   message from bob cannot look like a line from alice;
 * - other C0 controls (ESC, BEL, BS, …), DEL and C1 controls (U+0080–U+009F, including CSI
 *   U+009B) are escaped as visible `\x1b`-style text: no cursor moves, colours or title changes;
 * - bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) are escaped as
 *   `<U+202E>`: a right-to-left override cannot reverse the rest of the line (the "Trojan
 *   Source" trick, CVE-2021-42574);
 * - a tab becomes two spaces (it only moves the cursor right, but its width varies).
 *
 * The `--json` output is not affected: JSON carries the exact text, escaped by `JSON.stringify`.
 *
 * @module
 */

/** What starts every continuation line of a multi-line message. */
export const CONTINUATION_MARK = "  ┆ ";

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f]/;
const ESCAPE_ALL = new RegExp(`${UNSAFE.source}|${BIDI.source}`, "g");

/**
 * Escapes one line's worth of untrusted text (no newline may remain; see the module).
 *
 * @example
 * ```ts
 * escapeUntrusted("a\x1b[2Jb\u202Ec"); // "a\\x1b[2Jb<U+202E>c"
 * ```
 */
export function escapeUntrusted(text: string): string {
  return text.replace(/\t/g, "  ").replace(ESCAPE_ALL, (char) => {
    const code = char.charCodeAt(0);
    if (BIDI.test(char)) return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
    return `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/**
 * Splits untrusted text into display lines: the first as is (escaped), the others prefixed by
 * {@linkcode CONTINUATION_MARK}.
 *
 * @example
 * ```ts
 * safeLines("hi\n[alice] fake"); // ["hi", "  ┆ [alice] fake"]
 * ```
 */
export function safeLines(text: string): string[] {
  return text.split(/\r\n|[\n\r\u0085\u2028\u2029]/).map((line, index) =>
    index === 0 ? escapeUntrusted(line) : CONTINUATION_MARK + escapeUntrusted(line)
  );
}

/**
 * Renders a message from `label` (a name or short ID the client chose, trusted) as display text:
 * `[label] first line`, then marked continuation lines.
 *
 * @example
 * ```ts
 * formatIncoming("bob", "one\ntwo"); // "[bob] one\n  ┆ two"
 * ```
 */
export function formatIncoming(label: string, text: string): string {
  return `[${label}] ${safeLines(text).join("\n")}`;
}
