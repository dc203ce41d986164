import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDUCE_KINDS, logsumexp, norm, pairwiseSum, reduce, sumToShape } from '../../../src/engine/tensor/index.js';
import type { ReduceKind } from '../../../src/engine/tensor/index.js';
import { expectClose, naiveReduce, randomTensor, tensor } from './reference.js';

const folds: Record<ReduceKind, [(acc: number, v: number) => number, number]> = {
  sum: [(acc, v) => acc + v, 0],
  prod: [(acc, v) => acc * v, 1],
  max: [(acc, v) => (Number.isNaN(acc) || Number.isNaN(v) ? NaN : v > acc ? v : acc), -Infinity],
  min: [(acc, v) => (Number.isNaN(acc) || Number.isNaN(v) ? NaN : v < acc ? v : acc), Infinity],
};

function naive(kind: ReduceKind, x: Parameters<typeof reduce>[1], axes: number[]) {
  const [f, init] = folds[kind];
  return naiveReduce(f, init, x, axes);
}

/** Every sorted subset of 0..rank-1. */
function subsets(rank: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << rank; mask++) out.push([...Array(rank).keys()].filter((d) => mask & (1 << d)));
  return out;
}

describe('reduce', () => {
  it.each(REDUCE_KINDS)('%s over every subset of axes of [2, 3, 1, 4] matches a naive fold', (kind) => {
    const x = randomTensor([2, 3, 1, 4], 42);
    for (const axes of subsets(4)) expectClose(reduce(kind, x, axes), naive(kind, x, axes), 1e-13, 1e-15);
  });

  it.each(REDUCE_KINDS)('%s along the last, first and all axes of a large matrix', (kind) => {
    const x = randomTensor([37, 129], 7);
    for (const axes of [[1], [0], [0, 1]]) expectClose(reduce(kind, x, axes), naive(kind, x, axes), 1e-12, 1e-13);
  });

  it('removes the reduced axes from the shape; empty axes copies', () => {
    const x = randomTensor([2, 3, 4], 1);
    expect(reduce('sum', x, [1]).shape).toEqual([2, 4]);
    expect(reduce('sum', x, [0, 1, 2]).shape).toEqual([]);
    const copy = reduce('max', x, []);
    expect(copy).toEqual(x);
    expect(copy.data).not.toBe(x.data);
    expect(reduce('sum', tensor([], [5]), [])).toEqual({ shape: [], data: Float64Array.of(5) });
  });

  it('empty reductions give the identity; empty kept axes give an empty result', () => {
    const x = tensor([2, 0, 3], []);
    expect([...reduce('sum', x, [1]).data]).toEqual([0, 0, 0, 0, 0, 0]);
    expect([...reduce('prod', x, [1]).data]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...reduce('max', x, [0, 1, 2]).data]).toEqual([-Infinity]);
    expect([...reduce('min', x, [1, 2]).data]).toEqual([Infinity, Infinity]);
    expect(reduce('sum', x, [2])).toEqual({ shape: [2, 0], data: new Float64Array(0) });
  });

  it('propagates NaN in max and min, keeps a lone -0 in sum', () => {
    const x = tensor([2, 3], [1, NaN, 3, 4, 5, 6]);
    expect([...reduce('max', x, [1]).data]).toEqual([NaN, 6]);
    expect([...reduce('min', x, [0]).data]).toEqual([1, NaN, 3]);
    expect(Object.is(reduce('sum', tensor([1], [-0]), [0]).data[0], -0)).toBe(true);
  });

  it('rejects unsorted, repeated or out-of-range axes', () => {
    const x = randomTensor([2, 3], 1);
    expect(() => reduce('sum', x, [1, 0])).toThrow(RangeError);
    expect(() => reduce('sum', x, [0, 0])).toThrow(RangeError);
    expect(() => reduce('sum', x, [2])).toThrow(RangeError);
    expect(() => reduce('sum', x, [-1])).toThrow(RangeError);
  });

  it('matches a naive fold on random shapes and axes (property)', () => {
    const cases = fc
      .array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 5 })
      .chain((shape) => fc.tuple(fc.constant(shape), fc.subarray([...shape.keys()]), fc.constantFrom(...REDUCE_KINDS), fc.integer()));
    fc.assert(
      fc.property(cases, ([shape, axes, kind, seed]) => {
        const x = randomTensor(shape, seed);
        expectClose(reduce(kind, x, axes), naive(kind, x, axes), 1e-13, 1e-14);
      }),
      { numRuns: 300 },
    );
  });
});

/** NumPy's pairwise_sum_DOUBLE (numpy/_core/src/umath/loops_utils.h.src), recursive, as written there. */
function numpyPairwise(x: Float64Array, start: number, n: number): number {
  if (n < 8) {
    let res = -0;
    for (let i = 0; i < n; i++) res += x[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = Array.from({ length: 8 }, (_, j) => x[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += x[start + i + j]!;
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += x[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpyPairwise(x, start, n2) + numpyPairwise(x, start + n2, n - n2);
}

describe('pairwise summation', () => {
  it("gives NumPy's pairwise sum bit for bit, at every length to 300 and at long odd lengths", () => {
    const x = randomTensor([200_003], 5).data;
    for (let n = 0; n <= 300; n++) expect(pairwiseSum(x, 3, n)).toBe(numpyPairwise(x, 3, n));
    for (const n of [1000, 1023, 4097, 65_537, 200_000]) expect(pairwiseSum(x, 3, n)).toBe(numpyPairwise(x, 3, n));
  });

  it('combines the runs of an output pairwise: a binary counter over them, read in memory order', () => {
    // Perfect pairwise trees over the first 2^k runs, the next 2^j, ..., added smallest first.
    const counterSum = (values: number[]): number => {
      const tree = (lo: number, hi: number): number => (hi - lo === 1 ? values[lo]! : tree(lo, (lo + hi) / 2) + tree((lo + hi) / 2, hi));
      const chunks: number[] = [];
      let lo = 0;
      for (let bit = 2 ** Math.floor(Math.log2(values.length)); bit >= 1; bit /= 2) {
        if ((values.length & bit) === 0) continue;
        chunks.push(tree(lo, lo + bit));
        lo += bit;
      }
      return chunks.reduceRight((total, chunk) => chunk + total, -0);
    };
    const rows = randomTensor([1000, 3], 11);
    const columns = reduce('sum', rows, [0]).data;
    for (let j = 0; j < 3; j++) expect(columns[j]).toBe(counterSum(Array.from({ length: 1000 }, (_, i) => rows.data[3 * i + j]!)));
    const x = randomTensor([37, 2, 129], 12);
    const sums = reduce('sum', x, [0, 2]).data;
    for (let b = 0; b < 2; b++) {
      expect(sums[b]).toBe(counterSum(Array.from({ length: 37 }, (_, a) => pairwiseSum(x.data, (a * 2 + b) * 129, 129))));
    }
  });

  it('sums 10⁶ × 0.1 to 100000 within 1e-14 relative (a running sum is off by 1e-11), over every layout', () => {
    const tenths = tensor([1_000_000], new Array<number>(1_000_000).fill(0.1));
    let running = 0;
    for (const v of tenths.data) running += v;
    expect(Math.abs(running - 1e5) / 1e5).toBeGreaterThan(1e-12);
    expect(Math.abs(reduce('sum', tenths, [0]).data[0]! - 1e5) / 1e5).toBeLessThan(1e-14);
    // A reduced axis outside a kept one (the reverse pass's sum over a broadcast batch axis).
    const columns = reduce('sum', { shape: [10_000, 2, 50], data: tenths.data }, [0, 2]).data;
    for (const c of columns) expect(Math.abs(c - 5e4) / 5e4).toBeLessThan(1e-14);
    const rows = reduce('sum', { shape: [100_000, 10], data: tenths.data }, [0]).data;
    for (const r of rows) expect(Math.abs(r - 1e4) / 1e4).toBeLessThan(1e-14);
  });
});

describe('logsumexp', () => {
  function naiveLse(x: Parameters<typeof reduce>[1], axes: number[]) {
    const s = naiveReduce((acc, v) => acc + Math.exp(v), 0, x, axes);
    return { shape: s.shape, data: s.data.map(Math.log) };
  }

  it('matches log(sum(exp)) for moderate values, over several axis sets', () => {
    const x = randomTensor([3, 4, 5], 3);
    for (const axes of subsets(3)) expectClose(logsumexp(x, axes), naiveLse(x, axes), 1e-13, 1e-14);
  });

  it('does not overflow or underflow', () => {
    const x = tensor([2, 2], [1000, 1000, -1000, -1000]);
    expectClose(logsumexp(x, [1]), tensor([2], [1000 + Math.LN2, -1000 + Math.LN2]), 1e-15, 0);
  });

  it('keeps the digits of terms far below the largest (log1p of the rest, not log of 1 + rest)', () => {
    // ln(1 + e^-40) = e^-40 (1 - e^-40/2 + ...): log(1 + e^-40) would round it to 0.
    expect(logsumexp(tensor([2], [0, -40]), [0]).data[0]! / Math.exp(-40)).toBeCloseTo(1, 15);
    expect(logsumexp(tensor([2, 2], [-40, 0, 3, 3]), [1]).data[0]! / Math.exp(-40)).toBeCloseTo(1, 15);
    expect(logsumexp(tensor([2, 2], [-40, 0, 3, 3]), [1]).data[1]).toBe(3 + Math.log1p(1));
    expect(logsumexp(tensor([2, 2], [0, 3, -40, 3]), [0]).data[0]! / Math.exp(-40)).toBeCloseTo(1, 15);
  });

  it('handles infinities, NaN and empty reductions', () => {
    const x = tensor([4, 2], [-Infinity, -Infinity, Infinity, 1, Infinity, -Infinity, NaN, 0]);
    expect([...logsumexp(x, [1]).data]).toEqual([-Infinity, Infinity, Infinity, NaN]);
    expect([...logsumexp(tensor([0, 2], []), [0]).data]).toEqual([-Infinity, -Infinity]);
    expect([...logsumexp(tensor([2], [3, -Infinity]), []).data]).toEqual([3, -Infinity]);
  });
});

describe('norm', () => {
  it('is √(Σ x²) bit for bit where the sum of squares is ordinary', () => {
    const x = randomTensor([3, 4, 5], 21);
    for (const axes of [[2], [0, 2], [0, 1, 2], [1]]) {
      const squares = tensor(x.shape, [...x.data].map((v) => v * v));
      const want = reduce('sum', squares, axes).data.map(Math.sqrt);
      expect([...norm(x, axes).data]).toEqual([...want]);
    }
  });

  it('neither overflows nor underflows (the largest magnitude is factored out, as dnrm2 scales)', () => {
    const x = tensor([5, 2], [1e200, 1e200, 1e-200, 1e-200, 3e-320, 4e-320, 1e308, -1e308, 1.5e308, 1.5e308]);
    const got = [...norm(x, [1]).data];
    expect(got[0]! / (Math.SQRT2 * 1e200)).toBeCloseTo(1, 15);
    expect(got[1]! / (Math.SQRT2 * 1e-200)).toBeCloseTo(1, 15);
    expect(got[2]! / 5e-320).toBeCloseTo(1, 2); // subnormal inputs: as exact as they are
    expect(got[3]! / (Math.SQRT2 * 1e307)).toBeCloseTo(10, 14);
    expect(got[4]).toBe(Infinity); // √2·1.5e308 is past the largest double
    expect(norm(tensor([2], [1e308, 1e307]), [0]).data[0]! / Math.hypot(1e308, 1e307)).toBeCloseTo(1, 15);
  });

  it('keeps NaN, gives Infinity for an infinite element, 0 for zeros and for nothing', () => {
    expect(norm(tensor([2], [NaN, 1e300]), [0]).data[0]).toBeNaN();
    expect(norm(tensor([2], [Infinity, 1e-300]), [0]).data[0]).toBe(Infinity);
    expect(norm(tensor([2], [-Infinity, NaN]), [0]).data[0]).toBeNaN();
    expect(Object.is(norm(tensor([2], [0, -0]), [0]).data[0], 0)).toBe(true);
    expect(norm(tensor([0, 3], []), [0]).data).toEqual(new Float64Array(3));
  });
});

describe('sumToShape', () => {
  it('sums away broadcast axes', () => {
    const x = randomTensor([2, 3, 4], 9);
    expectClose(sumToShape(x, [3, 1]), { shape: [3, 1], data: naive('sum', x, [0, 2]).data }, 1e-14, 1e-15);
    expectClose(sumToShape(x, [4]), naive('sum', x, [0, 1]), 1e-14, 1e-15);
    expectClose(sumToShape(x, []), naive('sum', x, [0, 1, 2]), 1e-14, 1e-15);
    expect(sumToShape(x, [2, 3, 4])).toEqual(x);
    expect(() => sumToShape(x, [2, 4])).toThrow(RangeError);
  });
});
