import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, diagEmbed, diagPart, eye, permute, stridedScatter, stridedSlice } from '../../../src/engine/tensor/index.js';
import { count, dot, expectClose, naivePermute, naiveSlice, randomTensor, ravel, tensor, unravel } from './reference.js';

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => [...Array(n).keys()].map((i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

describe('permute', () => {
  it('matches a naive index walk for every permutation of a rank-4 tensor', () => {
    const x = randomTensor([2, 3, 1, 4], 1);
    for (const perm of permutations(4)) expectClose(permute(x, perm), naivePermute(x, perm), 0, 0);
  });

  it('transposes batches of matrices larger than a tile (the last-two-axes fast path)', () => {
    for (const shape of [[70, 45], [3, 33, 65], [2, 1, 5]]) {
      const x = randomTensor(shape, 2);
      const perm = [...shape.keys()];
      perm.splice(-2, 2, shape.length - 1, shape.length - 2);
      expectClose(permute(x, perm), naivePermute(x, perm), 0, 0);
    }
  });

  it('copies for the identity, handles scalars and zero-size dims', () => {
    const x = randomTensor([2, 3], 3);
    const y = permute(x, [0, 1]);
    expect(y).toEqual(x);
    expect(y.data).not.toBe(x.data);
    expect(permute(tensor([], [4]), [])).toEqual(tensor([], [4]));
    expect(permute(tensor([0, 3], []), [1, 0]).shape).toEqual([3, 0]);
    expect(permute(tensor([2, 0, 3], []), [2, 0, 1]).shape).toEqual([3, 2, 0]);
  });

  it('rejects a non-permutation', () => {
    const x = randomTensor([2, 3], 3);
    expect(() => permute(x, [0])).toThrow(RangeError);
    expect(() => permute(x, [0, 0])).toThrow(RangeError);
    expect(() => permute(x, [0, 2])).toThrow(RangeError);
  });
});

describe('stridedSlice', () => {
  const x = tensor([3, 4], [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);

  it('takes positive and negative steps on trailing axes', () => {
    expect([...stridedSlice(x, [1], [2], [2]).data]).toEqual([1, 3, 11, 13, 21, 23]);
    expect(stridedSlice(x, [1], [2], [2]).shape).toEqual([3, 2]);
    expect([...stridedSlice(x, [3], [-1], [4]).data]).toEqual([3, 2, 1, 0, 13, 12, 11, 10, 23, 22, 21, 20]);
    expect([...stridedSlice(x, [2, 3], [-1, -2], [2, 2]).data]).toEqual([23, 21, 13, 11]);
    expect([...stridedSlice(x, [2, 3], [-2, -3], [2, 2]).data]).toEqual([23, 20, 3, 0]);
    // A whole reversed tensor (collapses to one run with stride -1).
    expect([...stridedSlice(x, [2, 3], [-1, -1], [3, 4]).data]).toEqual([...x.data].reverse());
  });

  it('allows zero counts and k = 0', () => {
    expect(stridedSlice(x, [0], [1], [0])).toEqual({ shape: [3, 0], data: new Float64Array(0) });
    expect(stridedSlice(x, [5, 0], [1, 1], [0, 4]).shape).toEqual([0, 4]);
    const all = stridedSlice(x, [], [], []);
    expect(all).toEqual(x);
    expect(all.data).not.toBe(x.data);
  });

  it('rejects out-of-range slices and zero steps', () => {
    expect(() => stridedSlice(x, [0], [0], [1])).toThrow(RangeError);
    expect(() => stridedSlice(x, [3], [1], [2])).toThrow(RangeError);
    expect(() => stridedSlice(x, [1], [-1], [3])).toThrow(RangeError);
    expect(() => stridedSlice(x, [0, 0, 0], [1, 1, 1], [1, 1, 1])).toThrow(RangeError);
  });
});

describe('stridedScatter', () => {
  it('places values at the strided positions, zeros elsewhere', () => {
    const g = tensor([2, 2], [1, 2, 3, 4]);
    const out = stridedScatter(g, [3], [2], [-2]);
    expect(out).toEqual(tensor([2, 3], [2, 0, 1, 4, 0, 3]));
    expect(stridedScatter(tensor([0], []), [3], [0], [1])).toEqual(tensor([3], [0, 0, 0]));
  });

  it('is the adjoint of stridedSlice and matches a naive slice (property)', () => {
    const cases = fc
      .tuple(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 2 }),
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: 6 }), fc.nat(), fc.integer({ min: -3, max: 3 }).filter((s) => s !== 0), fc.nat()),
          { minLength: 0, maxLength: 3 },
        ),
        fc.integer(),
      )
      .map(([lead, axes, seed]) => {
        // For each sliced axis: a size, a start inside it, a step, and a count that fits.
        const sizes = axes.map(([size]) => size);
        const starts = axes.map(([size, s]) => s % size);
        const steps = axes.map(([, , step]) => step);
        const counts = axes.map(([size, s, step, c], i) => {
          const start = starts[i]!;
          const room = step > 0 ? Math.floor((size - 1 - start) / step) + 1 : Math.floor(start / -step) + 1;
          return c % (room + 1);
        });
        return { shape: [...lead, ...sizes], sizes, starts, steps, counts, seed };
      });
    fc.assert(
      fc.property(cases, ({ shape, sizes, starts, steps, counts, seed }) => {
        const x = randomTensor(shape, seed);
        const y = stridedSlice(x, starts, steps, counts);
        expectClose(y, naiveSlice(x, starts, steps, counts), 0, 0);
        const g = randomTensor(y.shape, seed + 1);
        const back = stridedScatter(g, sizes, starts, steps);
        expect(back.shape).toEqual(shape);
        // <slice(x), g> = <x, scatter(g)>
        expect(dot(y.data, g.data)).toBeCloseTo(dot(x.data, back.data), 12);
        // Everything outside the slice is zero: scatter then slice gives g back exactly.
        expect(stridedSlice(back, starts, steps, counts)).toEqual(g);
        const nonzero = [...back.data].filter((v) => v !== 0).length;
        expect(nonzero).toBe([...g.data].filter((v) => v !== 0).length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('concat', () => {
  it('joins along the first, middle and last axes', () => {
    const a = randomTensor([2, 3, 2], 1);
    const b = randomTensor([2, 1, 2], 2);
    const c = randomTensor([2, 0, 2], 3);
    const got = concat([a, b, c], 1);
    expect(got.shape).toEqual([2, 4, 2]);
    for (let i = 0; i < count(got.shape); i++) {
      const [p, q, r] = unravel(i, got.shape) as [number, number, number];
      const want = q < 3 ? a.data[ravel([p, q, r], a.shape)] : b.data[ravel([p, q - 3, r], b.shape)];
      expect(got.data[i]).toBe(want);
    }
    expect([...concat([tensor([2], [1, 2]), tensor([1], [3])], 0).data]).toEqual([1, 2, 3]);
    const wide = concat([randomTensor([2, 100], 4), randomTensor([2, 3], 5)], 1);
    expect(wide.shape).toEqual([2, 103]);
    expect(wide.data[100]).toBe(randomTensor([2, 3], 5).data[0]);
    expect(wide.data[103 + 100]).toBe(randomTensor([2, 3], 5).data[3]);
  });

  it('rejects mismatched shapes and bad axes', () => {
    expect(() => concat([], 0)).toThrow(RangeError);
    expect(() => concat([randomTensor([2, 3], 1), randomTensor([3, 3], 1)], 1)).toThrow(RangeError);
    expect(() => concat([randomTensor([2], 1)], 1)).toThrow(RangeError);
  });
});

describe('diagonals and eye', () => {
  it('diagPart takes the main diagonal of a batch of rectangular matrices', () => {
    const x = tensor([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(diagPart(x)).toEqual(tensor([2, 2], [1, 5, 7, 11]));
    expect(diagPart(tensor([3, 1], [1, 2, 3]))).toEqual(tensor([1], [1]));
    expect(diagPart(tensor([0, 2, 2], [])).shape).toEqual([0, 2]);
  });

  it('diagEmbed puts a batch of vectors on diagonals', () => {
    expect(diagEmbed(tensor([2, 2], [1, 2, 3, 4]))).toEqual(tensor([2, 2, 2], [1, 0, 0, 2, 3, 0, 0, 4]));
    expect(diagPart(diagEmbed(randomTensor([3, 4], 1)))).toEqual(randomTensor([3, 4], 1));
    expect(diagEmbed(tensor([0], []))).toEqual(tensor([0, 0], []));
  });

  it('eye', () => {
    expect(eye(3)).toEqual(tensor([3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]));
    expect(eye(0)).toEqual(tensor([0, 0], []));
    expect(() => eye(-1)).toThrow(RangeError);
  });
});
