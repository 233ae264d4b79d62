import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import { bindRelay, parsePortRange } from "./relay_ports.ts";

Deno.test("turn relay ports: ranges parse; binds stay inside; EVEN-PORT with a held odd port", () => {
  assert.deepEqual(parsePortRange("49152-65535"), { min: 49152, max: 65535 });
  for (const bad of ["0-10", "10-9", "1-70000", "a-b", "5"]) {
    assert.throws(() => parsePortRange(bad), RangeError);
  }
  const runtime = new VirtualRuntime({ seed: 3 });
  const range = { min: 50000, max: 50009 };
  const ports = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const bound = bindRelay(runtime, "203.0.113.1", range, false, false);
    assert.ok(bound, `bind ${i}`);
    assert.ok(bound.socket.addr.port >= 50000 && bound.socket.addr.port <= 50009);
    ports.add(bound.socket.addr.port);
  }
  assert.equal(ports.size, 10, "every port of the range used once");
  assert.equal(
    bindRelay(runtime, "203.0.113.1", range, false, false),
    undefined,
    "range exhausted",
  );
  const even = bindRelay(runtime, "203.0.113.2", range, true, true)!;
  assert.equal(even.socket.addr.port % 2, 0);
  assert.equal(even.reserved?.addr.port, even.socket.addr.port + 1);
});
