import assert from "node:assert/strict";
import { Registry, type StunEndpoint } from "./registry.ts";

function entry(id: string, username: string) {
  const bindings: StunEndpoint[] = [];
  return {
    id,
    stunUsername: username,
    stunPassword: `${username}-key`,
    bindings,
    onStunBinding(endpoint: StunEndpoint) {
      bindings.push(endpoint);
    },
  };
}

const ID = "ab".repeat(20);

Deno.test("registry: lookup by ID and STUN username", () => {
  const registry = new Registry<ReturnType<typeof entry>>();
  const a = entry(ID, "ua");
  assert.equal(registry.add(a), undefined);
  assert.equal(registry.size, 1);
  assert.equal(registry.get(ID), a);
  assert.deepEqual(registry.keyFor("ua"), new TextEncoder().encode("ua-key"));
  assert.equal(registry.keyFor("other"), undefined);
  registry.onAuthenticatedBinding("ua", { hostname: "198.18.0.9", port: 4000 });
  assert.deepEqual(a.bindings, [{ hostname: "198.18.0.9", port: 4000 }]);
});

Deno.test("registry: a newer session replaces the older and revokes its STUN username", () => {
  const registry = new Registry<ReturnType<typeof entry>>();
  const older = entry(ID, "old");
  const newer = entry(ID, "new");
  registry.add(older);
  assert.equal(registry.add(newer), older);
  assert.equal(registry.get(ID), newer);
  assert.equal(registry.keyFor("old"), undefined);
  registry.onAuthenticatedBinding("old", { hostname: "1.2.3.4", port: 1 });
  assert.equal(older.bindings.length, 0);
  assert.equal(registry.remove(older), false, "removing the replaced session keeps the newer");
  assert.equal(registry.get(ID), newer);
  assert.equal(registry.remove(newer), true);
  assert.equal(registry.size, 0);
  assert.equal(registry.keyFor("new"), undefined);
});
