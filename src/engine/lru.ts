// A bounded least-recently-used map: prepared functions are kept here. Bounded by count and,
// optionally, by a total weight (the bytes a prepared function holds), so a stream of requests
// with large constant tensors cannot fill memory. lru-cache does the bookkeeping; this wrapper
// keeps the engine's words (capacity, weight, reweigh) and lru-cache's rules in one place.

import { LRUCache } from 'lru-cache';

export class LruCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>> {
  private readonly entries: LRUCache<K, V>;
  private readonly sizeOf: (value: V) => number;

  /**
   * Weights count in whole units, at least one per entry (lru-cache sizes are positive integers),
   * and the budget in whole units, at least one: a budget of 0 keeps nothing weighing over 1.
   */
  constructor(
    readonly capacity: number,
    readonly maxWeight = Infinity,
    weigh: (value: V) => number = () => 0,
  ) {
    this.sizeOf = (value) => Math.max(1, Math.ceil(weigh(value)));
    const weighed = Number.isFinite(maxWeight) ? { maxSize: Math.max(1, Math.floor(maxWeight)), sizeCalculation: this.sizeOf } : {};
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
   * recently used while over the budget, and makes it the most recently used: lru-cache re-sizes an
   * entry only when it is set anew, which moves it there. Call this in the order the entries were
   * used (the engine re-weighs what was prepared since its last call, in order), and the order is
   * unchanged. An unchanged weight costs a lookup, not a removal and an insertion.
   */
  reweigh(key: K, value: V): void {
    const entry = this.entries.info(key);
    if (entry?.value !== value) return;
    if (entry.size === undefined || entry.size === this.sizeOf(value)) {
      this.entries.get(key);
      return;
    }
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
