/**
 * A growable ring buffer: O(1) push at the back, shift from the front, and indexed access.
 *
 * @module
 */

/**
 * A double-ended FIFO with O(1) indexed access, used for the channel's send queue and its window
 * of in-flight fragments.
 *
 * @example
 * ```ts
 * const ring = new RingBuffer<number>();
 * ring.push(1);
 * ring.push(2);
 * console.log(ring.at(1), ring.shift(), ring.length); // 2 1 1
 * ```
 */
export class RingBuffer<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #length = 0;

  /**
   * Number of items held.
   *
   * @example
   * ```ts
   * console.log(new RingBuffer<number>().length); // 0
   * ```
   */
  get length(): number {
    return this.#length;
  }

  /**
   * Appends an item at the back.
   *
   * @example
   * ```ts
   * const ring = new RingBuffer<string>();
   * ring.push("a");
   * ```
   */
  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  /**
   * Inserts an item at the front.
   *
   * @example
   * ```ts
   * const ring = new RingBuffer<string>();
   * ring.push("b");
   * ring.unshift("a");
   * console.log(ring.at(0)); // "a"
   * ```
   */
  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#items.length - 1);
    this.#items[this.#head] = item;
    this.#length++;
  }

  /**
   * Removes and returns the front item, or `undefined` when empty.
   *
   * @example
   * ```ts
   * const ring = new RingBuffer<string>();
   * ring.push("a");
   * console.log(ring.shift()); // "a"
   * ```
   */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    return item;
  }

  /**
   * The item at `index` from the front (0 is the front), or `undefined` out of range.
   *
   * @example
   * ```ts
   * const ring = new RingBuffer<string>();
   * ring.push("a");
   * console.log(ring.at(0), ring.at(1)); // "a" undefined
   * ```
   */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#length) return undefined;
    return this.#items[(this.#head + index) & (this.#items.length - 1)];
  }

  /**
   * Removes every item.
   *
   * @example
   * ```ts
   * const ring = new RingBuffer<string>();
   * ring.push("a");
   * ring.clear();
   * console.log(ring.length); // 0
   * ```
   */
  clear(): void {
    this.#items = new Array(16);
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const items = new Array<T | undefined>(this.#items.length * 2);
    for (let i = 0; i < this.#length; i++) {
      items[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    }
    this.#items = items;
    this.#head = 0;
  }
}
