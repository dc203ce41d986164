// A bounded least-recently-used map: prepared functions are kept here. Bounded by count and,
// optionally, by a total weight (the bytes a prepared function holds), so a stream of requests
// with large constant tensors cannot fill memory. lru-cache does the bookkeeping; this wrapper
// keeps the engine's words (capacity, weight, reweigh) and lru-cache's rules in one place.

import { LRUCache } from 'lru-cache';

export class LruCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>> {
  private readonly entries: LRUCache<K, V>;

  /**
   * Weights count in whole units, at least one per entry (lru-cache sizes are positive integers),
   * and the budget in whole units, at least one: a budget of 0 keeps nothing weighing over 1.
   */
  constructor(
    readonly capacity: number,
    readonly maxWeight = Infinity,
    weigh: (value: V) => number = () => 0,
  ) {
    const weighed = Number.isFinite(maxWeight)
      ? { maxSize: Math.max(1, Math.floor(maxWeight)), sizeCalculation: (value: V) => Math.max(1, Math.ceil(weigh(value))) }
      : {};
    this.entries = new LRUCache<K, V>({ max: capacity, ...weighed });
  }

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Keeps `value` as the most recently used; a value heavier than the whole budget is not kept at all. */
  set(key: K, value: V): void {
    this.entries.set(key, value);
  }

  /**
   * Weighs `value` again where it is still kept under `key` (it grew or shrank), evicting the least
   * recently used while over the budget. lru-cache re-sizes an entry only when it is set anew, which
   * makes it the most recently used: call this in the order the entries were used (the engine
   * re-weighs what was prepared since its last call, in order), and the order is unchanged.
   */
  reweigh(key: K, value: V): void {
    if (this.entries.peek(key) !== value) return;
    this.entries.delete(key);
    this.entries.set(key, value);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The total weight kept, in whole units (0 for a cache bounded by count only). */
  get weight(): number {
    return this.entries.calculatedSize ?? 0;
  }
}
