/**
 * A binary min-heap of timed events ordered by (deadline, insertion order), for the virtual
 * clock. Why: the simulator runs thousands of fault schedules, each with tens of thousands of
 * timers (client ticks, datagram deliveries, retransmissions); a linear scan for the earliest
 * timer made dispatch O(n) per event. Push and pop are O(log n); cancellation is lazy (a
 * cancelled entry is skipped when it reaches the top), so `clearTimer` is O(1).
 *
 * Ties in deadline fire in the order they were pushed: that is what makes a run reproducible
 * from its seed.
 *
 * @module
 */

/** One entry of an {@linkcode EventHeap}. */
export interface HeapEvent {
  /** Deadline (virtual ms). */
  at: number;
  /** Insertion sequence number (tie-breaker); assigned by {@linkcode EventHeap.push}. */
  order: number;
  /** Set to skip the entry lazily. */
  cancelled: boolean;
}

function before(x: HeapEvent, y: HeapEvent): boolean {
  return x.at < y.at || (x.at === y.at && x.order < y.order);
}

/**
 * Min-heap by deadline, ties in insertion order, with lazy cancellation.
 *
 * @example
 * ```ts
 * const heap = new EventHeap<HeapEvent & { name: string }>();
 * heap.push({ at: 20, order: 0, cancelled: false, name: "b" });
 * const a = heap.push({ at: 10, order: 0, cancelled: false, name: "a" });
 * heap.push({ at: 20, order: 0, cancelled: false, name: "c" });
 * heap.cancel(a);
 * console.log(heap.pop()?.name, heap.pop()?.name, heap.size); // b c 0
 * ```
 */
export class EventHeap<T extends HeapEvent> {
  readonly #items: T[] = [];
  #order = 0;
  #live = 0;

  /** Entries pushed and neither popped nor cancelled. */
  get size(): number {
    return this.#live;
  }

  /** Adds `event` (its `order` is overwritten) and returns it. */
  push(event: T): T {
    event.order = this.#order++;
    event.cancelled = false;
    const items = this.#items;
    let i = items.length;
    items.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(items[parent], event)) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = event;
    this.#live++;
    return event;
  }

  /** Marks `event` cancelled (no-op if already cancelled or popped). */
  cancel(event: T): void {
    if (event.cancelled) return;
    event.cancelled = true;
    this.#live--;
  }

  /** The earliest live entry without removing it. */
  peek(): T | undefined {
    this.#dropCancelled();
    return this.#items[0];
  }

  /** Removes and returns the earliest live entry. */
  pop(): T | undefined {
    this.#dropCancelled();
    const top = this.#items[0];
    if (top === undefined) return undefined;
    this.#removeTop();
    top.cancelled = true; // popped: a later cancel() is a no-op
    this.#live--;
    return top;
  }

  #dropCancelled(): void {
    while (this.#items.length > 0 && this.#items[0].cancelled) this.#removeTop();
  }

  #removeTop(): void {
    const items = this.#items;
    const last = items.pop() as T;
    if (items.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && before(items[right], items[left]) ? right : left;
      if (before(last, items[child])) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
  }
}
