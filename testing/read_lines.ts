/**
 * Splitting a child process's output into bounded text lines: the client's `--json` events, the
 * server's announcements, the NAT lab's tools all print one line per record.
 *
 * @module
 */

/** The longest line accepted from a child process, in characters. */
export const MAX_LINE_LENGTH = 1 << 20;

/**
 * Splits a byte stream into text lines (without the newline). A line longer than
 * {@linkcode MAX_LINE_LENGTH} is cut there, so memory stays bounded whatever the stream sends.
 *
 * @example
 * ```ts
 * const stream = new Blob(["a\nb\n"]).stream();
 * for await (const line of readLines(stream)) console.log(line); // "a", then "b"
 * ```
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxLineLength = MAX_LINE_LENGTH,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      yield pending.slice(0, newline).replace(/\r$/, "");
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    while (pending.length > maxLineLength) {
      yield pending.slice(0, maxLineLength);
      pending = pending.slice(maxLineLength);
    }
  }
  pending += decoder.decode();
  if (pending.length > 0) yield pending;
}
