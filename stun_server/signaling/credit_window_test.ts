import assert from "node:assert/strict";
import {
  CREDIT_SAMPLE_MS,
  CreditWindow,
  RELAY_CREDIT_MAX_BYTES,
  RELAY_CREDIT_TARGET_MS,
} from "./credit_window.ts";

const MIN = 64 * 1024;

/** Acknowledges 16 KiB at `bytesPerMs` for `ms`, from `start`; returns the end time. */
function consume(window: CreditWindow, start: number, bytesPerMs: number, ms: number): number {
  const step = 16 * 1024 / bytesPerMs;
  let now = start;
  while (now < start + ms) window.acknowledged(16 * 1024, now += step);
  return now;
}

Deno.test("credit window: follows a steady receiver's rate × the target time", () => {
  const window = new CreditWindow(MIN);
  consume(window, 0, 200_000, 100); // 200 MB/s
  assert.ok(Math.abs(window.rateBytesPerMs - 200_000) < 5_000, `${window.rateBytesPerMs}`);
  const expected = 200_000 * RELAY_CREDIT_TARGET_MS;
  assert.ok(Math.abs(window.bytes - expected) < 10_000, `window ${window.bytes}`);
});

Deno.test("credit window: a slow receiver keeps the granted window; a very fast one the maximum", () => {
  const slow = new CreditWindow(MIN);
  consume(slow, 0, 10_000, 200); // 10 MB/s: 20 KB in 2 ms, less than 64 KiB
  assert.equal(slow.bytes, MIN);
  const fast = new CreditWindow(MIN);
  consume(fast, 0, 5_000_000, 50); // 5 GB/s
  assert.equal(fast.bytes, RELAY_CREDIT_MAX_BYTES);
});

Deno.test("credit window: shrinks within a few samples when the receiver slows down or pauses", () => {
  const window = new CreditWindow(MIN);
  let now = consume(window, 0, 400_000, 50);
  assert.ok(window.bytes > 350_000, `window ${window.bytes}`);
  now = consume(window, now, 20_000, 6 * CREDIT_SAMPLE_MS); // 20 MB/s from now on
  assert.ok(window.bytes < 100_000, `window ${window.bytes} after slowing down`);
  // A pause: the first acknowledgement after it ends a sample spanning the pause.
  consume(window, now, 400_000, 50);
  window.acknowledged(16 * 1024, now + 1000);
  assert.ok(window.bytes < 250_000, `window ${window.bytes} after a pause`);
});

Deno.test("credit window: acknowledgements arriving together do not make a sample of their own", () => {
  // Sixteen credit frames read at once (one TCP segment) must not look like an infinite rate.
  const window = new CreditWindow(MIN);
  for (let i = 0; i < 16; i++) window.acknowledged(16 * 1024, 5);
  assert.equal(window.bytes, MIN);
  assert.equal(window.rateBytesPerMs, 0);
  window.acknowledged(16 * 1024, 5 + CREDIT_SAMPLE_MS);
  // 17 × 16 KiB over 2 ms at most: bounded by what was acknowledged over the sample.
  assert.ok(window.rateBytesPerMs <= 17 * 16 * 1024 / CREDIT_SAMPLE_MS);
});

Deno.test("credit window: a granted window above the maximum is kept as it is", () => {
  const window = new CreditWindow(4 * 1024 * 1024);
  consume(window, 0, 1_000, 20);
  assert.equal(window.bytes, 4 * 1024 * 1024);
  assert.equal(window.maxBytes, 4 * 1024 * 1024);
});
