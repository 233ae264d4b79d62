import assert from "node:assert/strict";
import { binaryPath, COMPILE_TARGETS, compileArgs, PROGRAMS } from "./compile.ts";

function taskRuntimeFlags(task: string): string[] {
  return task.split(/\s+/).filter((word) =>
    word.startsWith("--allow-") || word.startsWith("--v8-flags=")
  ).sort();
}

Deno.test("compile: binaries carry exactly the runtime flags of the deno tasks", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const byName: Record<string, string> = {
    stun_server: config.tasks.server,
    p2p_client: config.tasks.client,
  };
  for (const program of PROGRAMS) {
    const task = byName[program.name];
    assert.ok(task, `no task for ${program.name}`);
    assert.deepEqual([...program.runtimeFlags].sort(), taskRuntimeFlags(task), program.name);
    assert.ok(task.includes(program.entrypoint), `${program.name} task runs its entrypoint`);
  }
});

Deno.test("compile: every target and program gets its own output path", () => {
  const paths = new Set<string>();
  for (const target of COMPILE_TARGETS) {
    for (const program of PROGRAMS) {
      const args = compileArgs(program, target);
      assert.equal(args.at(-1), program.entrypoint);
      assert.equal(args[args.indexOf("--target") + 1], target);
      paths.add(binaryPath(program.name, target));
    }
  }
  assert.equal(paths.size, COMPILE_TARGETS.length * PROGRAMS.length);
  assert.ok(binaryPath("p2p_client", "x86_64-pc-windows-msvc").endsWith(".exe"));
  assert.ok(!binaryPath("p2p_client", "aarch64-apple-darwin").endsWith(".exe"));
});

Deno.test("compile: included files exist", async () => {
  for (const program of PROGRAMS) {
    for (const file of program.include) {
      const info = await Deno.stat(new URL(`../${file}`, import.meta.url));
      assert.ok(info.isFile, file);
    }
  }
});
