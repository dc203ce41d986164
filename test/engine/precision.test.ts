// The elementwise functions and their derivative rules against 50-digit references at the
// extremes (test/fixtures/precision/cases.json, written by generate.py next to it with mpmath).
// Values and first derivatives, in forward and reverse mode, within a few ulp of the correctly
// rounded reference; second derivatives (rules of rules) within a looser bound.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { grad, hessian, jvp, value } from '../../src/engine/ad/differentiate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Tensor } from '../../src/engine/tensor/tensor.js';

interface Case {
  function: string;
  expr: string;
  x: string;
  value: string;
  d1: string;
  d2: string;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/precision/cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** A double's position on the number line counted in ulps: adjacent doubles differ by 1, ±0 are both 0. */
function ordinal(v: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const bits = view.getBigInt64(0);
  return bits < 0n ? -(bits & 0x7fff_ffff_ffff_ffffn) : bits;
}

/** How many doubles apart `got` and `want` are (NaN is never close to anything). */
export function ulpDistance(got: number, want: number): number {
  if (Number.isNaN(got) || Number.isNaN(want)) return Infinity;
  const d = ordinal(got) - ordinal(want);
  return Number(d < 0n ? -d : d);
}

/** Value, first and second derivative of a case at its point, by the engine (forward and reverse). */
function evaluate(c: Case): { value: number; forward: number; reverse: number; second: number } {
  const engine = new Engine();
  const prepared = engine.prepare({ expr: c.expr }, [{ name: 'x', shape: [] }]);
  const at = new Map<string, Tensor>([['x', { shape: [], data: Float64Array.of(Number(c.x)) }]]);
  return {
    value: value(prepared, at).run().value.data[0]!,
    forward: jvp(prepared, at, new Map([['x', { shape: [], data: Float64Array.of(1) }]])).run().tangent.data[0]!,
    reverse: grad(prepared, at, ['x']).run().gradient.get('x')!.data[0]!,
    second: hessian(prepared, at, ['x']).run().hessian.get('x')!.get('x')!.data[0]!,
  };
}

const FIRST_ORDER_ULPS = 4;
/** Second derivatives combine several rounded steps of the rules of rules. */
const SECOND_ORDER_ULPS = 64;

describe('precision at the extremes against 50-digit references', () => {
  const byFunction = new Map<string, Case[]>();
  for (const c of fixtures.cases) byFunction.set(c.function, [...(byFunction.get(c.function) ?? []), c]);

  it('has cases for the functions whose rules were rewritten', () => {
    for (const f of ['expm1', 'tanh', 'sigmoid', 'softplus', 'log1p', 'asin', 'acos', 'logsumexp']) expect(byFunction.has(f)).toBe(true);
    expect(ulpDistance(1, 1 + Number.EPSILON)).toBe(1);
    expect(ulpDistance(-0, 5e-324)).toBe(1);
    expect(ulpDistance(-5e-324, 5e-324)).toBe(2);
  });

  it.each([...byFunction.keys()])('%s: values and first derivatives within 4 ulp, second derivatives within 64', (name) => {
    const misses: string[] = [];
    for (const c of byFunction.get(name)!) {
      const got = evaluate(c);
      const checks: [string, number, string, number][] = [
        ['value', got.value, c.value, FIRST_ORDER_ULPS],
        ['forward', got.forward, c.d1, FIRST_ORDER_ULPS],
        ['reverse', got.reverse, c.d1, FIRST_ORDER_ULPS],
        ['second', got.second, c.d2, SECOND_ORDER_ULPS],
      ];
      for (const [what, v, want, bound] of checks) {
        const ulps = ulpDistance(v, Number(want));
        if (ulps > bound) misses.push(`${name}'s ${what} at x = ${c.x}: ${v}, reference ${want} (${ulps} ulp)`);
      }
    }
    expect(misses).toEqual([]);
  });
});
