/**
 * Datagram packetization-layer path MTU discovery (DPLPMTUD, RFC 8899) as a pure state machine:
 * how large a TRANSPORT packet the current path carries, found with padded, acknowledged probes
 * (PMTU_PROBE / PMTU_ACK frames) rather than ICMP, which Deno cannot read and NATs often drop.
 *
 * Why: per-datagram costs dominate bulk transfer in Deno. A plain Deno UDP receiver drains about
 * 60–75 MB/s in 1,200-byte datagrams on loopback and 1.5–1.9 GB/s in 65,000-byte ones
 * (`deno task bench --only bulk`): the same bytes in 54× fewer runtime calls and AEAD invocations.
 * Loopback carries 65,507-byte datagrams, an Ethernet path about 1,452, a tunnel less: only a
 * probe can tell, and a probe that is lost must not lose data, so probes carry none.
 *
 * States (RFC 8899, 5.2): `base` (confirming the path and the peer at {@linkcode
 * PmtuProberOptions.baseSize}), `searching`, `search-complete`, and `error` (the base probe went
 * unanswered {@linkcode PmtuProberOptions.maxProbes} times: a peer that does not read
 * TRANSPORT_LARGE, or a path that drops them; the size stays at the base). The search tries the
 * largest size first (loopback: done in two round trips), then common sizes (8,952 jumbo, 1,452
 * Ethernet) downward, then halves the gap between the largest size acknowledged and the smallest
 * that failed down to {@linkcode PmtuProberOptions.granularity}. A size fails after `maxProbes`
 * probes without an answer, each waiting max(3 × the probe RTT, 100 ms) (1 s before any sample).
 * After `raiseIntervalMs` (RFC 8899's PMTU_RAISE_TIMER, 600 s) in `search-complete` or `error`
 * it searches again. A black hole (the sender sees data packets of the current size lost while
 * smaller ones arrive: {@linkcode PmtuProber.blackHole}) or a path change restarts at the base.
 *
 * The caller owns the clock and the sending: it asks {@linkcode PmtuProber.poll} for a probe to
 * send at `now`, feeds PMTU_ACKs to {@linkcode PmtuProber.onAck}, and reads
 * {@linkcode PmtuProber.size} (the largest packet it may send) after each call.
 *
 * @module
 */

import {
  encodeFrame,
  FrameType,
  type PmtuAckFrame,
  type PmtuProbeFrame,
} from "../../shared/peer/frames.ts";

/** States of RFC 8899, 5.2 (DISABLED is the absence of a prober). */
export type PmtuState = "base" | "searching" | "search-complete" | "error";

/** Settings of a {@linkcode PmtuProber}; sizes are whole TRANSPORT packets, in bytes. */
export interface PmtuProberOptions {
  /** BASE_PLPMTU: the size every path is assumed to carry (default 1200). */
  baseSize?: number;
  /** MAX_PLPMTU: the largest size worth probing (default 65,507, the largest UDP payload). */
  maxSize?: number;
  /** MAX_PROBES: unanswered probes of one size before that size counts as failed (default 3). */
  maxProbes?: number;
  /** Time before the search is tried again from the top (default 600 s). */
  raiseIntervalMs?: number;
  /** The binary search stops when the gap is smaller than this (default 64 bytes). */
  granularity?: number;
  /** Probe timeout before any round trip was measured (default 1000 ms). */
  initialProbeTimeoutMs?: number;
  /** Least probe timeout (default 100 ms). */
  minProbeTimeoutMs?: number;
}

/** A probe to send now: a PMTU_PROBE frame whose TRANSPORT packet is `size` bytes. */
export interface PmtuProbe {
  /** Probe number, the 8-byte nonce of the PMTU_PROBE frame (big-endian), echoed in its ACK. */
  id: number;
  /** Size of the whole TRANSPORT packet, in bytes. */
  size: number;
}

/** Sizes tried, largest first, after the largest fails (jumbo frames, Ethernet). */
const COMMON_SIZES = [8952, 1452];

/**
 * One path's PMTU search.
 *
 * @example
 * ```ts
 * const prober = new PmtuProber({ baseSize: 1200, maxSize: 65_507 });
 * prober.start(0);
 * const probe = prober.poll(0); // { id: 1, size: 1200 }: send a PMTU_PROBE padded to that size
 * if (probe) prober.onAck(probe.id, 0.2); // its PMTU_ACK came back
 * console.log(prober.state, prober.size); // "searching" 1200
 * ```
 */
export class PmtuProber {
  readonly #base: number;
  readonly #max: number;
  readonly #maxProbes: number;
  readonly #raiseInterval: number;
  readonly #granularity: number;
  readonly #initialTimeout: number;
  readonly #minTimeout: number;
  #state: PmtuState = "base";
  #started = false;
  /** The largest size confirmed (PLPMTU). */
  #size: number;
  /** Smallest size known to fail in this search. */
  #failedAbove: number;
  /** Size being probed, or undefined when idle. */
  #probing: number | undefined;
  #attempts = 0;
  #nextId = 1;
  #outstanding = new Map<number, { size: number; sentAt: number }>();
  #deadline: number | undefined;
  #rtt: number | undefined;
  #commonIndex = 0;
  #probesSent = 0;

  /**
   * A prober in state `base`; nothing is sent before {@linkcode PmtuProber.start}.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * ```
   */
  constructor(options: PmtuProberOptions = {}) {
    this.#base = options.baseSize ?? 1200;
    this.#max = options.maxSize ?? 65_507;
    if (!(this.#base > 0 && this.#max >= this.#base)) {
      throw new RangeError("PMTU sizes: need 0 < baseSize <= maxSize");
    }
    this.#maxProbes = options.maxProbes ?? 3;
    this.#raiseInterval = options.raiseIntervalMs ?? 600_000;
    this.#granularity = Math.max(1, options.granularity ?? 64);
    this.#initialTimeout = options.initialProbeTimeoutMs ?? 1000;
    this.#minTimeout = options.minProbeTimeoutMs ?? 100;
    this.#size = this.#base;
    this.#failedAbove = this.#max + 1;
  }

  /**
   * The state (RFC 8899, 5.2).
   *
   * @example
   * ```ts
   * if (new PmtuProber().state === "base") console.log("not confirmed yet");
   * ```
   */
  get state(): PmtuState {
    return this.#state;
  }

  /**
   * The largest TRANSPORT packet the path is known to carry (the PLPMTU): the base size until a
   * larger probe is acknowledged.
   *
   * @example
   * ```ts
   * const fragmentRoom = new PmtuProber().size - 29; // minus the TRANSPORT overhead
   * ```
   */
  get size(): number {
    return this.#size;
  }

  /**
   * Probes sent so far.
   *
   * @example
   * ```ts
   * console.log(new PmtuProber().probesSent); // 0
   * ```
   */
  get probesSent(): number {
    return this.#probesSent;
  }

  /**
   * Starts (or restarts, after a path change) the search at the base size.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * prober.start(performance.now());
   * ```
   */
  start(now: number): void {
    this.#started = true;
    this.#restart(now);
  }

  /**
   * The path changed (another address, or the relay): everything learned is forgotten and the
   * search starts again at the base size. Same as {@linkcode PmtuProber.start}.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * prober.pathChanged(performance.now());
   * ```
   */
  pathChanged(now: number): void {
    this.start(now);
  }

  /**
   * Packets of the current size are being lost while smaller ones arrive (a black hole, RFC
   * 8899 4.3): back to the base size at once, then search again.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * const lostLargeInARow = 3;
   * if (lostLargeInARow >= 3) prober.blackHole(performance.now());
   * ```
   */
  blackHole(now: number): void {
    if (!this.#started || this.#size === this.#base) return;
    this.#restart(now);
  }

  /**
   * When {@linkcode PmtuProber.poll} next has something to do, or `undefined`.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * prober.start(0);
   * const at = prober.nextDeadline(); // 0: the first probe is due
   * ```
   */
  nextDeadline(): number | undefined {
    return this.#started ? this.#deadline : undefined;
  }

  /**
   * The probe to send now, if any: handles probe timeouts and the raise timer. Call it at
   * {@linkcode PmtuProber.nextDeadline} (extra calls are harmless).
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * prober.start(0);
   * const probe = prober.poll(0);
   * if (probe) console.log(`send a PMTU_PROBE of ${probe.size} bytes, nonce ${probe.id}`);
   * ```
   */
  poll(now: number): PmtuProbe | undefined {
    if (!this.#started || this.#deadline === undefined || now < this.#deadline) return undefined;
    if (this.#state === "search-complete" || this.#state === "error") {
      // The raise timer: search upwards again from what is confirmed.
      this.#state = this.#size === this.#base && this.#state === "error" ? "base" : "searching";
      this.#failedAbove = this.#max + 1;
      this.#commonIndex = 0;
      this.#probing = this.#state === "base" ? this.#base : this.#nextCandidate();
      this.#attempts = 0;
      if (this.#probing === undefined) return this.#complete(now);
    } else if (this.#probing !== undefined && this.#attempts >= this.#maxProbes) {
      // The size failed.
      this.#outstanding.clear();
      if (this.#state === "base") {
        this.#state = "error";
        this.#probing = undefined;
        this.#deadline = now + this.#raiseInterval;
        return undefined;
      }
      this.#failedAbove = Math.min(this.#failedAbove, this.#probing);
      this.#probing = this.#nextCandidate();
      this.#attempts = 0;
      if (this.#probing === undefined) return this.#complete(now);
    }
    if (this.#probing === undefined) return undefined;
    return this.#send(this.#probing, now);
  }

  /**
   * A PMTU_ACK with probe number `id` arrived: the path carried that probe's size. Unknown or
   * stale IDs are ignored.
   *
   * @example
   * ```ts
   * const prober = new PmtuProber();
   * prober.start(0);
   * const probe = prober.poll(0)!;
   * prober.onAck(probe.id, 0.3);
   * ```
   */
  onAck(id: number, now: number): void {
    const probe = this.#outstanding.get(id);
    if (probe === undefined) return;
    this.#outstanding.delete(id);
    const sample = now - probe.sentAt;
    this.#rtt = this.#rtt === undefined ? sample : 0.75 * this.#rtt + 0.25 * sample;
    if (probe.size > this.#size) this.#size = probe.size;
    if (probe.size !== this.#probing) return; // a late answer to an earlier size
    this.#outstanding.clear();
    this.#state = "searching";
    this.#attempts = 0;
    this.#probing = this.#nextCandidate();
    if (this.#probing === undefined) {
      this.#complete(now);
      return;
    }
    this.#deadline = now; // the next probe goes at once
  }

  #restart(now: number): void {
    this.#state = "base";
    this.#size = this.#base;
    this.#failedAbove = this.#max + 1;
    this.#commonIndex = 0;
    this.#outstanding.clear();
    this.#probing = this.#base;
    this.#attempts = 0;
    this.#rtt = undefined;
    this.#deadline = now;
  }

  #complete(now: number): undefined {
    this.#state = "search-complete";
    this.#probing = undefined;
    this.#outstanding.clear();
    this.#deadline = now + this.#raiseInterval;
    return undefined;
  }

  /** The next size to try above the confirmed one and below the smallest failure, if any. */
  #nextCandidate(): number | undefined {
    const low = this.#size;
    const high = this.#failedAbove; // exclusive
    if (high > this.#max) return this.#max > low ? this.#max : undefined;
    while (this.#commonIndex < COMMON_SIZES.length) {
      const size = COMMON_SIZES[this.#commonIndex++];
      if (size > low && size < high) return size;
    }
    if (high - low <= this.#granularity) return undefined;
    return Math.floor((low + high) / 2);
  }

  #send(size: number, now: number): PmtuProbe {
    const id = this.#nextId++;
    this.#outstanding.set(id, { size, sentAt: now });
    this.#attempts++;
    this.#probesSent++;
    const timeout = this.#rtt === undefined
      ? this.#initialTimeout
      : Math.max(this.#minTimeout, 3 * this.#rtt);
    this.#deadline = now + timeout;
    return { id, size };
  }
}

/** Bytes a TRANSPORT packet adds to its frame: 13-byte header and 16-byte tag. */
export const TRANSPORT_OVERHEAD_BYTES = 29;

/**
 * The PMTU_PROBE frame of `probe`, padded so that its sealed TRANSPORT packet is `probe.size`
 * bytes. Seal it with `SecureSession.sealLargeSync`.
 *
 * @example
 * ```ts
 * import type { SecureSession } from "../../shared/peer/session.ts";
 * declare const session: SecureSession;
 * declare const socket: { send(bytes: Uint8Array): void };
 * const prober = new PmtuProber();
 * prober.start(0);
 * const probe = prober.poll(0);
 * if (probe) socket.send(session.sealLargeSync(probeFrame(probe)));
 * ```
 */
export function probeFrame(probe: PmtuProbe): Uint8Array {
  return encodeFrame({
    type: FrameType.PmtuProbe,
    nonce: probeNonce(probe.id),
    size: probe.size - TRANSPORT_OVERHEAD_BYTES,
  });
}

/**
 * The answer to a PMTU_PROBE frame received (send it back the way the probe came, sealed as
 * usual: it is small).
 *
 * @example
 * ```ts
 * import { decodeFrame, FrameType } from "../../shared/peer/frames.ts";
 * import type { SecureSession } from "../../shared/peer/session.ts";
 * declare const session: SecureSession;
 * declare const plaintext: Uint8Array;
 * declare const send: (packet: Uint8Array) => void;
 * const frame = decodeFrame(plaintext);
 * if (frame.type === FrameType.PmtuProbe) send(session.sealSync(probeAnswer(frame)));
 * ```
 */
export function probeAnswer(frame: PmtuProbeFrame): Uint8Array {
  return encodeFrame({ type: FrameType.PmtuAck, nonce: frame.nonce, size: frame.size });
}

/**
 * The probe ID a PMTU_ACK answers (its nonce read as a number), for {@linkcode PmtuProber.onAck}.
 *
 * @example
 * ```ts
 * import { decodeFrame, FrameType } from "../../shared/peer/frames.ts";
 * declare const plaintext: Uint8Array;
 * const prober = new PmtuProber();
 * const frame = decodeFrame(plaintext);
 * if (frame.type === FrameType.PmtuAck) prober.onAck(probeIdOf(frame), performance.now());
 * ```
 */
export function probeIdOf(frame: PmtuAckFrame): number {
  const view = new DataView(frame.nonce.buffer, frame.nonce.byteOffset, frame.nonce.byteLength);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

function probeNonce(id: number): Uint8Array {
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  view.setUint32(0, Math.floor(id / 2 ** 32));
  view.setUint32(4, id >>> 0);
  return nonce;
}
