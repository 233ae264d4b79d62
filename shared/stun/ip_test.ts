import assert from "node:assert/strict";
import { formatIpAddress, parseIpAddress, unmapIpv4, writeIpAddress } from "./ip.ts";

Deno.test("ip: IPv4 dotted quads parse, others are refused", () => {
  assert.deepEqual(parseIpAddress("192.0.2.1"), Uint8Array.of(192, 0, 2, 1));
  assert.deepEqual(parseIpAddress("0.0.0.0"), new Uint8Array(4));
  for (
    const bad of [
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1..2.3",
      "",
      "a.b.c.d",
      "1.2.3.4 ",
    ]
  ) {
    assert.equal(parseIpAddress(bad), undefined, bad);
  }
});

Deno.test("ip: IPv6 with compression and IPv4 tails parses", () => {
  assert.equal(parseIpAddress("::")?.toHex(), "00".repeat(16));
  assert.equal(parseIpAddress("::1")?.toHex(), "00".repeat(15) + "01");
  assert.equal(
    parseIpAddress("2001:db8:1234:5678:11:2233:4455:6677")?.toHex(),
    "20010db8123456780011223344556677",
  );
  assert.equal(parseIpAddress("2001:DB8::")?.toHex(), "20010db8" + "00".repeat(12));
  assert.equal(parseIpAddress("::ffff:192.0.2.1")?.toHex(), "00".repeat(10) + "ffffc0000201");
  assert.equal(parseIpAddress("fe80::1%eth0")?.toHex(), "fe80" + "00".repeat(13) + "01");
  for (
    const bad of [
      ":",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "1:2:3:4:5:6:7",
      "g::1",
      "1:",
    ]
  ) {
    assert.equal(parseIpAddress(bad), undefined, bad);
  }
});

Deno.test("ip: formatting is RFC 5952 canonical and round-trips", () => {
  const cases = [
    "2001:db8:1234:5678:11:2233:4455:6677",
    "::",
    "::1",
    "2001:db8::1",
    "2001:0:0:1::1",
    "1:0:0:2:0:0:0:3",
    "192.0.2.1",
  ];
  assert.equal(formatIpAddress(parseIpAddress("1:0:0:2:0:0:0:3")!), "1:0:0:2::3");
  assert.equal(formatIpAddress(parseIpAddress("2001:db8:0:1:1:1:1:1")!), "2001:db8:0:1:1:1:1:1");
  for (const text of cases) {
    const bytes = parseIpAddress(text)!;
    assert.deepEqual(parseIpAddress(formatIpAddress(bytes)), bytes, text);
  }
  assert.throws(() => formatIpAddress(new Uint8Array(5)), RangeError);
});

Deno.test("ip: writeIpAddress writes in place and reports the length", () => {
  const out = new Uint8Array(20);
  assert.equal(writeIpAddress("10.1.2.3", out, 2), 4);
  assert.deepEqual(out.subarray(2, 6), Uint8Array.of(10, 1, 2, 3));
  assert.equal(writeIpAddress("::2", out, 4), 16);
  assert.equal(out[19], 2);
  assert.equal(writeIpAddress("::2", out, 5), 0, "no room");
  assert.equal(writeIpAddress("localhost", out, 0), 0);
});

Deno.test("ip: unmapIpv4 turns IPv4-mapped IPv6 into IPv4 and leaves the rest", () => {
  assert.equal(unmapIpv4("::ffff:127.0.0.1"), "127.0.0.1");
  assert.equal(unmapIpv4("::FFFF:127.0.0.1"), "127.0.0.1");
  assert.equal(unmapIpv4("::ffff:c000:201"), "192.0.2.1");
  assert.equal(unmapIpv4("::ffff:1:2:3"), "::ffff:1:2:3");
  assert.equal(unmapIpv4("::1"), "::1");
  assert.equal(unmapIpv4("127.0.0.1"), "127.0.0.1");
  assert.equal(unmapIpv4("2001:db8::1"), "2001:db8::1");
});
