// The engine hands a request the function it asked for, through the request layer: asking again
// for the most recently used function skips its key and the cache lookup, so these pin that no
// two distinct functions (source, input names, input shapes) are ever handed the same prepared
// function, and that the shortcut never hands out one the cache has dropped.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { DEFAULT_LIMITS, type Prepared } from '../../src/engine/prepare.js';
import { planRequest, readPoint } from '../../src/service/request.js';

function preparedFor(engine: Engine, request: { expr?: string; graph?: never }, at: Record<string, unknown>): Prepared {
  return readPoint(engine, request, at, ['at']).prepared;
}

describe('the prepared function a request is handed', () => {
  it('is never shared by distinct functions, whatever was asked just before', () => {
    const engine = new Engine(DEFAULT_LIMITS);
    const cases: [string, Record<string, unknown>][] = [
      ['x * y', { x: 1, y: 2 }],
      ['x * y', { y: 2, x: 1 }], // the same names in another order: other inputs
      ['x * y', { x: [1, 2], y: 2 }], // another shape
      ['x * y', { x: [[1, 2]], y: 2 }],
      ['x * y', { x: [[1], [2]], y: 2 }],
      ['x * y', { x: [], y: 2 }],
      ['x * y', { x: 1, y: 2, z: 3 }], // one more input
      ['x * z', { x: 1, z: 2 }], // other names
      ['x*y', { x: 1, y: 2 }], // another source text
      ['y * x', { x: 1, y: 2 }],
    ];
    const seen = new Map<Prepared, number>();
    for (let round = 0; round < 3; round++) {
      // Each case straight after every other case (and after itself).
      for (let i = 0; i < cases.length; i++) {
        for (let j = 0; j < cases.length; j++) {
          preparedFor(engine, { expr: cases[j]![0] }, cases[j]![1]);
          const prepared = preparedFor(engine, { expr: cases[i]![0] }, cases[i]![1]);
          const owner = seen.get(prepared);
          expect(owner ?? i, `case ${i} after case ${j}`).toBe(i);
          seen.set(prepared, i);
        }
      }
    }
    // Every case was prepared once and then kept: one function each.
    expect(seen.size).toBe(cases.length);
    expect(engine.cachedFunctions).toBe(cases.length);
  });

  it('is the cached one when asked again, straight after or later', () => {
    const engine = new Engine(DEFAULT_LIMITS);
    const f = preparedFor(engine, { expr: 'sin(x)' }, { x: 0.5 });
    expect(preparedFor(engine, { expr: 'sin(x)' }, { x: 0.7 })).toBe(f);
    preparedFor(engine, { expr: 'cos(x)' }, { x: 0.5 });
    expect(preparedFor(engine, { expr: 'sin(x)' }, { x: 0.1 })).toBe(f);
    expect(engine.cachedFunctions).toBe(2);
  });

  it('keeps the least-recently-used order: the function asked for again is not the one evicted', () => {
    const engine = new Engine(DEFAULT_LIMITS, { cacheSize: 2 });
    const a = preparedFor(engine, { expr: '1 + x' }, { x: 1 });
    preparedFor(engine, { expr: '2 + x' }, { x: 1 });
    expect(preparedFor(engine, { expr: '1 + x' }, { x: 1 })).toBe(a);
    expect(preparedFor(engine, { expr: '1 + x' }, { x: 2 })).toBe(a);
    // c evicts b, the least recently used; a is still kept.
    preparedFor(engine, { expr: '3 + x' }, { x: 1 });
    expect(engine.cachedFunctions).toBe(2);
    expect(preparedFor(engine, { expr: '1 + x' }, { x: 1 })).toBe(a);
  });

  it('is never one the cache has dropped for its count', () => {
    const engine = new Engine(DEFAULT_LIMITS, { cacheSize: 1 });
    const a = preparedFor(engine, { expr: '1 + x' }, { x: 1 });
    preparedFor(engine, { expr: '2 + x' }, { x: 1 });
    const again = preparedFor(engine, { expr: '1 + x' }, { x: 1 });
    expect(again).not.toBe(a);
    expect(preparedFor(engine, { expr: '1 + x' }, { x: 1 })).toBe(again);
    expect(engine.cachedFunctions).toBe(1);
  });

  it('is never one the cache has dropped for its weight (too heavy to keep, or grown past the budget)', () => {
    const chain = 'a = x * 2\n' + 'a = prod(a) * a\n'.repeat(20) + 'sum(a)';
    const at = { x: [1, 2, 3] };
    // Too heavy to be kept at all: prepared afresh every time.
    const tiny = new Engine(DEFAULT_LIMITS, { cacheBytes: 1000 });
    const first = preparedFor(tiny, { expr: chain }, at);
    expect(preparedFor(tiny, { expr: chain }, at)).not.toBe(first);
    expect(tiny.cachedFunctions).toBe(0);
    // Kept while small, then dropped once its Hessian program makes it heavier than the budget.
    const small = new Engine(DEFAULT_LIMITS);
    planRequest(small, 'eval', { expr: chain, at });
    const budget = 3 * small.cachedBytes;
    const engine = new Engine(DEFAULT_LIMITS, { cacheBytes: budget });
    const kept = preparedFor(engine, { expr: chain }, at);
    expect(engine.cachedFunctions).toBe(1);
    planRequest(engine, 'hessian', { expr: chain, at });
    const after = preparedFor(engine, { expr: chain }, at);
    expect(after).not.toBe(kept);
    expect(engine.cachedBytes).toBeLessThanOrEqual(budget);
  });

  it('of a JSON graph is found by its key, whatever was asked just before', () => {
    const engine = new Engine(DEFAULT_LIMITS);
    const graph = (op: string) => ({ nodes: [{ id: 'y', op, args: ['x'] }], output: 'y' });
    const sin = readPoint(engine, { graph: graph('sin') }, { x: 1 }, ['at']).prepared;
    const cos = readPoint(engine, { graph: graph('cos') }, { x: 1 }, ['at']).prepared;
    expect(cos).not.toBe(sin);
    expect(readPoint(engine, { graph: graph('sin') }, { x: 2 }, ['at']).prepared).toBe(sin);
    expect(readPoint(engine, { graph: graph('sin') }, { x: [2] }, ['at']).prepared).not.toBe(sin);
    // An expression is never the graph's function, nor the other way round.
    expect(preparedFor(engine, { expr: 'sin(x)' }, { x: 1 })).not.toBe(sin);
    expect(readPoint(engine, { graph: graph('sin') }, { x: 1 }, ['at']).prepared).toBe(sin);
  });
});
