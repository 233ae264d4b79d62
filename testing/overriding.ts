/**
 * Test helper: an object with some members replaced and the rest taken from it, for wrapping a
 * runtime's network or one connection (pacing reads or writes) without copying its interface.
 *
 * @module
 */

/**
 * `target` with the members of `replaced` in place of its own; every other member comes from
 * `target` (methods bound to it).
 *
 * @example
 * ```ts
 * import { overriding } from "./overriding.ts";
 * const clock = { now: () => 1, label: () => "real" };
 * const fake = overriding(clock, { now: () => 42 });
 * console.log(fake.now(), fake.label()); // 42 "real"
 * ```
 */
export function overriding<T extends object>(target: T, replaced: Partial<T>): T {
  return new Proxy(target, {
    get(base, prop) {
      if (Object.hasOwn(replaced, prop)) return (replaced as Record<PropertyKey, unknown>)[prop];
      const value = Reflect.get(base, prop);
      return typeof value === "function" ? value.bind(base) : value;
    },
  });
}
