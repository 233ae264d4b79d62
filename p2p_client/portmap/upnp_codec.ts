/**
 * UPnP Internet Gateway Device messages: the SSDP M-SEARCH and its answer, the device
 * description's WAN connection service, and the SOAP actions AddPortMapping, DeletePortMapping
 * and GetExternalIPAddress (UPnP Device Architecture 1.1, WANIPConnection:1/2). Pure functions
 * on text; decoders throw only {@linkcode PortMapDecodeError} and read at most
 * {@linkcode UPNP_MAX_DESCRIPTION} characters.
 *
 * Why: most home routers still offer only UPnP-IGD, so a client that asks only NAT-PMP or PCP
 * misses them. No XML library: the three values needed (serviceType, controlURL, URLBase) and
 * the SOAP answer values are read with bounded scans, and every value put into XML is escaped.
 *
 * @module
 */
import { PortMapDecodeError } from "./errors.ts";

/** SSDP's multicast group and port. */
export const SSDP_ADDRESS = "239.255.255.250";
/** SSDP's port. */
export const SSDP_PORT = 1900;

/** The longest SSDP answer read. */
export const SSDP_MAX_ANSWER = 2048;

/** The longest device description or SOAP answer read, in characters. */
export const UPNP_MAX_DESCRIPTION = 65536;

/** The device type searched for. */
export const IGD_SEARCH_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";

/** Service types that carry port mappings, in order of preference. */
export const WAN_SERVICE_TYPES = [
  "urn:schemas-upnp-org:service:WANIPConnection:2",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
] as const;

/**
 * The SSDP M-SEARCH datagram for Internet Gateway Devices.
 *
 * @example
 * ```ts
 * const text = new TextDecoder().decode(encodeSsdpSearch());
 * console.log(text.startsWith("M-SEARCH * HTTP/1.1\r\n")); // true
 * ```
 */
export function encodeSsdpSearch(searchTarget: string = IGD_SEARCH_TARGET): Uint8Array {
  return new TextEncoder().encode(
    "M-SEARCH * HTTP/1.1\r\n" +
      `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}\r\n` +
      'MAN: "ssdp:discover"\r\n' +
      "MX: 2\r\n" +
      `ST: ${searchTarget}\r\n` +
      "\r\n",
  );
}

/** What an SSDP answer tells. */
export interface SsdpAnswer {
  /** The device description URL (LOCATION). */
  location: string;
  /** The search target answered (ST), or "". */
  searchTarget: string;
  /** The unique service name (USN), or "". */
  usn: string;
}

/**
 * Decodes an SSDP answer (`HTTP/1.1 200 OK` with a LOCATION header).
 *
 * @throws {PortMapDecodeError} for anything else.
 *
 * @example
 * ```ts
 * const answer = new TextEncoder().encode(
 *   "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
 *     "LOCATION: http://10.0.1.1:5000/rootDesc.xml\r\n\r\n",
 * );
 * console.log(decodeSsdpAnswer(answer).location); // "http://10.0.1.1:5000/rootDesc.xml"
 * ```
 */
export function decodeSsdpAnswer(bytes: Uint8Array): SsdpAnswer {
  if (bytes.length > SSDP_MAX_ANSWER) {
    throw new PortMapDecodeError("too-large", `SSDP answer of ${bytes.length} bytes`);
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/i.test(lines[0] ?? "")) {
    throw new PortMapDecodeError("bad-value", "not an SSDP answer (no HTTP 200 status line)");
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const location = headers.get("location");
  if (location === undefined || location === "") {
    throw new PortMapDecodeError("not-found", "SSDP answer without LOCATION");
  }
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new PortMapDecodeError("bad-value", `SSDP LOCATION is not a URL: ${location}`);
  }
  if (url.protocol !== "http:") {
    throw new PortMapDecodeError("bad-value", `SSDP LOCATION is not http: ${location}`);
  }
  return {
    location: url.href,
    searchTarget: headers.get("st") ?? "",
    usn: headers.get("usn") ?? "",
  };
}

/** The WAN connection service of a gateway. */
export interface WanService {
  /** Its service type, one of {@linkcode WAN_SERVICE_TYPES}. */
  serviceType: string;
  /** The absolute URL SOAP actions are posted to. */
  controlUrl: string;
}

function unescapeXml(text: string): string {
  return text.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, name: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[name] ?? "",
  );
}

/**
 * Escapes text for an XML element body or attribute.
 *
 * @example
 * ```ts
 * console.log(escapeXml(`a<b&"c"`)); // "a&lt;b&amp;&quot;c&quot;"
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? "",
  );
}

/** The text of the first `<name>` element (any namespace prefix) in `xml`, unescaped. */
function elementText(xml: string, name: string): string | undefined {
  const pattern = new RegExp(`<(?:[A-Za-z0-9_]+:)?${name}(?:\\s[^>]*)?>([^<]*)</`, "i");
  const match = pattern.exec(xml);
  return match ? unescapeXml(match[1].trim()) : undefined;
}

/**
 * Finds the WAN connection service (the best of {@linkcode WAN_SERVICE_TYPES}) in a device
 * description, with its control URL made absolute against URLBase or the description's URL.
 *
 * @throws {PortMapDecodeError} when there is none or the text is too long.
 *
 * @example
 * ```ts
 * const xml = "<root><device><serviceList><service>" +
 *   "<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>" +
 *   "<controlURL>/ctl/IPConn</controlURL></service></serviceList></device></root>";
 * console.log(findWanService(xml, "http://10.0.1.1:5000/rootDesc.xml").controlUrl);
 * // "http://10.0.1.1:5000/ctl/IPConn"
 * ```
 */
export function findWanService(xml: string, descriptionUrl: string): WanService {
  if (xml.length > UPNP_MAX_DESCRIPTION) {
    throw new PortMapDecodeError("too-large", `device description of ${xml.length} characters`);
  }
  const base = elementText(xml, "URLBase") || descriptionUrl;
  const services: WanService[] = [];
  const servicePattern =
    /<(?:[A-Za-z0-9_]+:)?service(?:\s[^>]*)?>([\s\S]*?)<\/(?:[A-Za-z0-9_]+:)?service>/gi;
  for (let i = 0; i < 256; i++) {
    const match = servicePattern.exec(xml);
    if (match === null) break;
    const serviceType = elementText(match[1], "serviceType");
    const control = elementText(match[1], "controlURL");
    if (serviceType === undefined || control === undefined || control === "") continue;
    if (!(WAN_SERVICE_TYPES as readonly string[]).includes(serviceType)) continue;
    let controlUrl: URL;
    try {
      controlUrl = new URL(control, base);
    } catch {
      continue;
    }
    if (controlUrl.protocol !== "http:") continue;
    services.push({ serviceType, controlUrl: controlUrl.href });
  }
  services.sort((a, b) =>
    WAN_SERVICE_TYPES.indexOf(a.serviceType as typeof WAN_SERVICE_TYPES[number]) -
    WAN_SERVICE_TYPES.indexOf(b.serviceType as typeof WAN_SERVICE_TYPES[number])
  );
  const best = services[0];
  if (best === undefined) {
    throw new PortMapDecodeError("not-found", "no WANIPConnection or WANPPPConnection service");
  }
  return best;
}

/** A SOAP request: the header value and the body to post. */
export interface SoapRequest {
  /** The SOAPAction header value, quoted. */
  soapAction: string;
  /** The XML envelope. */
  body: string;
}

/**
 * A SOAP action request on a WAN connection service.
 *
 * @example
 * ```ts
 * const request = encodeSoapRequest(
 *   "urn:schemas-upnp-org:service:WANIPConnection:1",
 *   "GetExternalIPAddress",
 *   {},
 * );
 * console.log(request.soapAction);
 * // "\"urn:schemas-upnp-org:service:WANIPConnection:1#GetExternalIPAddress\""
 * ```
 */
export function encodeSoapRequest(
  serviceType: string,
  action: string,
  args: Record<string, string | number>,
): SoapRequest {
  const argsXml = Object.entries(args).map(([name, value]) =>
    `<${name}>${escapeXml(String(value))}</${name}>`
  ).join("");
  return {
    soapAction: `"${serviceType}#${action}"`,
    body: '<?xml version="1.0"?>\r\n' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
      's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
      `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${argsXml}</u:${action}>` +
      "</s:Body></s:Envelope>\r\n",
  };
}

/** An AddPortMapping request's arguments. */
export interface UpnpAddPortMapping {
  /** External port. */
  externalPort: number;
  /** `UDP` or `TCP`. */
  protocol: "UDP" | "TCP";
  /** Port on the client. */
  internalPort: number;
  /** The client's LAN address. */
  internalClient: string;
  /** Shown in the router's table. */
  description: string;
  /** Seconds; 0 asks for a permanent mapping. */
  leaseSeconds: number;
}

/**
 * The arguments of AddPortMapping in the order the service defines them.
 *
 * @example
 * ```ts
 * const args = addPortMappingArgs({
 *   externalPort: 40000, protocol: "UDP", internalPort: 40000, internalClient: "10.0.1.2",
 *   description: "p2p", leaseSeconds: 3600,
 * });
 * console.log(Object.keys(args)[0]); // "NewRemoteHost"
 * ```
 */
export function addPortMappingArgs(mapping: UpnpAddPortMapping): Record<string, string | number> {
  return {
    NewRemoteHost: "",
    NewExternalPort: mapping.externalPort,
    NewProtocol: mapping.protocol,
    NewInternalPort: mapping.internalPort,
    NewInternalClient: mapping.internalClient,
    NewEnabled: 1,
    NewPortMappingDescription: mapping.description,
    NewLeaseDuration: mapping.leaseSeconds,
  };
}

/** A decoded SOAP answer: the values of the action's response, or a UPnP fault. */
export type SoapResponse =
  | { ok: true; values: Record<string, string> }
  | { ok: false; errorCode: number; description: string };

/**
 * Decodes a SOAP answer body (a `<u:ActionResponse>` or a `<s:Fault>` with `<UPnPError>`).
 *
 * @throws {PortMapDecodeError} when it is neither or is too long.
 *
 * @example
 * ```ts
 * const body = "<s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u=\"x\">" +
 *   "<NewExternalIPAddress>198.18.0.2</NewExternalIPAddress>" +
 *   "</u:GetExternalIPAddressResponse></s:Body></s:Envelope>";
 * const answer = decodeSoapResponse(body, "GetExternalIPAddress");
 * console.log(answer.ok && answer.values.NewExternalIPAddress); // "198.18.0.2"
 * ```
 */
export function decodeSoapResponse(body: string, action: string): SoapResponse {
  if (body.length > UPNP_MAX_DESCRIPTION) {
    throw new PortMapDecodeError("too-large", `SOAP answer of ${body.length} characters`);
  }
  if (/<(?:[A-Za-z0-9_]+:)?Fault[\s>]/i.test(body)) {
    const code = Number(elementText(body, "errorCode"));
    if (!Number.isInteger(code)) {
      throw new PortMapDecodeError("bad-value", "SOAP fault without a UPnP errorCode");
    }
    return { ok: false, errorCode: code, description: elementText(body, "errorDescription") ?? "" };
  }
  const pattern = new RegExp(
    `<(?:[A-Za-z0-9_]+:)?${action}Response(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[A-Za-z0-9_]+:)?${action}Response>`,
    "i",
  );
  const match = pattern.exec(body);
  if (match === null) {
    // An action without out-arguments may answer with an empty element: `<u:XResponse .../>`.
    const empty = new RegExp(`<(?:[A-Za-z0-9_]+:)?${action}Response(?:\\s[^>]*)?/>`, "i");
    if (empty.test(body)) return { ok: true, values: {} };
    throw new PortMapDecodeError("not-found", `no ${action}Response in the SOAP answer`);
  }
  const values: Record<string, string> = {};
  const valuePattern = /<([A-Za-z][A-Za-z0-9_]*)(?:\s[^>]*)?>([^<]*)<\/\1>/g;
  for (let i = 0; i < 64; i++) {
    const value = valuePattern.exec(match[1]);
    if (value === null) break;
    values[value[1]] = unescapeXml(value[2].trim());
  }
  return { ok: true, values };
}
