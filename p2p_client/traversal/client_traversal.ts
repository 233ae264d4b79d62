/**
 * The client's part of hard-NAT traversal, shared by all its peer links: it measures this host's
 * NAT once per server (RFC 5780 tests against the server's STUN port, `../nat_probe/`), keeps a
 * port mapping of the client's socket on the gateway (`../portmap/`: PCP, NAT-PMP and UPnP-IGD
 * probed at once, renewed, deleted at exit) and reports the mapped address as a candidate, and
 * owns the {@linkcode BirthdayEngine}. Each link's {@linkcode LinkTraversal} reads the facts
 * through {@linkcode ClientTraversal.linkContext}.
 *
 * Why at start and not on demand: a NAT measurement behind a filtering NAT takes about 2 s (the
 * filtering tests wait out their retransmissions) and a mapping one round trip to the gateway
 * (lab: < 5 ms); both are ready before most connections start, so a link knows its plan at once.
 *
 * @module
 */
import type { HostPort, Runtime } from "../../shared/runtime/runtime.ts";
import type { ClientEvent } from "../events.ts";
import type { NatClassification } from "../nat_probe/classify.ts";
import { probeNat } from "../nat_probe/nat_probe.ts";
import type { InterfaceAddress, TextFileReader } from "../portmap/gateway.ts";
import { type PortMappingService, startPortMapping } from "../portmap/service.ts";
import type { UdpAddress } from "../path_manager.ts";
import { BirthdayEngine } from "./birthday_engine.ts";
import type { LocalFacts } from "./link_traversal.ts";

/** Longest wait at exit for a port-mapping attempt still under way, ms. */
const CLOSE_WAIT_MS = 500;

/** Wait before measuring again when a measurement came back partial, ms. */
const REMEASURE_MS = 5000;

/** What the user (or `main.ts`) chooses. */
export interface ClientTraversalSettings {
  /** Measure our NAT at registration (default true). */
  natProbe?: boolean;
  /** Map our port on the gateway (default true). */
  portMapping?: boolean;
  /** Birthday punching where the NAT classes call for it (default true). */
  birthday?: boolean;
  /** The gateway, when known (else the routing table via `readFile`, else guessed). */
  gateway?: string;
  /** Reads `/proc/net/route` (needs `--allow-all` under Deno). */
  readFile?: TextFileReader;
}

/** Settings and the client's hooks. */
export interface ClientTraversalOptions extends ClientTraversalSettings {
  /** Clock, timers, randomness, sockets. */
  runtime: Runtime;
  /** Sends on the client's socket. */
  sendMain: (bytes: Uint8Array, to: UdpAddress) => void;
  /** Hands a datagram from an adopted birthday socket to the client's dispatcher. */
  dispatch: (bytes: Uint8Array, from: UdpAddress) => void;
  /** Our public endpoint (STUN), if known. */
  publicEndpoint: () => UdpAddress | undefined;
  /** Reports an event (`mapping`). */
  emit: (event: ClientEvent) => void;
  /** Our NAT facts or mapping changed. */
  onChange: (what: "nat" | "mapping") => void;
  /** Debug log. */
  log?: (message: string) => void;
}

/**
 * NAT facts, port mapping and birthday engine of one client.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * const traversal = new ClientTraversal({
 *   runtime: systemRuntime, natProbe: false, portMapping: false,
 *   sendMain: () => {}, dispatch: () => {}, publicEndpoint: () => undefined,
 *   emit: () => {}, onChange: () => {},
 * });
 * console.log(traversal.mapped); // undefined
 * await traversal.close();
 * ```
 */
export class ClientTraversal {
  readonly #options: ClientTraversalOptions;
  readonly #birthday: BirthdayEngine | undefined;
  #nat: Pick<NatClassification, "udpReachable" | "mapping" | "filtering"> | undefined;
  #measuredFor = "";
  #measuring = false;
  #retried = false;
  #retryTimer: number | undefined;
  #mapped: (UdpAddress & { protocol: string }) | undefined;
  #service: Promise<PortMappingService> | undefined;
  #closed = false;

  /** @param options Settings and hooks. */
  constructor(options: ClientTraversalOptions) {
    this.#options = options;
    this.#birthday = options.birthday === false ? undefined : new BirthdayEngine({
      runtime: options.runtime,
      sendMain: options.sendMain,
      dispatch: options.dispatch,
      log: options.log,
    });
  }

  /** The address the gateway maps to our socket, if any. */
  get mapped(): UdpAddress | undefined {
    return this.#mapped && { host: this.#mapped.host, port: this.#mapped.port };
  }

  /** Our NAT as measured, if it was. */
  get nat(): Pick<NatClassification, "udpReachable" | "mapping" | "filtering"> | undefined {
    return this.#nat;
  }

  /** Datagrams sent by birthday attempts so far. */
  get birthdayPackets(): number {
    return this.#birthday?.packetsSent ?? 0;
  }

  /** What each peer link reads. */
  linkContext(): { local: () => LocalFacts; birthday?: BirthdayEngine } {
    return {
      local: () => ({
        nat: this.#nat,
        mapped: this.mapped,
        publicEndpoint: this.#options.publicEndpoint(),
      }),
      birthday: this.#birthday,
    };
  }

  /**
   * Starts the port mapping of the client's socket (`port`), when enabled.
   *
   * @example
   * ```ts
   * // traversal.start(client.udpPort, () => interfaces);
   * ```
   */
  start(port: number, interfaces: () => InterfaceAddress[]): void {
    if (this.#options.portMapping === false || this.#service || this.#closed) return;
    const service = startPortMapping({
      runtime: this.#options.runtime,
      internalPort: port,
      interfaces: interfaces(),
      gateway: this.#options.gateway,
      readFile: this.#options.readFile,
      guessGateway: true,
      onCandidate: (mapping, reason) => {
        const next = mapping
          ? {
            host: mapping.externalAddress,
            port: mapping.externalPort,
            protocol: mapping.protocol,
          }
          : undefined;
        const before = this.#mapped;
        if (before?.host === next?.host && before?.port === next?.port) return;
        this.#mapped = next;
        this.#options.log?.(`port mapping: ${reason}`);
        if (this.#closed) return;
        this.#options.emit(
          next
            ? {
              type: "mapping",
              state: "mapped",
              address: `${next.host}:${next.port}`,
              protocol: next.protocol,
              reason,
            }
            : { type: "mapping", state: "lost", reason },
        );
        this.#options.onChange("mapping");
      },
    });
    this.#service = service;
    service.then((started) => {
      if (!started.ok) this.#options.log?.(`port mapping: ${started.reason}`);
    }, (error) => this.#options.log?.(`port mapping failed: ${error}`));
  }

  /**
   * Measures our NAT against `server` (a STUN port; RFC 5780 when it offers OTHER-ADDRESS), once
   * per server.
   *
   * @example
   * ```ts
   * // traversal.measure({ hostname: "198.18.0.1", port: 54321 }, ["10.0.1.2"]);
   * ```
   */
  measure(server: HostPort, localAddresses: readonly string[]): void {
    if (this.#options.natProbe === false || this.#closed || this.#measuring) return;
    const id = `${server.hostname}|${server.port}`;
    if (id === this.#measuredFor) return;
    this.#measuring = true;
    probeNat({
      runtime: this.#options.runtime,
      servers: [server],
      localAddresses,
      // 250 + 500 + 1,000 ms: a filtering test without an answer costs 1.75 s.
      sends: 3,
    }).then((report) => {
      this.#measuring = false;
      if (this.#closed) return;
      this.#measuredFor = id;
      // An answer lost three times over leaves a behaviour unknown: measure once more, later.
      const partial = !report.udpReachable ||
        (report.rfc5780 && (report.mapping === "unknown" || report.filtering === "unknown"));
      if (partial && !this.#retried) {
        this.#retried = true;
        this.#retryTimer = this.#options.runtime.setTimer(() => {
          this.#measuredFor = "";
          this.measure(server, localAddresses);
        }, REMEASURE_MS);
      }
      this.#nat = {
        udpReachable: report.udpReachable,
        mapping: report.mapping,
        filtering: report.filtering,
      };
      this.#options.log?.(
        `NAT: udp ${report.udpReachable ? "reachable" : "blocked"}, mapping ${report.mapping}, ` +
          `filtering ${report.filtering}`,
      );
      this.#options.onChange("nat");
    }, (error) => {
      this.#measuring = false;
      this.#options.log?.(`NAT measurement failed: ${error}`);
    });
  }

  /** Offers an unclassified datagram of the client's socket to birthday punching. */
  handle(bytes: Uint8Array, from: UdpAddress): boolean {
    return this.#birthday?.handle(bytes, from) ?? false;
  }

  /** Sends on an adopted birthday socket when one serves `to`; false otherwise. */
  send(bytes: Uint8Array, to: UdpAddress): boolean {
    return this.#birthday?.send(bytes, to) ?? false;
  }

  /** Stops birthday punching and deletes the mapping (bounded by the mapper's timeouts). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.runtime.clearTimer(this.#retryTimer);
    this.#birthday?.close();
    const pending = this.#service;
    if (pending === undefined) return;
    // A gateway that never answered must not hold the exit up: wait for the first attempt at
    // most CLOSE_WAIT_MS, else delete the mapping whenever the attempt ends.
    let timer: number | undefined;
    const service = await Promise.race([
      pending.catch(() => undefined),
      new Promise<undefined>((resolve) => {
        timer = this.#options.runtime.setTimer(() => resolve(undefined), CLOSE_WAIT_MS);
      }),
    ]);
    this.#options.runtime.clearTimer(timer);
    if (service === undefined) {
      void pending.then((late) => late.ok ? late.close() : undefined).catch(() => {});
      return;
    }
    if (service.ok) await service.close().catch(() => {});
  }
}
