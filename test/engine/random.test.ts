// The seeded generator against the moments of its distributions: every bound is four standard
// errors of the estimate over N draws (the seeds are fixed, so a pass is a pass on every machine).

import { describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';

const N = 100_000;

function draws(draw: () => number, n = N): Float64Array {
  return Float64Array.from({ length: n }, draw);
}

function mean(xs: Float64Array): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

function variance(xs: Float64Array): number {
  const m = mean(xs);
  return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
}

/** Correlation of (xs[i], ys[i]). */
function correlation(xs: Float64Array, ys: Float64Array): number {
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  for (let i = 0; i < xs.length; i++) sxy += (xs[i]! - mx) * (ys[i]! - my);
  return sxy / (xs.length - 1) / Math.sqrt(variance(xs) * variance(ys));
}

describe('Random', () => {
  it('draws uniforms on [0, 1) with mean 1/2 and variance 1/12, uncorrelated one to the next', () => {
    const random = new Random(1);
    const u = draws(() => random.uniform());
    expect(u.every((x) => x >= 0 && x < 1)).toBe(true);
    // Var U = 1/12; Var (U - 1/2)^2 = 1/80 - 1/144 = 1/180.
    expect(Math.abs(mean(u) - 1 / 2)).toBeLessThan(4 * Math.sqrt(1 / 12 / N));
    expect(Math.abs(variance(u) - 1 / 12)).toBeLessThan(4 * Math.sqrt(1 / 180 / N));
    expect(Math.abs(correlation(u.subarray(0, N - 1), u.subarray(1)))).toBeLessThan(4 / Math.sqrt(N));
    // Each tenth of [0, 1) holds a tenth of the draws (binomial standard error).
    for (let k = 0; k < 10; k++) {
      const share = u.filter((x) => x >= k / 10 && x < (k + 1) / 10).length / N;
      expect(Math.abs(share - 0.1), `tenth ${k}`).toBeLessThan(4 * Math.sqrt(0.1 * 0.9 / N));
    }
  });

  it('draws normals with mean 0, variance 1 and 95% within ±1.96', () => {
    const random = new Random(2);
    const z = draws(() => random.normal());
    // Var Z^2 = E Z^4 - 1 = 2.
    expect(Math.abs(mean(z))).toBeLessThan(4 / Math.sqrt(N));
    expect(Math.abs(variance(z) - 1)).toBeLessThan(4 * Math.sqrt(2 / N));
    const inside = z.filter((x) => Math.abs(x) < 1.959964).length / N;
    expect(Math.abs(inside - 0.95)).toBeLessThan(4 * Math.sqrt(0.95 * 0.05 / N));
    // The two normals of one Box–Muller pair are independent: uncorrelated.
    const pairs = z.length / 2;
    const first = Float64Array.from({ length: pairs }, (_, i) => z[2 * i]!);
    const second = Float64Array.from({ length: pairs }, (_, i) => z[2 * i + 1]!);
    expect(Math.abs(correlation(first, second))).toBeLessThan(4 / Math.sqrt(pairs));
  });

  it('draws Rademacher signs, each half the time', () => {
    const random = new Random(3);
    const s = draws(() => random.rademacher());
    expect(s.every((x) => x === 1 || x === -1)).toBe(true);
    expect(Math.abs(mean(s))).toBeLessThan(4 / Math.sqrt(N));
  });

  it('gives the same sequence for the same seed', () => {
    const a = new Random(42);
    const b = new Random(42);
    const sequence = (r: Random) => [r.uniform(), r.normal(), r.rademacher(), r.uniform(), r.normal(), r.normal()];
    expect(sequence(a)).toEqual(sequence(b));
  });

  it('gives unrelated sequences for different seeds, nearby ones included', () => {
    const seeds = 10_000;
    const first = Float64Array.from({ length: seeds }, (_, seed) => new Random(seed).uniform());
    const second = Float64Array.from({ length: seeds }, (_, seed) => new Random(seed + 1).uniform());
    expect(new Set(first).size).toBe(seeds);
    // The first draws over consecutive seeds are spread like uniforms, and seed s says nothing of s + 1.
    expect(Math.abs(mean(first) - 1 / 2)).toBeLessThan(4 * Math.sqrt(1 / 12 / seeds));
    expect(Math.abs(variance(first) - 1 / 12)).toBeLessThan(4 * Math.sqrt(1 / 180 / seeds));
    expect(Math.abs(correlation(first, second))).toBeLessThan(4 / Math.sqrt(seeds));
    // Large seeds are read as 32-bit words: 2^32 + 5 is 5, and -1 is 2^32 - 1.
    expect(new Random(2 ** 32 + 5).uniform()).toBe(new Random(5).uniform());
    expect(new Random(-1).uniform()).toBe(new Random(2 ** 32 - 1).uniform());
  });
});
