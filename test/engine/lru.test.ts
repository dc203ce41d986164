import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/engine/lru.js';
import { Engine } from '../../src/engine/operations.js';
import { DEFAULT_LIMITS } from '../../src/engine/prepare.js';

describe('the prepared-function cache', () => {
  it('evicts the least recently used beyond its capacity', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.get('a');
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([1, undefined, 3]);
  });

  it('evicts by weight, and keeps nothing heavier than its budget', () => {
    const cache = new LruCache<string, number>(10, 10, (v) => v);
    cache.set('a', 4);
    cache.set('b', 4);
    cache.set('c', 4);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.weight]).toEqual([undefined, 4, 4, 8]);
    cache.set('huge', 11);
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it('weighs prepared functions by the constants they hold', () => {
    const engine = new Engine({ ...DEFAULT_LIMITS, maxTensorElements: 100 });
    const constant = (k: number) => `[${Array.from({ length: 90 }, () => k).join(', ')}]`;
    for (let k = 0; k < 6; k++) engine.plan('eval', { expr: `sum(x * ${constant(k)})`, at: { x: 1 } }).run();
    // 4 · 100 elements of budget: at most four functions of 90 constant elements each.
    expect(engine.cachedFunctions).toBe(4);
  });
});
