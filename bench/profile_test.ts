import assert from "node:assert/strict";
import { type CpuProfile, formatProfile, summarizeCpuProfile } from "./profile.ts";

const frame = (functionName: string, url = "", lineNumber = -1) => ({
  functionName,
  url,
  lineNumber,
  columnNumber: 0,
});

Deno.test("summarizeCpuProfile: self time per function, idle excluded, sorted, shortened paths", () => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(idle)") },
      { id: 2, callFrame: frame("handle", "file:///repo/stun_server/x.ts", 41) },
      { id: 3, callFrame: frame("", "file:///repo/shared/y.ts", 0) },
      { id: 4, callFrame: frame("(garbage collector)") },
      { id: 5, callFrame: frame("handle", "file:///repo/stun_server/x.ts", 41) },
    ],
    samples: [1, 2, 2, 3, 4, 5, 1],
    timeDeltas: [5000, 1000, 1000, 1000, 1000, 1000, 5000],
  };
  const top = summarizeCpuProfile(profile, 10, "file:///repo/");
  assert.deepEqual(top[0], {
    name: "handle",
    location: "stun_server/x.ts:42",
    selfMs: 3,
    percent: 60,
  });
  assert.equal(top.length, 3);
  assert.deepEqual(top.map((e) => e.name).sort(), ["(anonymous)", "(garbage collector)", "handle"]);
  assert.equal(summarizeCpuProfile(profile, 1).length, 1);
});

Deno.test("summarizeCpuProfile: an all-idle profile gives nothing", () => {
  const profile: CpuProfile = {
    nodes: [{ id: 1, callFrame: frame("(idle)") }],
    samples: [1],
    timeDeltas: [10],
  };
  assert.deepEqual(summarizeCpuProfile(profile), []);
});

Deno.test("formatProfile: one line per entry with percent and location", () => {
  const text = formatProfile("stun", [{
    name: "f",
    location: "a.ts:3",
    selfMs: 12.4,
    percent: 42.42,
  }]);
  assert.match(text, /^Profile of our server, stun/);
  assert.match(text.split("\n")[1], /42\.4%\s+12 ms {2}f {2}a\.ts:3$/);
});
