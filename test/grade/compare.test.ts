// The pieces grading is built on: PrairieLearn's closeness rule, the hints, the seeded points.

import { describe, expect, it } from 'vitest';
import { factorHint, firstMismatch, formatNumber, isClose } from '../../src/grade/compare.js';
import { drawPoint, partRandom } from '../../src/grade/points.js';

const PL = { rtol: 1e-2, atol: 1e-8 };
const scalar = (v: number) => ({ shape: [], data: Float64Array.of(v) });
const vector = (...v: number[]) => ({ shape: [v.length], data: Float64Array.from(v) });

describe('grading comparisons', () => {
  it("is NumPy's isclose, relative to the expected value, as PrairieLearn grades numbers", () => {
    expect(isClose(0.964, Math.tanh(2), PL)).toBe(true);
    expect(isClose(0.14, 0.14130164970632886, PL)).toBe(true);
    expect(isClose(-0.283, -0.28593809880029314, PL)).toBe(false);
    // Relative to the expected value, so not symmetric: 0.99 is within 1% of 1, 1 is not within 1% of 0.99.
    expect(isClose(0.99, 1, PL)).toBe(true);
    expect(isClose(1, 0.99, PL)).toBe(false);
    expect(isClose(1e-9, 0, PL)).toBe(true);
    expect(isClose(1e-7, 0, PL)).toBe(false);
    expect(isClose(NaN, NaN, PL)).toBe(true);
    expect(isClose(Infinity, Infinity, PL)).toBe(true);
    expect(isClose(1e308, Infinity, PL)).toBe(false);
  });

  it('names the first differing element, a scalar standing for a constant tensor when allowed', () => {
    expect(firstMismatch(vector(1, 2, 3), vector(1, 2.5, 3), PL)).toEqual({ index: [1], expected: 2.5, given: 2 });
    expect(firstMismatch(scalar(1), vector(1, 1), PL, true)).toBeUndefined();
    expect(firstMismatch(scalar(1), vector(1, 2), PL, true)).toEqual({ index: [1], expected: 2, given: 1 });
    expect(formatNumber(0.14130164970632886)).toBe('0.141302');
    expect(formatNumber(-1.874001704964713)).toBe('-1.874');
  });

  it('hints at a wrong sign or a constant factor, and only then', () => {
    const tight = { rtol: 1e-6, atol: 1e-9 };
    const samples = (k: number) => [1, 2, 3].map((x) => ({ given: scalar(k * 2 * x), expected: scalar(2 * x) }));
    expect(factorHint(samples(-1), tight)).toBe('It is the negative of the right answer: check the sign.');
    expect(factorHint(samples(0.5), tight)).toBe('It is 0.5 times the right answer everywhere: a constant factor is off.');
    expect(factorHint(samples(1), tight)).toBeUndefined();
    expect(factorHint([{ given: scalar(1), expected: scalar(2) }, { given: scalar(1), expected: scalar(3) }], tight)).toBeUndefined();
  });

  it("draws each part's points from the seed and the part's name alone", () => {
    const inputs = [{ name: 'x', shape: [] }, { name: 'W', shape: [2, 2] }];
    const ranges = { x: [0, 1] as const, W: [-5, -4] as const };
    const draw = (seed: number, part: string) => drawPoint(partRandom(seed, part), inputs, ranges);
    expect(draw(0, 'derivative.x')).toEqual(draw(0, 'derivative.x'));
    expect(draw(0, 'derivative.x')).not.toEqual(draw(0, 'derivative.W'));
    expect(draw(0, 'derivative.x')).not.toEqual(draw(1, 'derivative.x'));
    const point = draw(3, 'derivative.W');
    expect(point.get('x')!.data[0]).toBeGreaterThanOrEqual(0);
    expect(point.get('x')!.data[0]).toBeLessThan(1);
    expect(point.get('W')!.shape).toEqual([2, 2]);
    for (const v of point.get('W')!.data) expect(v >= -5 && v < -4).toBe(true);
  });
});
