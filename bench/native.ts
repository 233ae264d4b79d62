/**
 * Native helpers: the C sources in `bench/native/` compiled with gcc into a temporary directory
 * at bench time, and Debian packages the references need, installed with apt when missing.
 *
 * @module
 */

/** One C helper: its source name in `bench/native/` (without `.c`) and extra linker flags. */
export interface NativeSource {
  /** Base name of `bench/native/<name>.c`; also the binary's name. */
  name: string;
  /** Extra flags for gcc after the source (e.g. `-lcrypto`). */
  libs?: string[];
}

/** Every native helper the suite uses. */
export const NATIVE_SOURCES: readonly NativeSource[] = [
  { name: "stun_load" },
  { name: "stun_responder" },
  { name: "tcp_relay" },
  { name: "sig_load", libs: ["-lcrypto"] },
  { name: "turn_load", libs: ["-lcrypto"] },
];

/**
 * Compiles the given helpers with `gcc -O2` into `outDir` and returns each binary's path.
 *
 * @example
 * ```ts
 * const dir = await Deno.makeTempDir();
 * const bins = await buildNative(dir, [{ name: "stun_load" }]);
 * console.log(bins.stun_load);
 * ```
 */
export async function buildNative(
  outDir: string,
  sources: readonly NativeSource[] = NATIVE_SOURCES,
): Promise<Record<string, string>> {
  const srcDir = new URL("./native/", import.meta.url).pathname;
  const built: Record<string, string> = {};
  await Promise.all(sources.map(async (source) => {
    const out = `${outDir}/${source.name}`;
    const result = await new Deno.Command("gcc", {
      args: ["-O2", "-Wall", "-o", out, `${srcDir}${source.name}.c`, ...(source.libs ?? [])],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(
        `gcc failed for ${source.name}.c:\n${new TextDecoder().decode(result.stderr)}`,
      );
    }
    built[source.name] = out;
  }));
  return built;
}

/**
 * Tells whether a command is on the PATH.
 *
 * @example
 * ```ts
 * console.log(await hasCommand("gcc"));
 * ```
 */
export async function hasCommand(name: string): Promise<boolean> {
  const result = await new Deno.Command("sh", {
    args: ["-c", `command -v ${name}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return result.success;
}

/**
 * Installs Debian packages with apt-get (as root, or through sudo). Returns false when it failed.
 *
 * @example
 * ```ts
 * if (!(await hasCommand("turnserver"))) await aptInstall(["coturn"]);
 * ```
 */
export async function aptInstall(packages: readonly string[]): Promise<boolean> {
  const sudo = Deno.uid() === 0 ? [] : ["sudo"];
  const run = async (args: string[]) => {
    const cmd = sudo.length > 0 ? "sudo" : args[0];
    const rest = sudo.length > 0 ? args : args.slice(1);
    const result = await new Deno.Command(cmd, {
      args: rest,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
    return result.success;
  };
  if (!(await run(["apt-get", "update", "-q"]))) return false;
  return await run([
    "apt-get",
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
    ...packages,
  ]);
}

/**
 * Makes sure the tools the suite needs are present: gcc, taskset, coturn's `turnserver` and
 * OpenSSL's headers (the signaling load generator signs with libcrypto's Ed25519). Installs
 * what is missing from Debian; returns a list of what is still missing.
 *
 * @example
 * ```ts
 * const missing = await ensureTools();
 * if (missing.length > 0) console.error(missing);
 * ```
 */
export async function ensureTools(): Promise<string[]> {
  const want: [string, () => Promise<boolean>][] = [
    ["gcc", () => hasCommand("gcc")],
    ["util-linux", () => hasCommand("taskset")],
    ["coturn", () => hasCommand("turnserver")],
    ["libssl-dev", () => exists("/usr/include/openssl/evp.h")],
  ];
  const missing: string[] = [];
  for (const [pkg, check] of want) if (!(await check())) missing.push(pkg);
  if (missing.length > 0) await aptInstall(missing);
  const still: string[] = [];
  for (const [pkg, check] of want) if (!(await check())) still.push(pkg);
  return still;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
