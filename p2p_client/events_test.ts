import assert from "node:assert/strict";
import { formatPeerTable, formatTextEvent } from "./events.ts";

const A = "ab".repeat(20);
const B = "cd".repeat(20);

Deno.test("list table: long IPv6 paths keep the columns aligned", () => {
  const table = formatPeerTable([
    { peer: A, state: "direct", path: "udp [2001:db8:1234:5678::abcd]:54321", rttMs: 0.4 },
    { peer: B, state: "relayed", path: "relay", rttMs: 12.25, name: "bob" },
    { peer: A.replace("a", "e"), state: "disconnected", path: null, rttMs: null },
  ]);
  const rows = table.split("\n");
  assert.equal(rows.length, 3);
  // Every column starts at the same offset in every row.
  const rttColumn = rows.map((row) => row.search(/(\d+\.\d ms|-)$/));
  assert.equal(new Set(rttColumn).size, 1, table);
  const stateColumn = rows.map((row) => row.search(/direct|relayed|disconnected/));
  assert.equal(new Set(stateColumn).size, 1, table);
  assert.match(rows[1], /^bob\s+cdcd/);
});

Deno.test("text events show names where IDs are, and server states say why", () => {
  const label = (id: string) => (id === A ? "alice" : id.slice(0, 8) + "…");
  assert.equal(
    formatTextEvent({ type: "delivered", peer: A, messageId: 3 }, label),
    "message 3 delivered to alice",
  );
  assert.equal(
    formatTextEvent({ type: "peer", peer: A, state: "direct", path: "udp [::1]:4000" }, label),
    "peer alice direct via udp [::1]:4000",
  );
  assert.match(
    formatTextEvent({
      type: "server",
      state: "unreachable",
      server: "127.0.0.1:1",
      reason: "Connection refused",
    }),
    /server 127\.0\.0\.1:1 unreachable: Connection refused \(retrying; check the address/,
  );
  assert.equal(
    formatTextEvent({ type: "message", from: B, text: "a\nb" }),
    "[cdcdcdcd…] a\n  ┆ b",
  );
});

Deno.test("errors say what to do", () => {
  assert.equal(
    formatTextEvent({
      type: "error",
      code: "unknown-peer",
      message: "no client with that ID is online",
    }),
    "error (unknown-peer): no client with that ID is online (check the ID, or connect again once it is online)",
  );
  // A message that already says what to do gets no second hint.
  assert.equal(
    formatTextEvent({
      type: "error",
      code: "unknown-peer",
      message: 'not connected to x: use "connect x" first',
    }),
    'error (unknown-peer): not connected to x: use "connect x" first',
  );
});

Deno.test("list and peer events say how a direct path was found and why a peer is relayed", () => {
  const table = formatPeerTable([
    { peer: A, state: "direct", path: "udp 198.18.0.3:61000", rttMs: 0.4, how: "birthday" },
    { peer: B, state: "relayed", path: "relay", rttMs: 12.25, why: "udp blocked here" },
    { peer: A.replace("a", "e"), state: "disconnected", path: null, rttMs: null },
  ]);
  const rows = table.split("\n");
  assert.match(rows[0], /udp 198\.18\.0\.3:61000\s+0\.4 ms\s+found: birthday$/);
  assert.match(rows[1], /relay\s+12\.3 ms\s+why: udp blocked here$/);
  assert.match(rows[2], /disconnected\s+-\s+-$/);
  assert.equal(rows[0].indexOf("found:"), rows[1].indexOf("why:"), table);
  assert.equal(
    formatTextEvent({
      type: "peer",
      peer: A,
      state: "relayed",
      path: "relay",
      why: "both sides map per destination",
    }),
    "peer abababab… relayed via relay [why: both sides map per destination]",
  );
  assert.equal(
    formatTextEvent({
      type: "peer",
      peer: A,
      state: "direct",
      path: "udp 1.2.3.4:5",
      how: "port-mapped",
    }),
    "peer abababab… direct via udp 1.2.3.4:5 [found: port-mapped]",
  );
});

Deno.test("declined introductions and server refusals are clear lines; untrusted words escaped", () => {
  assert.match(
    formatTextEvent({ type: "declined", peer: A }),
    new RegExp(`^declined a connection from ${A}: not a contact .*"name abababab <name>"`),
  );
  assert.equal(
    formatTextEvent({
      type: "refused",
      server: "127.0.0.1:3478",
      code: "server-full",
      message: "the server holds its maximum of 1 clients",
      during: "registration",
    }),
    "server 127.0.0.1:3478 refused the registration (server-full): the server holds its " +
      "maximum of 1 clients — retrying; or try another server with --server HOST:PORT",
  );
  const line = formatTextEvent({
    type: "refused",
    server: "s:1",
    code: "rate-limited",
    message: "slow\n[bob] fake line\u202E",
    during: "session",
  });
  assert.equal(line.split("\n").length, 1, line);
  assert.match(
    line,
    /^server s:1 refused a request \(rate-limited\): slow.*<U\+202E> — slowing down$/,
  );
});
