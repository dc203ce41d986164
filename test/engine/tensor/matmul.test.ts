import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matmul } from '../../../src/engine/tensor/index.js';
import { withBackend } from '../../../src/engine/tensor/backend/index.js';
import type { KernelBackend } from '../../../src/engine/tensor/backend/index.js';
import { gemmDot, gemmIkj, gemmLoop, gemmPacked, jsKernels } from '../../../src/engine/tensor/backend/js.js';
import { expectClose, naiveMatmul, randomTensor, tensor } from './reference.js';

describe('matmul', () => {
  it('multiplies a known pair', () => {
    const a = tensor([2, 3], [1, 2, 3, 4, 5, 6]);
    const b = tensor([3, 2], [7, 8, 9, 10, 11, 12]);
    expect(matmul(a, b)).toEqual(tensor([2, 2], [58, 64, 139, 154]));
  });

  it('matches the naive triple loop across the kernel paths (tiny, narrow, packed, ragged edges)', () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1], [2, 3, 2], [3, 5, 1], [5, 7, 3], [4, 4, 4], [7, 9, 11], [16, 16, 16],
      [17, 33, 19], [64, 31, 6], [5, 100, 9], [33, 2, 65], [1, 50, 130],
    ];
    for (const [m, k, n] of shapes) {
      const a = randomTensor([m, k], m * 100 + k);
      const b = randomTensor([k, n], n * 100 + k);
      expectClose(matmul(a, b), naiveMatmul(a, b), 1e-13, 1e-14);
    }
  });

  it('every gemm loop gives the same bits (they all sum over k in the same order)', () => {
    const [m, k, n] = [13, 29, 10];
    const a = randomTensor([m, k], 1).data;
    const b = randomTensor([k, n], 2).data;
    const results = [gemmLoop, gemmIkj, gemmPacked, gemmDot].map((kernel) => {
      const c = new Float64Array(m * n).fill(NaN);
      kernel(m, n, k, a, 0, k, 1, b, 0, n, 1, c, 0, n);
      return c;
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[3]).toEqual(results[0]);
    // The same bits again with transposed operands read in place, and with offsets and padded rows.
    const at = new Float64Array(k * m);
    const bt = new Float64Array(n * k);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p]!;
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j]!;
    const c = new Float64Array(3 + m * (n + 2)).fill(NaN);
    jsKernels.gemm(true, true, m, n, k, 1, at, 0, m, bt, 0, k, 0, c, 3, n + 2);
    for (let i = 0; i < m; i++) expect(c.subarray(3 + i * (n + 2), 3 + i * (n + 2) + n)).toEqual(results[0]!.subarray(i * n, i * n + n));
  });

  it('broadcasts batch dims', () => {
    const cases: [number[], number[]][] = [
      [[3, 4, 5], [5, 2]],
      [[4, 5], [3, 5, 2]],
      [[2, 1, 4, 5], [3, 5, 6]],
      [[1, 4, 5], [3, 5, 4]],
      [[2, 3, 4, 5], [2, 3, 5, 4]],
    ];
    for (const [sa, sb] of cases) {
      const a = randomTensor(sa, sa.length);
      const b = randomTensor(sb, sb.length + 7);
      expectClose(matmul(a, b), naiveMatmul(a, b), 1e-13, 1e-14);
    }
  });

  it('handles zero-size dims: k = 0 gives zeros', () => {
    expect(matmul(tensor([2, 0], []), tensor([0, 3], []))).toEqual(tensor([2, 3], [0, 0, 0, 0, 0, 0]));
    expect(matmul(tensor([0, 2], []), randomTensor([2, 3], 1)).shape).toEqual([0, 3]);
    expect(matmul(tensor([0, 2, 2], []), randomTensor([2, 3], 1)).shape).toEqual([0, 2, 3]);
  });

  it('propagates NaN and Infinity as arithmetic does (no skipping of zeros)', () => {
    const a = tensor([1, 2], [0, 1]);
    const b = tensor([2, 1], [Infinity, 2]);
    expect(matmul(a, b).data[0]).toBeNaN();
  });

  it('rejects mismatched inner dims, low ranks and batch dims that do not broadcast', () => {
    expect(() => matmul(randomTensor([2, 3], 1), randomTensor([2, 3], 2))).toThrow(RangeError);
    expect(() => matmul(randomTensor([3], 1), randomTensor([3, 2], 2))).toThrow(RangeError);
    expect(() => matmul(randomTensor([2, 2, 3], 1), randomTensor([3, 3, 2], 2))).toThrow(RangeError);
  });

  it("takes NumPy's 1-D operands: a row on the left, a column on the right, that dimension dropped", () => {
    const m = tensor([2, 3], [1, 2, 3, 4, 5, 6]);
    const v = tensor([3], [1, -1, 2]);
    const w = tensor([2], [3, -2]);
    expect(matmul(m, v, 'right')).toEqual(tensor([2], [5, 11]));
    expect(matmul(w, m, 'left')).toEqual(tensor([3], [-5, -4, -3]));
    expect(matmul(v, v, 'both')).toEqual(tensor([], [6]));
    // Batch dims of a vector broadcast against those of a matrix, and vector · vector per batch.
    const stack = tensor([2, 3], [1, -1, 2, 0, 1, 0]);
    expect(matmul(m, stack, 'right')).toEqual(tensor([2, 2], [5, 11, 2, 5]));
    expect(matmul(stack, tensor([2, 1, 3], [1, 1, 1, 2, 2, 2]), 'both')).toEqual(tensor([2, 2], [2, 1, 4, 2]));
    expect(matmul(tensor([2, 1, 2], [3, -2, 1, 1]), tensor([3, 2, 3], Array.from({ length: 18 }, (_, i) => i)), 'left').shape).toEqual([2, 3, 3]);
  });

  it('gives a vector operand exactly the numbers of the promoted matrix product', () => {
    const a = randomTensor([4, 5], 3);
    const v = randomTensor([5], 4);
    const u = randomTensor([4], 5);
    expect(matmul(a, v, 'right').data).toEqual(matmul(a, tensor([5, 1], [...v.data])).data);
    expect(matmul(u, a, 'left').data).toEqual(matmul(tensor([1, 4], [...u.data]), a).data);
    expect(matmul(v, v, 'both').data).toEqual(matmul(tensor([1, 5], [...v.data]), tensor([5, 1], [...v.data])).data);
  });

  it('rejects a vector that does not fit, and a scalar as a vector', () => {
    expect(() => matmul(randomTensor([2, 3], 1), randomTensor([2], 2), 'right')).toThrow(RangeError);
    expect(() => matmul(randomTensor([2], 1), randomTensor([3, 2], 2), 'left')).toThrow(RangeError);
    expect(() => matmul(randomTensor([2], 1), randomTensor([3], 2), 'both')).toThrow(RangeError);
    expect(() => matmul(randomTensor([], 1), randomTensor([3], 2), 'both')).toThrow(RangeError);
  });

  it("calls the kernel backend's gemm once per matrix", () => {
    let calls = 0;
    const counting: KernelBackend = {
      ...jsKernels,
      gemm(...args) {
        calls++;
        jsKernels.gemm(...args);
      },
    };
    const product = withBackend(counting, () => matmul(randomTensor([3, 2, 2], 1), randomTensor([3, 2, 2], 2)));
    expect(calls).toBe(3);
    expect(product).toEqual(withBackend('js', () => matmul(randomTensor([3, 2, 2], 1), randomTensor([3, 2, 2], 2))));
  });

  it('matches the naive product on random shapes (property)', () => {
    const dim = fc.integer({ min: 0, max: 9 });
    fc.assert(
      fc.property(dim, dim, dim, fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }), fc.integer(), (m, k, n, batch, seed) => {
        const a = randomTensor([...batch, m, k], seed);
        const b = randomTensor([k, n], seed + 1);
        expectClose(matmul(a, b), naiveMatmul(a, b), 1e-13, 1e-14);
        const c = randomTensor([...batch.map(() => 1), k, n], seed + 2);
        expectClose(matmul(a, c), naiveMatmul(a, c), 1e-13, 1e-14);
      }),
      { numRuns: 150 },
    );
  });
});
