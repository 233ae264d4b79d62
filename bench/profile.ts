/**
 * Where the time goes: summaries of V8 CPU profiles (`deno run --cpu-prof`) of our server,
 * recorded by `deno task bench --profile`.
 *
 * @module
 */

/** A V8 `.cpuprofile` (the parts used here). */
export interface CpuProfile {
  /** Call-tree nodes. */
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }[];
  /** Node ID of each sample. */
  samples: number[];
  /** Microseconds between consecutive samples. */
  timeDeltas: number[];
}

/** One function's self time. */
export interface ProfileEntry {
  /** Function name (`(anonymous)` when empty). */
  name: string;
  /** `file:line` (path shortened to the repository), or a V8 pseudo-node like `(program)`. */
  location: string;
  /** Self time, ms. */
  selfMs: number;
  /** Share of all non-idle samples' time, percent. */
  percent: number;
}

/**
 * Sums each function's self time over the samples (idle excluded) and returns the top entries.
 * `rootPrefix` is stripped from file URLs.
 *
 * @example
 * ```ts
 * const profile = {
 *   nodes: [
 *     { id: 1, callFrame: { functionName: "(idle)", url: "", lineNumber: -1, columnNumber: -1 } },
 *     { id: 2, callFrame: { functionName: "f", url: "file:///r/a.ts", lineNumber: 9, columnNumber: 0 } },
 *   ],
 *   samples: [1, 2, 2],
 *   timeDeltas: [1000, 1000, 1000],
 * };
 * console.log(summarizeCpuProfile(profile, 5, "file:///r/")[0]); // { name: "f", location: "a.ts:10", selfMs: 2, percent: 100 }
 * ```
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  top = 15,
  rootPrefix = "",
): ProfileEntry[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, { name: string; location: string; us: number }>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const frame = byNode.get(id);
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    if (frame === undefined || frame.functionName === "(idle)") return;
    all += delta;
    const url = rootPrefix !== "" && frame.url.startsWith(rootPrefix)
      ? frame.url.slice(rootPrefix.length)
      : frame.url;
    const location = url === "" ? "" : `${url}:${frame.lineNumber + 1}`;
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
    const key = `${name}@${location}`;
    const entry = totals.get(key) ?? { name, location, us: 0 };
    entry.us += delta;
    totals.set(key, entry);
  });
  return [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      name: e.name,
      location: e.location,
      selfMs: e.us / 1000,
      percent: all === 0 ? 0 : (e.us / all) * 100,
    }));
}

/**
 * Reads the newest `.cpuprofile` in a directory, or null when there is none.
 *
 * @example
 * ```ts
 * const profile = await readNewestProfile("/tmp/profiles");
 * ```
 */
export async function readNewestProfile(dir: string): Promise<CpuProfile | null> {
  let newest: { path: string; mtime: number } | null = null;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".cpuprofile")) continue;
      const path = `${dir}/${entry.name}`;
      const mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
      if (newest === null || mtime > newest.mtime) newest = { path, mtime };
    }
  } catch {
    return null;
  }
  if (newest === null) return null;
  return JSON.parse(await Deno.readTextFile(newest.path)) as CpuProfile;
}

/**
 * Formats a profile summary as indented lines: percent, self ms, function, location.
 *
 * @example
 * ```ts
 * console.log(formatProfile("stun", [{ name: "f", location: "a.ts:1", selfMs: 2, percent: 50 }]));
 * ```
 */
export function formatProfile(title: string, entries: readonly ProfileEntry[]): string {
  const lines = [`Profile of our server, ${title} (self time, top ${entries.length}):`];
  for (const e of entries) {
    lines.push(
      `  ${e.percent.toFixed(1).padStart(5)}%  ${
        e.selfMs.toFixed(0).padStart(6)
      } ms  ${e.name}  ${e.location}`
        .trimEnd(),
    );
  }
  return lines.join("\n");
}
