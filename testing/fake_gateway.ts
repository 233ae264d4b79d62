/**
 * A gateway that speaks NAT-PMP, PCP and UPnP-IGD on a {@linkcode MemoryNetwork}, for
 * virtual-time tests of the port mapper: it keeps a mapping table with expiry on the runtime's
 * clock and records every request. The UPnP HTTP side is a `fetch` function.
 *
 * @module
 */
import type { DatagramSocket, Runtime } from "../shared/runtime/runtime.ts";
import { pcpAddressBytes } from "../p2p_client/portmap/pcp_codec.ts";
import { formatIpAddress } from "../shared/stun/ip.ts";

/** One mapping in the fake gateway's table. */
export interface FakeMapping {
  protocol: "pcp" | "nat-pmp" | "upnp";
  internalClient: string;
  internalPort: number;
  externalPort: number;
  expiresAt: number;
}

/** Options of {@linkcode FakeGateway}. */
export interface FakeGatewayOptions {
  /** Which protocols answer (default all). */
  pcp?: boolean;
  natPmp?: boolean;
  upnp?: boolean;
  /** External address reported. */
  externalAddress?: string;
  /** Largest lifetime granted, seconds (default 3,600). */
  maxLifetime?: number;
  /** External ports UPnP reports as taken (error 718). */
  takenPorts?: number[];
}

/**
 * A fake port-mapping gateway at `address` on a memory network.
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "./virtual_runtime.ts";
 * const runtime = new VirtualRuntime();
 * const gateway = new FakeGateway(runtime.forHost("10.0.1.1"), "10.0.1.1", {});
 * gateway.close();
 * ```
 */
export class FakeGateway {
  /** The mapping table by external port. */
  readonly mappings = new Map<number, FakeMapping>();
  /** Every request, as `protocol:operation`. */
  readonly log: string[] = [];
  readonly #runtime: Runtime;
  readonly #options: FakeGatewayOptions;
  readonly #sockets: DatagramSocket[] = [];
  readonly address: string;
  /** Answer nothing while true (a gateway that went away). */
  silent = false;

  constructor(runtime: Runtime, address: string, options: FakeGatewayOptions) {
    this.#runtime = runtime;
    this.address = address;
    this.#options = options;
    const pmp = runtime.net.listenDatagram({ hostname: address, port: 5351 });
    this.#sockets.push(pmp);
    void this.#serve(pmp, (bytes, from) => this.#onPmpOrPcp(bytes, from));
    const ssdp = runtime.net.listenDatagram({ hostname: address, port: 1900 });
    this.#sockets.push(ssdp);
    void this.#serve(ssdp, (bytes) => this.#onSsdp(bytes));
  }

  get #external(): string {
    return this.#options.externalAddress ?? "198.18.0.2";
  }

  #live(port: number): FakeMapping | undefined {
    const mapping = this.mappings.get(port);
    if (mapping && mapping.expiresAt <= this.#runtime.now()) {
      this.mappings.delete(port);
      return undefined;
    }
    return mapping;
  }

  async #serve(
    socket: DatagramSocket,
    handle: (bytes: Uint8Array, from: string) => Uint8Array | undefined,
  ): Promise<void> {
    for (;;) {
      let bytes: Uint8Array;
      let from;
      try {
        [bytes, from] = await socket.receive();
      } catch {
        return;
      }
      if (this.silent) continue;
      const answer = handle(bytes, from.hostname);
      if (answer) await socket.send(answer, from).catch(() => {});
    }
  }

  #grant(
    protocol: FakeMapping["protocol"],
    client: string,
    internal: number,
    wanted: number,
    lifetime: number,
  ) {
    const seconds = Math.min(lifetime, this.#options.maxLifetime ?? 3600);
    for (const [port, mapping] of this.mappings) {
      if (mapping.internalClient === client && mapping.internalPort === internal) {
        this.mappings.delete(port);
      }
    }
    if (seconds === 0) return { port: 0, seconds: 0 };
    let port = wanted === 0 ? internal : wanted;
    while (this.#live(port) !== undefined) port = port >= 65535 ? 1024 : port + 1;
    this.mappings.set(port, {
      protocol,
      internalClient: client,
      internalPort: internal,
      externalPort: port,
      expiresAt: this.#runtime.now() + seconds * 1000,
    });
    return { port, seconds };
  }

  #onPmpOrPcp(bytes: Uint8Array, from: string): Uint8Array | undefined {
    const epoch = Math.floor(this.#runtime.now() / 1000);
    if (bytes[0] === 0 && this.#options.natPmp !== false) {
      const op = bytes[1];
      if (op === 0 && bytes.length === 2) {
        this.log.push("nat-pmp:address");
        const out = new Uint8Array(12);
        const view = new DataView(out.buffer);
        out[1] = 128;
        view.setUint32(4, epoch);
        out.set(this.#external.split(".").map(Number), 8);
        return out;
      }
      if ((op === 1 || op === 2) && bytes.length === 12) {
        const req = new DataView(bytes.buffer, bytes.byteOffset);
        const internal = req.getUint16(4);
        const lifetime = req.getUint32(8);
        this.log.push(lifetime === 0 ? "nat-pmp:delete" : "nat-pmp:map");
        const { port, seconds } = this.#grant(
          "nat-pmp",
          from,
          internal,
          req.getUint16(6),
          lifetime,
        );
        const out = new Uint8Array(16);
        const view = new DataView(out.buffer);
        out[1] = 128 + op;
        view.setUint32(4, epoch);
        view.setUint16(8, internal);
        view.setUint16(10, port);
        view.setUint32(12, seconds);
        return out;
      }
      return undefined;
    }
    if (bytes[0] === 2) {
      if (this.#options.pcp === false) {
        // A NAT-PMP-only gateway: "unsupported version".
        return this.#options.natPmp === false
          ? undefined
          : new Uint8Array([0, 128 + bytes[1], 0, 1, 0, 0, 0, 0]);
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const opcode = bytes[1];
      const lifetime = view.getUint32(4);
      const client = formatIpAddress(bytes.subarray(20, 24));
      const out = new Uint8Array(bytes.length);
      out.set(bytes);
      const outView = new DataView(out.buffer);
      out[1] = 0x80 | opcode;
      out[2] = 0;
      out[3] = client === from ? 0 : 12; // ADDRESS_MISMATCH
      outView.setUint32(8, epoch);
      out.fill(0, 12, 24);
      if (opcode === 0) {
        this.log.push("pcp:announce");
        return out.subarray(0, 24);
      }
      if (opcode === 1 && bytes.length === 60) {
        this.log.push(lifetime === 0 ? "pcp:delete" : "pcp:map");
        if (out[3] !== 0) return out;
        const internal = view.getUint16(40);
        const { port, seconds } = this.#grant("pcp", from, internal, view.getUint16(42), lifetime);
        outView.setUint32(4, seconds);
        outView.setUint16(42, port);
        out.set(pcpAddressBytes(this.#external), 44);
        return out;
      }
    }
    return undefined;
  }

  #onSsdp(bytes: Uint8Array): Uint8Array | undefined {
    if (this.#options.upnp === false) return undefined;
    const text = new TextDecoder().decode(bytes);
    if (!text.startsWith("M-SEARCH")) return undefined;
    this.log.push("upnp:search");
    return new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n" +
        "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
        `LOCATION: http://${this.address}:5000/rootDesc.xml\r\n` +
        "USN: uuid:fake::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n",
    );
  }

  /** The UPnP HTTP server, as a `fetch`. */
  readonly fetch = (url: string, init: RequestInit): Promise<Response> => {
    if (this.silent) {
      return new Promise((_, reject) =>
        init.signal?.addEventListener("abort", () => reject(new Error("aborted")))
      );
    }
    const path = new URL(url).pathname;
    if (path === "/rootDesc.xml") {
      this.log.push("upnp:description");
      return Promise.resolve(
        new Response(
          '<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>' +
            "<deviceList><device><deviceList><device><serviceList><service>" +
            "<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>" +
            "<controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList>" +
            "</device></deviceList></device></root>",
        ),
      );
    }
    const action = String(new Headers(init.headers).get("SOAPAction")).replace(/^.*#|"$/g, "");
    const body = String(init.body);
    const value = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1] ?? "";
    this.log.push(`upnp:${action}`);
    const ok = (inner: string) =>
      Promise.resolve(
        new Response(
          `<s:Envelope><s:Body><u:${action}Response xmlns:u="x">${inner}</u:${action}Response></s:Body></s:Envelope>`,
        ),
      );
    const fault = (code: number) =>
      Promise.resolve(
        new Response(
          `<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>${code}</errorCode>` +
            `<errorDescription>e</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`,
          { status: 500 },
        ),
      );
    if (action === "GetExternalIPAddress") {
      return ok(`<NewExternalIPAddress>${this.#external}</NewExternalIPAddress>`);
    }
    if (action === "AddPortMapping") {
      const external = Number(value("NewExternalPort"));
      const existing = this.#live(external);
      if ((this.#options.takenPorts ?? []).includes(external)) return fault(718);
      if (existing && existing.internalClient !== value("NewInternalClient")) return fault(718);
      this.#grant(
        "upnp",
        value("NewInternalClient"),
        Number(value("NewInternalPort")),
        external,
        Number(value("NewLeaseDuration")),
      );
      return ok("");
    }
    if (action === "DeletePortMapping") {
      const external = Number(value("NewExternalPort"));
      if (!this.mappings.delete(external)) return fault(714);
      return ok("");
    }
    return fault(401);
  };

  /** Closes the sockets. */
  close(): void {
    for (const socket of this.#sockets) socket.close();
  }
}
