/**
 * `--metrics host:port`: the server's counters in the Prometheus text format at `/metrics`
 * (built with prom-client), the same as JSON at `/status.json`, and a small status page at `/`
 * that refreshes itself every second: clients now, relay throughput, STUN rate, refusals,
 * uptime, version. The page polls `/status.json?wait=1000`, which the server answers a second
 * later (on its runtime's timers), so the page itself needs no timers. Off by default; bind it to loopback or a private address (it has no
 * authentication and shows aggregate figures only: no IDs, no addresses).
 *
 * @module
 */
import { Counter, Gauge, Registry } from "prom-client";
import { type Runtime, sleep, systemRuntime } from "../shared/runtime/mod.ts";
import type { LabeledCounter, ServerMetrics } from "./metrics.ts";

/**
 * A prom-client registry whose metrics read `metrics` at every scrape.
 *
 * @example
 * ```ts
 * import { ServerMetrics } from "./metrics.ts";
 * const metrics = new ServerMetrics("0.1.0", () => 0);
 * metrics.relayBytes = 42;
 * const registry = prometheusRegistry(metrics);
 * console.log((await registry.metrics()).includes("p2p_relay_bytes_total 42")); // true
 * ```
 */
export function prometheusRegistry(metrics: ServerMetrics): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const labeled = (name: string, help: string, label: string, source: LabeledCounter) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, count] of source.entries()) this.inc({ [label]: value }, count);
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  labeled(
    "p2p_connections_total",
    "Signaling connections by outcome (accepted, or the refusal reason)",
    "outcome",
    metrics.connections,
  );
  labeled(
    "p2p_registrations_total",
    "Registrations by outcome (accepted, or the refusal reason)",
    "outcome",
    metrics.registrations,
  );
  counter("p2p_introductions_total", "Introductions brokered", () => metrics.introductions);
  counter(
    "p2p_candidate_updates_total",
    "Late candidates passed on to peers already introduced",
    () => metrics.candidateUpdates,
  );
  counter("p2p_relay_frames_total", "Relay frames forwarded", () => metrics.relayFrames);
  counter("p2p_relay_bytes_total", "Relay payload bytes forwarded", () => metrics.relayBytes);
  counter(
    "p2p_relay_frames_to_nodes_total",
    "Relay frames sent on to another cluster node or sibling worker",
    () => metrics.relayFramesToNodes,
  );
  labeled(
    "p2p_relay_refused_total",
    "Relay frames refused by reason",
    "reason",
    metrics.relayRefused,
  );
  counter(
    "p2p_heartbeat_timeouts_total",
    "Registered clients dropped after heartbeat silence",
    () => metrics.heartbeatTimeouts,
  );
  labeled("p2p_protocol_errors_total", "Protocol errors by code", "code", metrics.protocolErrors);
  labeled("p2p_connection_closes_total", "Closed connections by reason", "reason", metrics.closes);
  labeled(
    "p2p_stun_requests_total",
    "STUN requests answered, by outcome (success, error)",
    "outcome",
    metrics.stunAnswered,
  );
  labeled(
    "p2p_stun_dropped_total",
    "STUN datagrams dropped by reason",
    "reason",
    metrics.stunDropped,
  );
  gauge("p2p_turn_allocations", "TURN allocations now", () => metrics.turnAllocations);
  labeled(
    "p2p_turn_requests_total",
    "TURN requests answered, by outcome (success, or the error code)",
    "outcome",
    metrics.turnRequests,
  );
  labeled(
    "p2p_turn_relayed_packets_total",
    "TURN packets relayed, by direction (to-peer, to-client)",
    "direction",
    metrics.turnRelayedPackets,
  );
  labeled(
    "p2p_turn_relayed_bytes_total",
    "TURN payload bytes relayed, by direction (to-peer, to-client)",
    "direction",
    metrics.turnRelayedBytes,
  );
  labeled(
    "p2p_turn_dropped_total",
    "TURN packets dropped by reason",
    "reason",
    metrics.turnDropped,
  );
  counter(
    "p2p_log_lines_dropped_total",
    "Log lines dropped because the log destination failed or was too slow",
    () => metrics.logLinesDropped,
  );
  gauge("p2p_connected_clients", "Open signaling connections", () => metrics.gauges.connected());
  gauge("p2p_registered_clients", "Registered clients", () => metrics.gauges.registered());
  gauge(
    "p2p_queued_bytes",
    "Bytes queued for clients (relay frames and control messages)",
    () => metrics.gauges.queuedBytes(),
  );
  gauge("p2p_uptime_seconds", "Seconds since the server started", () => metrics.uptimeSeconds);
  new Gauge({
    name: "p2p_build_info",
    help: "The server's version (always 1)",
    labelNames: ["version"],
    registers: [registry],
    collect() {
      this.set({ version: metrics.version }, 1);
    },
  });
  return registry;
}

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound address. */
  readonly addr: { hostname: string; port: number };
  /** Stops serving. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics`, `/status.json` and `/` on `hostname:port`. Throws what `Deno.serve` throws
 * (address in use, permission).
 *
 * @example
 * ```ts
 * import { ServerMetrics } from "./metrics.ts";
 * const endpoint = serveMetrics(new ServerMetrics("0.1.0", () => 0), { hostname: "127.0.0.1", port: 0 });
 * const response = await fetch(`http://127.0.0.1:${endpoint.addr.port}/metrics`);
 * console.log((await response.text()).includes("p2p_registered_clients")); // true
 * await endpoint.close();
 * ```
 */
export function serveMetrics(
  metrics: ServerMetrics,
  bind: { hostname: string; port: number },
  runtime: Runtime = systemRuntime,
): MetricsEndpoint {
  const registry = prometheusRegistry(metrics);
  const server = Deno.serve({
    hostname: bind.hostname,
    port: bind.port,
    onListen: () => {},
    onError: () => new Response("internal error", { status: 500 }),
  }, async (request) => {
    const url = new URL(request.url);
    const path = url.pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/metrics") {
      metrics.collect();
      return new Response(await registry.metrics(), {
        headers: { "content-type": registry.contentType },
      });
    }
    if (path === "/status.json") {
      const wait = Math.min(10_000, Math.max(0, Number(url.searchParams.get("wait")) || 0));
      if (wait > 0) await sleep(runtime, wait);
      return Response.json(metrics.snapshot(), { headers: { "cache-control": "no-store" } });
    }
    if (path === "/") {
      return new Response(STATUS_PAGE, {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    }
    return new Response("not found", { status: 404 });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    close: () => server.shutdown(),
  };
}

/** The status page: static HTML whose script polls `/status.json` every second. */
const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>p2p rendezvous server</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
  h1 { font-size: 1.3em; }
  table { border-collapse: collapse; margin-bottom: 1.5em; }
  td, th { padding: 0.25em 1em 0.25em 0; text-align: left; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  #state { color: #777; }
</style>
</head>
<body>
<h1>p2p rendezvous server <span id="version"></span></h1>
<p id="state">loading…</p>
<table>
  <tr><th>Clients connected</th><td class="n" id="connected"></td></tr>
  <tr><th>Clients registered</th><td class="n" id="registered"></td></tr>
  <tr><th>Relay throughput</th><td class="n" id="relay-rate"></td></tr>
  <tr><th>Relayed in total (bytes)</th><td class="n" id="relay-bytes"></td><td id="relay-frames"></td></tr>
  <tr><th>Queued for clients</th><td class="n" id="queued"></td></tr>
  <tr><th>STUN requests</th><td class="n" id="stun-rate"></td><td id="stun-total"></td></tr>
  <tr><th>Introductions</th><td class="n" id="introductions"></td></tr>
  <tr><th>Heartbeat timeouts</th><td class="n" id="timeouts"></td></tr>
  <tr><th>Uptime</th><td class="n" id="uptime"></td></tr>
</table>
<h2>Refusals</h2>
<table id="refusals"></table>
<script>
"use strict";
let previous = null;
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function sum(o) { return Object.values(o).reduce((a, b) => a + b, 0); }
function set(id, text) { document.getElementById(id).textContent = text; }
function refusals(s) {
  const rows = [];
  const add = (what, counts, skip) => {
    for (const [reason, n] of Object.entries(counts)) if (reason !== skip && n > 0) rows.push([what, reason, n]);
  };
  add("connection", s.connections, "accepted");
  add("registration", s.registrations, "accepted");
  add("relay frame", s.relayRefused);
  add("protocol error", s.protocolErrors);
  add("STUN dropped", s.stunDropped);
  add("TURN refused", s.turnRequests ?? {}, "success");
  add("TURN dropped", s.turnDropped ?? {});
  const table = document.getElementById("refusals");
  table.replaceChildren();
  if (rows.length === 0) {
    const tr = table.insertRow();
    tr.insertCell().textContent = "none";
  }
  for (const [what, reason, n] of rows) {
    const tr = table.insertRow();
    tr.dataset.reason = reason;
    tr.insertCell().textContent = what;
    tr.insertCell().textContent = reason;
    const c = tr.insertCell(); c.className = "n"; c.textContent = n;
  }
}
async function refresh(wait) {
  try {
    const response = await fetch("status.json?wait=" + wait, { cache: "no-store" });
    const s = await response.json();
    const stun = sum(s.stunAnswered);
    let relayRate = 0, stunRate = 0;
    if (previous !== null && s.uptimeSeconds > previous.uptimeSeconds) {
      const dt = s.uptimeSeconds - previous.uptimeSeconds;
      relayRate = (s.relayBytes - previous.relayBytes) / dt;
      stunRate = (stun - sum(previous.stunAnswered)) / dt;
    }
    previous = s;
    set("version", s.version);
    set("connected", s.connected);
    set("registered", s.registered);
    set("relay-rate", bytes(Math.max(0, relayRate)) + "/s");
    set("relay-bytes", s.relayBytes);
    set("relay-frames", s.relayFrames + " frames (" + bytes(s.relayBytes) + ")");
    set("queued", bytes(s.queuedBytes));
    set("stun-rate", Math.max(0, stunRate).toFixed(1) + " /s");
    set("stun-total", stun + " answered, " + sum(s.stunDropped) + " dropped");
    set("introductions", s.introductions);
    set("timeouts", s.heartbeatTimeouts);
    set("uptime", duration(s.uptimeSeconds));
    refusals(s);
    set("state", "updated " + new Date().toLocaleTimeString() + (s.logLinesDropped ? " · " + s.logLinesDropped + " log lines dropped" : ""));
    document.body.dataset.updated = String(s.uptimeSeconds);
    return true;
  } catch (error) {
    set("state", "server unreachable (" + error + "): reload the page to retry");
    return false;
  }
}
(async () => {
  // The server answers ?wait=1000 one second later: one refresh per second, no page timers.
  for (let wait = 0; await refresh(wait); wait = 1000);
})();
</script>
</body>
</html>
`;
