/**
 * Simulated processes: what a `kill -STOP` / `kill -CONT` / `kill -9` and a restart do to a
 * program running on virtual time.
 *
 * Why: the link bugs of issue 9 appear when one side stops for 25–60 s (a laptop lid, a stopped
 * process) or restarts, so the simulator must be able to stop a process's world without stopping
 * the network around it. A {@linkcode SimProcess} hands its program a {@linkcode Runtime} whose
 * timers, deferred callbacks and socket wake-ups are owned by the process:
 *
 * - **freeze**: nothing of the process runs — a timer that falls due is held, a socket keeps
 *   receiving into its bounded kernel queue (excess datagrams are dropped) but a waiting
 *   `receive`/`read`/`accept` is not woken; **thaw** runs what was held, in order, at the thaw
 *   time (as a stopped process does when continued);
 * - **kill**: every socket, connection and listener is closed as the kernel would (TCP peers get a
 *   FIN), every timer is cancelled, and no callback of the process ever runs again; pending
 *   promises are abandoned, not rejected, because a killed process runs no more code.
 *
 * @module
 */
import type { NetworkRuntime, Runtime, TimerId } from "../../shared/runtime/runtime.ts";
import type { VirtualRuntime } from "../virtual_runtime.ts";

/** What a process is doing. */
export type ProcessState = "running" | "frozen" | "dead";

/** A kernel resource owned by a process (a socket, a connection, a listener). */
export interface OwnedResource {
  /** Wakes readers that waited while the process was frozen. */
  resume(): void;
  /** Closes the resource on kill (silently: no waiting promise is settled). */
  abandon(): void;
}

/** The part of a process a kernel resource needs: whether it may wake it now. */
export interface ResourceOwner {
  /** The process state. */
  readonly state: ProcessState;
  /** Runs `callback` now if running, at thaw if frozen, never if dead. */
  post(callback: () => void): void;
  /** Registers a resource to resume on thaw and close on kill. */
  adopt(resource: OwnedResource): void;
  /** Forgets a closed resource. */
  release(resource: OwnedResource): void;
}

interface ProcessTimer {
  clockId: TimerId | undefined;
  callback: () => void;
}

/**
 * One run of a program on a simulated host (a restart is a new `SimProcess`).
 *
 * @example
 * ```ts
 * import { VirtualRuntime } from "../virtual_runtime.ts";
 *
 * const clock = new VirtualRuntime();
 * const process = new SimProcess("a", clock, () => clock.net);
 * let ticks = 0;
 * const tick = () => {
 *   ticks++;
 *   process.runtime.setTimer(tick, 1000);
 * };
 * process.runtime.setTimer(tick, 1000);
 * await clock.advance(2000); // ticks 1, 2
 * process.freeze();
 * await clock.advance(30_000); // nothing runs
 * process.thaw(); // the held tick runs now, once
 * await clock.advance(0);
 * process.kill();
 * await clock.advance(10_000);
 * console.log(ticks); // 3
 * ```
 */
export class SimProcess implements ResourceOwner {
  /** A name for traces. */
  readonly name: string;
  /** The runtime the program must use for everything. */
  readonly runtime: Runtime;
  #state: ProcessState = "running";
  readonly #clock: VirtualRuntime;
  readonly #timers = new Map<TimerId, ProcessTimer>();
  readonly #held: Array<{ timer?: TimerId; callback: () => void }> = [];
  readonly #resources = new Set<OwnedResource>();
  #nextTimer = 1;
  /** Called on each state change (for traces). */
  onStateChange: ((state: ProcessState) => void) | undefined;

  /**
   * @param name A name for traces.
   * @param clock The shared virtual clock and randomness.
   * @param net Builds this process's network view (it receives the process as the owner).
   */
  constructor(name: string, clock: VirtualRuntime, net: (owner: ResourceOwner) => NetworkRuntime) {
    this.name = name;
    this.#clock = clock;
    const network = net(this);
    this.runtime = {
      now: () => clock.now(),
      wallClock: () => clock.wallClock(),
      setTimer: (callback, delayMs) => this.#setTimer(callback, delayMs),
      clearTimer: (id) => this.#clearTimer(id),
      defer: (callback) => {
        if (this.#state !== "dead") clock.defer(() => this.post(callback));
      },
      random: () => clock.random(),
      randomBytes: (length) => clock.randomBytes(length),
      net: network,
    };
  }

  /** The process state. */
  get state(): ProcessState {
    return this.#state;
  }

  /** Timers set and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  post(callback: () => void): void {
    if (this.#state === "running") callback();
    else if (this.#state === "frozen") this.#held.push({ callback });
  }

  adopt(resource: OwnedResource): void {
    if (this.#state === "dead") {
      resource.abandon();
      return;
    }
    this.#resources.add(resource);
  }

  release(resource: OwnedResource): void {
    this.#resources.delete(resource);
  }

  /** Stops the process (`SIGSTOP`): nothing of it runs until {@linkcode SimProcess.thaw}. */
  freeze(): void {
    if (this.#state !== "running") return;
    this.#state = "frozen";
    this.onStateChange?.("frozen");
  }

  /** Continues a frozen process (`SIGCONT`): what fell due meanwhile runs now, in order. */
  thaw(): void {
    if (this.#state !== "frozen") return;
    this.#state = "running";
    this.onStateChange?.("running");
    const held = this.#held.splice(0);
    for (const entry of held) {
      // Each held callback runs as its own clock event, so promise chains settle in between.
      if (entry.timer === undefined) {
        this.#clock.setTimer(() => this.post(entry.callback), 0);
        continue;
      }
      const timer = this.#timers.get(entry.timer);
      if (timer) timer.clockId = this.#clock.setTimer(() => this.#fire(entry.timer!), 0);
    }
    // Readable sockets are noticed after the timers that fell due (one more event).
    this.#clock.setTimer(() => {
      if (this.#state !== "running") return;
      for (const resource of [...this.#resources]) resource.resume();
    }, 0);
  }

  /** Kills the process (`SIGKILL`): its sockets close and none of its code runs again. */
  kill(): void {
    if (this.#state === "dead") return;
    this.#state = "dead";
    this.onStateChange?.("dead");
    for (const timer of this.#timers.values()) this.#clock.clearTimer(timer.clockId);
    this.#timers.clear();
    this.#held.length = 0;
    for (const resource of [...this.#resources]) resource.abandon();
    this.#resources.clear();
  }

  #setTimer(callback: () => void, delayMs: number): TimerId {
    const id = this.#nextTimer++;
    if (this.#state === "dead") return id;
    const timer: ProcessTimer = { clockId: undefined, callback };
    this.#timers.set(id, timer);
    timer.clockId = this.#clock.setTimer(() => this.#fire(id), delayMs);
    return id;
  }

  #clearTimer(id: TimerId | undefined): void {
    if (id === undefined) return;
    const timer = this.#timers.get(id);
    if (!timer) return;
    this.#timers.delete(id);
    this.#clock.clearTimer(timer.clockId);
  }

  #fire(id: TimerId): void {
    const timer = this.#timers.get(id);
    if (!timer) return;
    timer.clockId = undefined;
    if (this.#state === "frozen") {
      this.#held.push({ timer: id, callback: timer.callback });
      return;
    }
    this.#timers.delete(id);
    if (this.#state === "running") timer.callback();
  }
}
