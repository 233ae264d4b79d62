/**
 * A description of the machine a benchmark ran on.
 *
 * @module
 */

/**
 * Reads CPU model, core count, kernel and Deno version.
 *
 * @example
 * ```ts
 * const machine = await describeMachine();
 * console.log(machine.cores);
 * ```
 */
export async function describeMachine(): Promise<Record<string, string | number>> {
  let cpu = "unknown";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    os: Deno.build.os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    load1: Deno.loadavg()[0],
  };
}
