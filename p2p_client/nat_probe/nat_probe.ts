/**
 * NAT behaviour discovery: STUN Binding requests (RFC 8489, unauthenticated) from one UDP socket
 * to the configured servers and, when a server offers OTHER-ADDRESS, the RFC 5780 tests
 * (mapping: alternate address, alternate address and port; filtering: CHANGE-REQUEST change IP
 * and port, change port), plus an IPv6 endpoint when an IPv6 socket can be opened, latency per
 * server, and which port-mapping protocol the gateway offers (from an injected probe).
 *
 * Why: the `nat` command answers "why relayed?" from this report. Each test is one request
 * retransmitted at 250 ms, 500 ms, 1 s (4 sends): a filtering test that gets no answer costs
 * 3.75 s, so the two filtering tests run in parallel with the mapping tests; a whole report
 * takes about 4 s behind a filtering NAT and one round trip otherwise (lab: < 50 ms).
 *
 * @module
 */
import type {
  DatagramSocket,
  HostPort,
  NetAddress,
  Runtime,
} from "../../shared/runtime/runtime.ts";
import {
  addChangeRequest,
  decodeStunMessage,
  getMappedAddress,
  getOtherAddress,
  getXorMappedAddress,
  StunClass,
  StunMessageWriter,
  StunMethod,
} from "../../shared/stun/mod.ts";
import { unmapIpv4 } from "../../shared/stun/ip.ts";
import { classifyNat, type Endpoint, type NatClassification } from "./classify.ts";

/** What the gateway offers for port mapping (from `PortMapper.probe`). */
export interface PortMappingOffer {
  pcp: boolean;
  natPmp: boolean;
  upnp: boolean;
}

/** Latency to one server. */
export interface ServerLatency {
  /** `host:port`. */
  server: string;
  /** Round-trip time of the first answered request, ms; `undefined` if none came. */
  rttMs: number | undefined;
}

/** The full report. */
export interface NatReport extends NatClassification {
  /** The public IPv4 endpoint (`a.b.c.d:port`). */
  ipv4: string | undefined;
  /** The public IPv6 endpoint (`[x::y]:port`), if IPv6 reached a server. */
  ipv6: string | undefined;
  /** Did a server offer RFC 5780 (OTHER-ADDRESS)? */
  rfc5780: boolean;
  /** Latency per configured server. */
  latency: ServerLatency[];
  /** Port-mapping protocols offered by the gateway, if probed. */
  portMapping: PortMappingOffer | undefined;
}

/** Settings of {@linkcode probeNat}. */
export interface NatProbeOptions {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** STUN servers (IPv4 or IPv6 literals); the first one offering OTHER-ADDRESS runs RFC 5780. */
  servers: readonly HostPort[];
  /** This host's own addresses (to tell "not behind a NAT"). */
  localAddresses: readonly string[];
  /** Asks the gateway which port-mapping protocols it offers (runs in parallel). */
  portMappingProbe?: () => Promise<PortMappingOffer | undefined>;
  /** First retransmission timeout, ms (default 250, doubling). */
  rtoMs?: number;
  /** Sends per request (default 4). */
  sends?: number;
}

interface Answer {
  mapped: Endpoint;
  other: Endpoint | undefined;
  rttMs: number;
}

/** One STUN socket with a receive loop matching answers by transaction ID. */
class StunProber {
  readonly #runtime: Runtime;
  readonly socket: DatagramSocket;
  readonly #pending = new Map<string, (answer: Answer, from: NetAddress) => void>();
  #closed = false;

  constructor(runtime: Runtime, socket: DatagramSocket) {
    this.#runtime = runtime;
    this.socket = socket;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    // Bounded: at most 4,096 datagrams per report; 2 KiB each.
    for (let i = 0; i < 4096 && !this.#closed; i++) {
      let bytes: Uint8Array;
      let from: NetAddress;
      try {
        [bytes, from] = await this.socket.receive(new Uint8Array(2048));
      } catch {
        if (this.#closed) return;
        continue;
      }
      try {
        const message = decodeStunMessage(bytes);
        if (message.messageClass !== StunClass.SuccessResponse) continue;
        const key = message.transactionId.toHex();
        const waiter = this.#pending.get(key);
        if (waiter === undefined) continue;
        const mapped = getXorMappedAddress(message) ?? getMappedAddress(message);
        if (mapped === undefined) continue;
        const other = getOtherAddress(message);
        waiter({
          mapped: { hostname: unmapIpv4(mapped.hostname), port: mapped.port },
          other: other && { hostname: unmapIpv4(other.hostname), port: other.port },
          rttMs: 0,
        }, from);
      } catch {
        // Not STUN, or malformed: ignored.
      }
    }
  }

  /** One Binding transaction; resolves `undefined` when no answer came after the last send. */
  bind(
    to: HostPort,
    change: { changeIp: boolean; changePort: boolean } | undefined,
    rtoMs: number,
    sends: number,
  ): Promise<Answer | undefined> {
    const id = this.#runtime.randomBytes(12);
    const writer = new StunMessageWriter();
    writer.start(StunMethod.Binding, StunClass.Request, id);
    if (change !== undefined) addChangeRequest(writer, change);
    const request = writer.bytes().slice();
    const key = id.toHex();
    return new Promise((resolve) => {
      let sent = 0;
      let rto = rtoMs;
      let lastSentAt = 0;
      let firstSentAt = 0;
      let timer: number | undefined;
      const finish = (answer: Answer | undefined) => {
        this.#runtime.clearTimer(timer);
        this.#pending.delete(key);
        resolve(answer);
      };
      this.#pending.set(key, (answer) => {
        // Karn: the RTT counts only when no retransmission could be the one answered.
        answer.rttMs = this.#runtime.now() - (sent === 1 ? firstSentAt : lastSentAt);
        finish(answer);
      });
      const send = () => {
        if (this.#closed || sent >= sends) return finish(undefined);
        sent++;
        lastSentAt = this.#runtime.now();
        if (sent === 1) firstSentAt = lastSentAt;
        this.socket.send(request, { transport: "udp", ...to }).catch(() => {});
        timer = this.#runtime.setTimer(send, rto);
        rto *= 2;
      };
      send();
    });
  }

  close(): void {
    this.#closed = true;
    this.socket.close();
  }
}

function hostPort(endpoint: Endpoint): string {
  return endpoint.hostname.includes(":")
    ? `[${endpoint.hostname}]:${endpoint.port}`
    : `${endpoint.hostname}:${endpoint.port}`;
}

/**
 * Runs the probes and returns the report. Never throws for network trouble: what could not be
 * learned is `undefined` or `"unknown"`.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const report = await probeNat({
 *   runtime: systemRuntime,
 *   servers: [{ hostname: "127.0.0.1", port: 9 }],
 *   localAddresses: ["127.0.0.1"],
 *   sends: 1,
 *   rtoMs: 10,
 * });
 * console.log(report.udpReachable); // false
 * ```
 */
export async function probeNat(options: NatProbeOptions): Promise<NatReport> {
  const { runtime } = options;
  const rto = options.rtoMs ?? 250;
  const sends = options.sends ?? 4;
  const v6Servers = options.servers.filter((s) => s.hostname.includes(":"));
  const portMapping = options.portMappingProbe?.().catch(() => undefined) ??
    Promise.resolve(undefined);
  const v4 = new StunProber(runtime, runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 }));
  let v6: StunProber | undefined;
  let filter: StunProber | undefined;
  if (v6Servers.length > 0) {
    try {
      v6 = new StunProber(runtime, runtime.net.listenDatagram({ hostname: "::", port: 0 }));
    } catch {
      v6 = undefined;
    }
  }
  try {
    const latency: ServerLatency[] = [];
    // Test I to every server at once (also the latency figures).
    const firsts = await Promise.all(options.servers.map(async (server) => {
      const prober = server.hostname.includes(":") ? v6 : v4;
      const answer = prober ? await prober.bind(server, undefined, rto, sends) : undefined;
      latency.push({ server: hostPort(server), rttMs: answer?.rttMs });
      return { server, answer };
    }));
    latency.sort((a, b) =>
      options.servers.findIndex((s) => hostPort(s) === a.server) -
      options.servers.findIndex((s) => hostPort(s) === b.server)
    );
    const v4Answers = firsts.filter((f) => !f.server.hostname.includes(":") && f.answer);
    const v6Answer = firsts.find((f) => f.server.hostname.includes(":") && f.answer)?.answer;
    const rfc = v4Answers.find((f) => f.answer?.other !== undefined);
    const primary = (rfc ?? v4Answers[0])?.answer?.mapped;
    let alternateAddress: Endpoint | undefined;
    let alternateAddressAndPort: Endpoint | undefined;
    let changeIpAndPortAnswered: boolean | undefined;
    let changePortAnswered: boolean | undefined;
    if (rfc?.answer?.other !== undefined) {
      const other = rfc.answer.other;
      // The filtering tests run on a fresh socket (a fresh mapping) that has contacted only
      // the primary address: the mapping tests' packets to the alternate address would open an
      // address-dependent filter for it (RFC 5780 section 4.4).
      filter = new StunProber(
        runtime,
        runtime.net.listenDatagram({ hostname: "0.0.0.0", port: 0 }),
      );
      const [second, third, changeBoth, changePort] = await Promise.all([
        v4.bind({ hostname: other.hostname, port: rfc.server.port }, undefined, rto, sends),
        v4.bind({ hostname: other.hostname, port: other.port }, undefined, rto, sends),
        filter.bind(rfc.server, { changeIp: true, changePort: true }, rto, sends),
        filter.bind(rfc.server, { changeIp: false, changePort: true }, rto, sends),
      ]);
      alternateAddress = second?.mapped;
      alternateAddressAndPort = third?.mapped;
      changeIpAndPortAnswered = changeBoth !== undefined;
      changePortAnswered = changePort !== undefined;
    }
    const otherServers = v4Answers
      .filter((f) =>
        f.answer !== undefined && f.server.hostname !== (rfc ?? v4Answers[0])?.server.hostname
      )
      .map((f) => f.answer!.mapped);
    const classification = classifyNat({
      localPort: v4.socket.addr.port,
      localAddresses: options.localAddresses,
      primary,
      alternateAddress,
      alternateAddressAndPort,
      otherServers,
      changeIpAndPortAnswered,
      changePortAnswered,
    });
    return {
      ...classification,
      udpReachable: classification.udpReachable || v6Answer !== undefined,
      ipv4: primary && hostPort(primary),
      ipv6: v6Answer && hostPort(v6Answer.mapped),
      rfc5780: rfc !== undefined,
      latency,
      portMapping: await portMapping,
    };
  } finally {
    v4.close();
    v6?.close();
    filter?.close();
  }
}
