// A bounded least-recently-used map: prepared functions are kept here. Bounded by count and,
// optionally, by a total weight (the elements of the constants a prepared function holds), so a
// stream of requests with large constant tensors cannot fill memory.

export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(
    readonly capacity: number,
    readonly maxWeight = Infinity,
    private readonly weigh: (value: V) => number = () => 0,
  ) {}

  get(key: K): V | undefined {
    const entry = this.map.get(key);
    if (entry !== undefined) {
      this.map.delete(key);
      this.map.set(key, entry);
    }
    return entry?.value;
  }

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.total -= old.weight;
      this.map.delete(key);
    }
    const weight = this.weigh(value);
    // A value heavier than the whole budget is not kept at all.
    if (weight > this.maxWeight) return;
    this.map.set(key, { value, weight });
    this.total += weight;
    while (this.map.size > this.capacity || this.total > this.maxWeight) {
      const [oldest, entry] = this.map.entries().next().value as [K, { value: V; weight: number }];
      this.map.delete(oldest);
      this.total -= entry.weight;
    }
  }

  /**
   * Weigh `value` again where it is still kept under `key` (it grew or shrank), without changing
   * its place in the order; evicts the least recently used while over the budget.
   */
  reweigh(key: K, value: V): void {
    const entry = this.map.get(key);
    if (entry === undefined || entry.value !== value) return;
    const weight = this.weigh(value);
    if (weight === entry.weight) return;
    this.total += weight - entry.weight;
    entry.weight = weight;
    if (weight > this.maxWeight) {
      this.map.delete(key);
      this.total -= weight;
      return;
    }
    while (this.total > this.maxWeight) {
      const [oldest, first] = this.map.entries().next().value as [K, { value: V; weight: number }];
      this.map.delete(oldest);
      this.total -= first.weight;
    }
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.total;
  }
}
