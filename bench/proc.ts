/**
 * Reading a process's CPU time and memory from Linux `/proc`.
 *
 * @module
 */

/** Linux clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux). */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Parses `/proc/<pid>/stat` and returns utime + stime in clock ticks. The command name (field 2)
 * may hold spaces and parentheses, so fields are counted after its last `)`.
 *
 * @example
 * ```ts
 * const line = "42 (deno) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 5 0 100 0 0";
 * console.log(parseCpuTicks(line)); // 280
 * ```
 */
export function parseCpuTicks(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) throw new SyntaxError("not a /proc/<pid>/stat line: no ')'");
  // After ")": field 3 (state) is index 0, so utime (field 14) is index 11, stime index 12.
  const fields = stat.slice(close + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new SyntaxError("not a /proc/<pid>/stat line: bad utime/stime");
  }
  return utime + stime;
}

/**
 * Parses `/proc/<pid>/status` and returns VmRSS in KiB.
 *
 * @example
 * ```ts
 * console.log(parseVmRssKiB("Name:\tdeno\nVmRSS:\t  51200 kB\n")); // 51200
 * ```
 */
export function parseVmRssKiB(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match === null) throw new SyntaxError("no VmRSS line in /proc/<pid>/status");
  return Number(match[1]);
}

/**
 * Reads a process's total CPU time (user + system, all threads) in seconds.
 *
 * @example
 * ```ts
 * const seconds = await readCpuSeconds(Deno.pid);
 * ```
 */
export async function readCpuSeconds(pid: number): Promise<number> {
  return parseCpuTicks(await Deno.readTextFile(`/proc/${pid}/stat`)) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Reads a process's resident memory in KiB.
 *
 * @example
 * ```ts
 * const kib = await readRssKiB(Deno.pid);
 * ```
 */
export async function readRssKiB(pid: number): Promise<number> {
  return parseVmRssKiB(await Deno.readTextFile(`/proc/${pid}/status`));
}

/**
 * Reads the CPU time (user + system) of a process and all its descendants, in seconds (children
 * found through `/proc/<pid>/task/<tid>/children`; processes that exit meanwhile count as 0).
 *
 * @example
 * ```ts
 * const seconds = await readTreeCpuSeconds(Deno.pid);
 * ```
 */
export async function readTreeCpuSeconds(pid: number): Promise<number> {
  let total = 0;
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0 && seen.size < 1000) {
    const next = queue.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    try {
      total += await readCpuSeconds(next);
      for await (const task of Deno.readDir(`/proc/${next}/task`)) {
        const children = await Deno.readTextFile(`/proc/${next}/task/${task.name}/children`);
        for (const child of children.trim().split(/\s+/)) {
          if (child !== "") queue.push(Number(child));
        }
      }
    } catch {
      // exited meanwhile
    }
  }
  return total;
}
