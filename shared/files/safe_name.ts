/**
 * Safe file names for received files: whatever name a sender gives (`../../etc/passwd`, an
 * absolute path, NUL bytes, control characters, `CON` on Windows, a name of dots), the file lands
 * inside the downloads folder under a plain name, and never replaces an existing file
 * (`name (1).ext`, `name (2).ext`, ...), as browsers and Taildrop do.
 *
 * @module
 */

/** Names Windows reserves whatever the extension (`CON.txt` too). */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/i;

/** Longest name produced, in UTF-8 bytes (ext4 and most file systems allow 255). */
const MAX_NAME_BYTES = 200;

const utf8 = new TextEncoder();

/**
 * Turns a name chosen by a peer into a safe base name: the last path component (both `/` and `\`
 * separate), without control characters, NUL, characters Windows forbids (`<>:"|?*`), leading
 * dots and spaces (no hidden files, no `..`) or trailing dots and spaces, a `_` prefix on a
 * Windows reserved name, at most 200 UTF-8 bytes keeping the extension, and `file` when nothing
 * is left.
 *
 * @example
 * ```ts
 * console.log(safeBaseName("../../etc/passwd")); // "passwd"
 * console.log(safeBaseName("C:\\Windows\\con.txt")); // "_con.txt"
 * console.log(safeBaseName("..")); // "file"
 * ```
 */
export function safeBaseName(name: string): string {
  let base = name.normalize("NFC");
  const cut = Math.max(base.lastIndexOf("/"), base.lastIndexOf("\\"));
  base = base.slice(cut + 1);
  // deno-lint-ignore no-control-regex
  base = base.replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*\u202a-\u202e\u2066-\u2069]/g, "_");
  base = base.replace(/^[.\s]+/, "").replace(/[.\s]+$/, "");
  if (base === "") return "file";
  const dot = base.lastIndexOf(".");
  const stem = dot > 0 ? base.slice(0, dot) : base;
  if (WINDOWS_RESERVED.test(stem)) base = `_${base}`;
  return truncateName(base, MAX_NAME_BYTES);
}

function truncateName(name: string, maxBytes: number): string {
  if (utf8.encode(name).length <= maxBytes) return name;
  const dot = name.lastIndexOf(".");
  let ext = dot > 0 ? name.slice(dot) : "";
  if (utf8.encode(ext).length > 32) ext = "";
  let stem = ext === "" ? name : name.slice(0, dot);
  const chars = Array.from(stem);
  while (chars.length > 1 && utf8.encode(chars.join("") + ext).length > maxBytes) chars.pop();
  stem = chars.join("");
  return stem + ext;
}

/**
 * The `n`-th alternative of a name: `report.pdf` → `report (1).pdf`, `archive.tar.gz` →
 * `archive.tar (1).gz`, `README` → `README (1)`. `n = 0` gives the name itself.
 *
 * @example
 * ```ts
 * console.log(numberedName("report.pdf", 2)); // "report (2).pdf"
 * ```
 */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

/**
 * The first of `name`, `name (1)`, `name (2)`, ... for which `taken` is false (at most `limit`
 * tries; then a RangeError).
 *
 * @example
 * ```ts
 * const existing = new Set(["a.txt", "a (1).txt"]);
 * console.log(freeName("a.txt", (n) => existing.has(n))); // "a (2).txt"
 * ```
 */
export function freeName(
  name: string,
  taken: (candidate: string) => boolean,
  limit = 10_000,
): string {
  for (let n = 0; n < limit; n++) {
    const candidate = numberedName(name, n);
    if (!taken(candidate)) return candidate;
  }
  throw new RangeError(`no free name for ${name} after ${limit} tries`);
}
