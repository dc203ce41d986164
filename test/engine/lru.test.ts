import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/engine/lru.js';
import { Engine } from '../../src/engine/engine.js';
import { planRequest } from '../../src/service/request.js';
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

  it('weighs a kept value again, evicting the least recently used past the budget', () => {
    const weights = new Map([['a', 2], ['b', 2], ['c', 2]]);
    const cache = new LruCache<string, string>(10, 7, (v) => weights.get(v)!);
    for (const k of ['a', 'b', 'c']) cache.set(k, k);
    weights.set('c', 3);
    cache.reweigh('c', 'c');
    expect([cache.size, cache.weight]).toEqual([3, 7]);
    // b grows: a (the least recently used) goes.
    weights.set('b', 4);
    cache.reweigh('b', 'b');
    expect([cache.get('a'), cache.weight]).toEqual([undefined, 7]);
    weights.set('b', 9);
    cache.reweigh('b', 'b');
    expect([cache.get('b'), cache.get('c'), cache.weight]).toEqual([undefined, 'c', 3]);
    // A value no longer kept, or another value under the key, is left alone.
    cache.reweigh('b', 'b');
    cache.reweigh('c', 'other');
    expect([cache.size, cache.weight]).toEqual([1, 3]);
  });

  it('makes a re-weighed entry the most recently used, so weighing again in the order of use keeps that order', () => {
    const alone = new LruCache<string, string>(3, 100, () => 1);
    for (const k of ['a', 'b', 'c']) alone.set(k, k);
    alone.reweigh('a', 'a');
    alone.set('d', 'd');
    expect(['a', 'b', 'c', 'd'].map((k) => alone.get(k))).toEqual(['a', undefined, 'c', 'd']);

    const cache = new LruCache<string, string>(3, 100, () => 1);
    for (const k of ['a', 'b', 'c']) cache.set(k, k);
    cache.get('a');
    // Used since the last weighing, in this order: b (set), c (set), a (get).
    for (const k of ['b', 'c', 'a']) cache.reweigh(k, k);
    cache.set('d', 'd');
    expect(['a', 'b', 'c', 'd'].map((k) => cache.get(k))).toEqual(['a', undefined, 'c', 'd']);
  });

  it('counts weights in whole units, at least one an entry, so a budget of 0 keeps nothing heavier than 1', () => {
    const cache = new LruCache<string, number>(10, 0, (v) => v);
    cache.set('light', 0.5);
    cache.set('heavy', 2);
    expect([cache.get('light'), cache.get('heavy'), cache.weight]).toEqual([0.5, undefined, 1]);
    expect(new LruCache<string, number>(2).weight).toBe(0);
  });

  it('weighs prepared functions by the bytes they hold, constants included', () => {
    const constant = (k: number) => `[${Array.from({ length: 90 }, () => k).join(', ')}]`;
    const one = new Engine(DEFAULT_LIMITS);
    planRequest(one, 'eval', { expr: `sum(x * ${constant(0)})`, at: { x: 1 } }).run();
    const weight = one.cachedBytes;
    // 8 bytes per constant element at least.
    expect(weight).toBeGreaterThan(90 * 8);
    const engine = new Engine(DEFAULT_LIMITS, { cacheBytes: Math.floor(4.5 * weight) });
    for (let k = 1; k <= 6; k++) planRequest(engine, 'eval', { expr: `sum(x * ${constant(k)})`, at: { x: 1 } }).run();
    expect(engine.cachedFunctions).toBe(4);
    expect(engine.cachedBytes).toBeLessThanOrEqual(4.5 * weight);
  });

  it('weighs a function again once its derivative programs are built', () => {
    const engine = new Engine(DEFAULT_LIMITS);
    const request = { expr: 'sum(tanh(W @ x)^2)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] } };
    planRequest(engine, 'eval', request);
    const valueOnly = engine.cachedBytes;
    planRequest(engine, 'hessian', request);
    expect(engine.cachedBytes).toBeGreaterThan(2 * valueOnly);
  });

  it('keeps no function heavier than its whole budget', () => {
    const engine = new Engine(DEFAULT_LIMITS, { cacheBytes: 10_000 });
    planRequest(engine, 'hessian', { expr: 'a = x * 2\n' + 'a = prod(a) * a\n'.repeat(20) + 'sum(a)', at: { x: [1, 2, 3] } });
    expect(engine.cachedFunctions).toBe(0);
    expect(engine.cachedBytes).toBe(0);
  });

  it('estimates the heap a prepared function really holds within a factor of three (typically 0.8–1.2; the heap is noisy under load)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const engine = new Engine(DEFAULT_LIMITS, { cacheSize: 1000, cacheBytes: 1e12 });
    const chain = (k: number) => `a = x * ${k}\n` + 'a = prod(a) * a\n'.repeat(40) + 'sum(a)';
    const small = (k: number) => `sum(tanh(W @ x + ${k})^2) * ${k}`;
    const cases = [
      { make: chain, op: 'hessian', at: { x: [1, 2, 3] }, runs: 1, atLeast: 1 / 3 },
      { make: chain, op: 'grad', at: { x: [1, 2, 3] }, runs: 3, atLeast: 1 / 3 },
      // Many small functions whose compiled source is identical (their constants are arrays, not
      // text) hold less than estimated: V8 shares compiled code of identical source, and small
      // nodes are lighter than NODE_BYTES. Measured 0.11–0.49 here once plans got fused loops, and
      // 0.05 once in a whole CI run (the heap of a shared test process is noisy); an over-estimate
      // only makes the cache evict sooner, so the bound below is wider for them.
      { make: small, op: 'grad', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, runs: 3, atLeast: 1 / 40 },
    ] as const;
    for (const [i, { make, op, at, runs, atLeast }] of cases.entries()) {
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      const estimateBefore = engine.cachedBytes;
      for (let k = 0; k < 30; k++) for (let r = 0; r < runs; r++) planRequest(engine, op, { expr: make(1000 * i + k), at }).run();
      gc();
      const ratio = (process.memoryUsage().heapUsed - heapBefore) / (engine.cachedBytes - estimateBefore);
      expect(ratio, `${op} case ${i}`).toBeGreaterThan(atLeast);
      expect(ratio, `${op} case ${i}`).toBeLessThan(3);
    }
  });
});
