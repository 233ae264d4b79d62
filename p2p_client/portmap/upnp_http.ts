/**
 * The HTTP half of UPnP-IGD: fetching the device description and posting SOAP actions, each
 * bounded in time (an abort on the runtime's timer) and size (at most
 * {@linkcode UPNP_MAX_DESCRIPTION} bytes read, then the body is cancelled). `fetch` is injected
 * so tests run without sockets.
 *
 * @module
 */
import type { Runtime } from "../../shared/runtime/runtime.ts";
import { PortMapDecodeError } from "./errors.ts";
import {
  decodeSoapResponse,
  encodeSoapRequest,
  findWanService,
  type SoapResponse,
  UPNP_MAX_DESCRIPTION,
  type WanService,
} from "./upnp_codec.ts";

/** The part of `fetch` used: a URL and init in, a `Response` out. */
export type HttpFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Raised when an HTTP exchange fails (network, status, timeout, size). */
export class UpnpHttpError extends Error {
  /** @param message What failed. */
  constructor(message: string) {
    super(message);
    this.name = "UpnpHttpError";
  }
}

/** Reads at most `limit` bytes of a body as text; throws if it is longer. */
async function boundedText(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.length;
      if (length > limit) {
        throw new PortMapDecodeError("too-large", `HTTP body over ${limit} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * Runs one HTTP request with a deadline on the runtime's clock and returns status and (bounded)
 * body text.
 */
async function exchange(
  runtime: Runtime,
  fetchFn: HttpFetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = runtime.setTimer(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    // No redirects: a description or control URL must be served by the gateway itself.
    const response = await fetchFn(url, { ...init, redirect: "manual", signal: controller.signal });
    const text = await boundedText(response, UPNP_MAX_DESCRIPTION);
    return { status: response.status, text };
  } catch (error) {
    if (error instanceof PortMapDecodeError) throw error;
    throw new UpnpHttpError(
      timedOut ? `no answer from ${url} in ${timeoutMs} ms` : `${url}: ${String(error)}`,
    );
  } finally {
    runtime.clearTimer(timer);
  }
}

/**
 * Fetches a device description and finds its WAN connection service.
 *
 * @throws {UpnpHttpError} or {@linkcode PortMapDecodeError}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * // const service = await fetchWanService(systemRuntime, fetch, "http://10.0.1.1:5000/rootDesc.xml", 2000);
 * ```
 */
export async function fetchWanService(
  runtime: Runtime,
  fetchFn: HttpFetch,
  location: string,
  timeoutMs: number,
): Promise<WanService> {
  const { status, text } = await exchange(runtime, fetchFn, location, { method: "GET" }, timeoutMs);
  if (status !== 200) throw new UpnpHttpError(`${location}: HTTP ${status}`);
  return findWanService(text, location);
}

/**
 * Posts one SOAP action and decodes its answer (a UPnP fault comes back as `ok: false`).
 *
 * @throws {UpnpHttpError} or {@linkcode PortMapDecodeError}.
 *
 * @example
 * ```ts
 * import { systemRuntime } from "../../shared/runtime/mod.ts";
 * // const answer = await soapAction(systemRuntime, fetch, service, "GetExternalIPAddress", {}, 2000);
 * ```
 */
export async function soapAction(
  runtime: Runtime,
  fetchFn: HttpFetch,
  service: WanService,
  action: string,
  args: Record<string, string | number>,
  timeoutMs: number,
): Promise<SoapResponse> {
  const request = encodeSoapRequest(service.serviceType, action, args);
  const { status, text } = await exchange(runtime, fetchFn, service.controlUrl, {
    method: "POST",
    headers: {
      "Content-Type": 'text/xml; charset="utf-8"',
      "SOAPAction": request.soapAction,
      "Connection": "close",
    },
    body: request.body,
  }, timeoutMs);
  // A fault comes with status 500; anything else but 200 is a failure.
  if (status !== 200 && status !== 500) {
    throw new UpnpHttpError(`${service.controlUrl} ${action}: HTTP ${status}`);
  }
  return decodeSoapResponse(text, action);
}
