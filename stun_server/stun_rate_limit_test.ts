import assert from "node:assert/strict";
import { SourceRateLimiter } from "./stun_rate_limit.ts";

Deno.test("STUN rate limit: a forged-source flood at one victim gets 20 answers/s", () => {
  let now = 0;
  const limiter = new SourceRateLimiter(() => now);
  let answered = 0;
  // 60,000 requests/s for 10 s, all "from" the victim.
  for (let ms = 0; ms < 10_000; ms++) {
    now = ms;
    for (let i = 0; i < 60; i++) if (limiter.allow("198.51.100.7") === null) answered++;
  }
  assert.ok(answered <= 40 + 20 * 10 + 1, `${answered} answers in 10 s`);
  assert.ok(answered >= 200, "the limit still lets the real client through");
  // Another host, even in the victim's /24, is unaffected below the /24 limit.
  assert.equal(limiter.allow("198.51.100.8"), null);
  // An honest client elsewhere is answered during the flood.
  assert.equal(limiter.allow("203.0.113.5"), null);
});

Deno.test("STUN rate limit: one IPv6 /64 is one source; the /48 is capped", () => {
  let now = 0;
  const limiter = new SourceRateLimiter(() => now);
  let answered = 0;
  for (let a = 0; a < 1000; a++) {
    if (limiter.allow(`2001:db8:0:1::${a.toString(16)}`) === null) answered++;
  }
  assert.equal(answered, 40);
  let wide = 0;
  for (let n = 2; n < 100; n++) {
    for (let a = 0; a < 40; a++) {
      if (limiter.allow(`2001:db8:0:${n.toString(16)}::${a}`) === null) wide++;
    }
  }
  assert.equal(wide + answered, 400);
  now += 1000;
  assert.equal(limiter.allow("2001:db8:0:1::1"), null);
});

Deno.test("STUN rate limit: random sources hit the global cap; the table stays bounded", () => {
  const now = 0;
  const limiter = new SourceRateLimiter(() => now, { globalPerSecond: 1000, maxEntries: 512 });
  let answered = 0;
  for (let i = 0; i < 50_000; i++) {
    const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    if (limiter.allow(host) === null) answered++;
  }
  assert.equal(answered, 1000);
  assert.ok(limiter.size <= 512);
});

Deno.test("STUN rate limit: loopback is not limited (it cannot be forged from outside)", () => {
  const limiter = new SourceRateLimiter(() => 0, { narrowBurst: 1 });
  for (let i = 0; i < 100; i++) assert.equal(limiter.allow("127.0.0.1"), null);
  assert.equal(limiter.allow("::1"), null);
  assert.equal(limiter.size, 0);
});
