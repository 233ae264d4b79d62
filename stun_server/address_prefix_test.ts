import assert from "node:assert/strict";
import { ipv6Groups, PrefixCounter, sourcePrefixes } from "./address_prefix.ts";

Deno.test("address prefixes: IPv4 /32 and /24, IPv6 /64 and /48, mapped IPv4 as IPv4", () => {
  assert.deepEqual(sourcePrefixes("203.0.113.7"), { narrow: "4/203.0.113.7", wide: "4/203.0.113" });
  assert.deepEqual(sourcePrefixes("::ffff:203.0.113.7"), sourcePrefixes("203.0.113.7"));
  assert.deepEqual(sourcePrefixes("::ffff:cb00:7107"), sourcePrefixes("203.0.113.7"));
  assert.deepEqual(sourcePrefixes("2001:db8:0:1::5"), {
    narrow: "6/2001:db8:0:1",
    wide: "6/2001:db8:0",
  });
  // Different spellings of addresses in one /64 are one prefix.
  assert.equal(
    sourcePrefixes("2001:0DB8:0000:0001:ffff::1").narrow,
    sourcePrefixes("[2001:db8:0:1:1:2:3:4%eth0]").narrow,
  );
  assert.notEqual(
    sourcePrefixes("2001:db8:0:2::1").narrow,
    sourcePrefixes("2001:db8:0:1::1").narrow,
  );
  assert.equal(sourcePrefixes("2001:db8:0:2::1").wide, sourcePrefixes("2001:db8:0:1::1").wide);
  assert.deepEqual(ipv6Groups("::"), ["0", "0", "0", "0", "0", "0", "0", "0"]);
  assert.equal(ipv6Groups("1:2:3:4:5:6:7:8:9"), null);
  assert.equal(ipv6Groups("1::2::3"), null);
  assert.equal(ipv6Groups("example"), null);
  assert.equal(sourcePrefixes("host-a").narrow, "?/host-a");
});

Deno.test("prefix counter: 100 addresses of one /64 share one narrow limit", () => {
  const counter = new PrefixCounter(64, 256);
  let admitted = 0;
  for (let a = 0; a < 100; a++) {
    for (let c = 0; c < 64; c++) {
      if (counter.tryAdd(`2001:db8:0:1::${a.toString(16)}:${c.toString(16)}`) === null) admitted++;
    }
  }
  assert.equal(admitted, 64);
  // Another /64 in the same /48: its own 64, until the /48 holds 256.
  let more = 0;
  for (let n = 2; n < 10; n++) {
    for (let c = 0; c < 64; c++) if (counter.tryAdd(`2001:db8:0:${n}::${c}`) === null) more++;
  }
  assert.equal(more, 256 - 64);
  assert.equal(counter.tryAdd("2001:db8:1::1"), null, "another /48 is not affected");
  counter.remove("2001:db8:0:1::1");
  assert.equal(counter.countOf("2001:db8:0:1::77").narrow, 63);
  assert.equal(counter.tryAdd("2001:db8:0:1::1"), null);
});

Deno.test("prefix counter: entries vanish at 0 (the table holds live sources only)", () => {
  const counter = new PrefixCounter(2, 4);
  assert.equal(counter.tryAdd("10.1.2.3"), null);
  assert.equal(counter.size, 2);
  counter.remove("10.1.2.3");
  assert.equal(counter.size, 0);
});
