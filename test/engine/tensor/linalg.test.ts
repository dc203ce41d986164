import { describe, expect, it } from 'vitest';
import {
  cholesky,
  det,
  eye,
  inv,
  logAbsDet,
  lu,
  matmul,
  permute,
  solve,
  triangularSolve,
} from '../../../src/engine/tensor/index.js';
import type { Tensor } from '../../../src/engine/tensor/index.js';
import { expectClose, naiveMatmul, randomTensor, tensor } from './reference.js';

/** A well-conditioned random matrix batch: random + n I. */
function wellConditioned(shape: number[], seed: number): Tensor {
  const x = randomTensor(shape, seed);
  const n = shape[shape.length - 1]!;
  for (let o = 0; o < x.data.length; o += n * n) for (let i = 0; i < n; i++) x.data[o + i * (n + 1)]! += n;
  return x;
}

/** A random symmetric positive definite batch: B Bᵀ + n I. */
function spd(shape: number[], seed: number): Tensor {
  const b = randomTensor(shape, seed);
  const n = shape[shape.length - 1]!;
  const bt = permute(b, [...shape.keys()].map((d) => (d < shape.length - 2 ? d : 2 * shape.length - 3 - d)));
  const a = naiveMatmul(b, bt);
  for (let o = 0; o < a.data.length; o += n * n) for (let i = 0; i < n; i++) a.data[o + i * (n + 1)]! += n;
  return a;
}

function identityBatch(shape: number[]): Tensor {
  const n = shape[shape.length - 1]!;
  const data = new Float64Array(shape.reduce((p, d) => p * d, 1));
  for (let o = 0; o < data.length; o += n * n) for (let i = 0; i < n; i++) data[o + i * (n + 1)] = 1;
  return { shape, data };
}

describe('lu', () => {
  it('P A = L U', () => {
    const a = randomTensor([6, 6], 3);
    const { lu: factors, pivots, signs } = lu(a);
    const n = 6;
    const l = new Float64Array(n * n);
    const u = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const v = factors.data[i * n + j]!;
        if (j < i) l[i * n + j] = v;
        else u[i * n + j] = v;
      }
      l[i * n + i] = 1;
    }
    const pa = a.data.slice();
    let sign = 1;
    for (let j = 0; j < n; j++) {
      const p = pivots[j]!;
      if (p === j) continue;
      sign = -sign;
      for (let c = 0; c < n; c++) [pa[j * n + c], pa[p * n + c]] = [pa[p * n + c]!, pa[j * n + c]!];
    }
    expect(signs[0]).toBe(sign);
    expectClose(naiveMatmul(tensor([n, n], [...l]), tensor([n, n], [...u])), tensor([n, n], [...pa]), 1e-13, 1e-14);
  });
});

describe('inv', () => {
  it('inverts a 2x2 by the closed form', () => {
    const a = tensor([2, 2], [4, 7, 2, 6]);
    expectClose(inv(a), tensor([2, 2], [0.6, -0.7, -0.2, 0.4]), 1e-14, 1e-15);
  });

  it('A inv(A) = I for a batch, including pivoting (zero leading entry)', () => {
    const a = wellConditioned([3, 7, 7], 5);
    expectClose(naiveMatmul(a, inv(a)), identityBatch([3, 7, 7]), 1e-12, 1e-13);
    const p = tensor([3, 3], [0, 1, 2, 1, 0, 3, 4, -3, 8]);
    expectClose(inv(p), tensor([3, 3], [-4.5, 7, -1.5, -2, 4, -1, 1.5, -2, 0.5]), 1e-13, 1e-14);
  });

  it('a singular matrix gives non-finite entries, not an exception', () => {
    const s = inv(tensor([2, 2], [1, 2, 2, 4]));
    expect(s.data.some((v) => !Number.isFinite(v))).toBe(true);
    expect(inv(tensor([0, 0], []))).toEqual(tensor([0, 0], []));
  });

  it('rejects non-square input', () => {
    expect(() => inv(randomTensor([2, 3], 1))).toThrow(RangeError);
    expect(() => inv(randomTensor([3], 1))).toThrow(RangeError);
  });
});

describe('solve', () => {
  it('solve(A, A x) = x, with broadcast batch dims', () => {
    const a = wellConditioned([2, 1, 5, 5], 7);
    const x = randomTensor([3, 5, 2], 8);
    const b = naiveMatmul(a, x);
    const got = solve(a, b);
    expect(got.shape).toEqual([2, 3, 5, 2]);
    expectClose(got, naiveMatmul(identityBatch([2, 1, 5, 5]), x), 1e-12, 1e-13);
    // One A, many right-hand sides in a batch.
    const a1 = wellConditioned([4, 4], 9);
    const x1 = randomTensor([3, 4, 1], 10);
    expectClose(solve(a1, matmul(a1, x1)), x1, 1e-12, 1e-13);
  });

  it('a singular system gives Infinity/NaN, not an exception', () => {
    const got = solve(tensor([2, 2], [1, 1, 1, 1]), tensor([2, 1], [1, 2]));
    expect(got.data.some((v) => !Number.isFinite(v))).toBe(true);
  });

  it('rejects a right-hand side of the wrong height', () => {
    expect(() => solve(eye(3), randomTensor([2, 1], 1))).toThrow(RangeError);
    expect(() => solve(eye(3), randomTensor([3], 1))).toThrow(RangeError);
  });
});

describe('det and logAbsDet', () => {
  it('det of a triangular matrix is the product of its diagonal', () => {
    const t = tensor([3, 3], [2, 0, 0, 5, -3, 0, 7, 1, 0.5]);
    expect(det(t).data[0]).toBeCloseTo(-3, 14);
    const u = tensor([3, 3], [1.5, 9, -4, 0, 2, 3, 0, 0, -2]);
    expect(det(u).data[0]).toBeCloseTo(-6, 14);
  });

  it('det(A B) = det(A) det(B), batched; shape drops the matrix dims', () => {
    const a = randomTensor([4, 5, 5], 11);
    const b = randomTensor([4, 5, 5], 12);
    const dab = det(naiveMatmul(a, b));
    expect(dab.shape).toEqual([4]);
    const da = det(a).data;
    const db = det(b).data;
    dab.data.forEach((v, t) => expect(v / (da[t]! * db[t]!)).toBeCloseTo(1, 10));
  });

  it('closed forms, sign of the permutation, singular and empty matrices', () => {
    expect(det(tensor([2, 2], [3, 8, 4, 6])).data[0]).toBeCloseTo(-14, 13);
    expect(det(tensor([2, 2], [0, 1, 1, 0])).data[0]).toBe(-1);
    expect(det(tensor([3, 3], [1, 2, 3, 2, 4, 6, 1, 0, 1])).data[0]).toBe(0);
    expect(det(tensor([0, 0], [])).data[0]).toBe(1);
  });

  it('logAbsDet = log |det|, -Infinity when singular, no overflow for large n', () => {
    const a = randomTensor([3, 6, 6], 13);
    const lad = logAbsDet(a);
    det(a).data.forEach((d, t) => expect(lad.data[t]).toBeCloseTo(Math.log(Math.abs(d)), 12));
    expect(logAbsDet(tensor([2, 2], [1, 2, 2, 4])).data[0]).toBe(-Infinity);
    const big = { shape: [200, 200], data: new Float64Array(200 * 200) };
    for (let i = 0; i < 200; i++) big.data[i * 201] = 1e10;
    expect(det(big).data[0]).toBe(Infinity);
    expect(logAbsDet(big).data[0]).toBeCloseTo(200 * Math.log(1e10), 10);
  });
});

describe('cholesky', () => {
  it('L Lᵀ reconstructs a random SPD batch; L is lower triangular with a positive diagonal', () => {
    const a = spd([3, 6, 6], 21);
    const l = cholesky(a);
    const lt = permute(l, [0, 2, 1]);
    expectClose(naiveMatmul(l, lt), a, 1e-12, 1e-13);
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 6; i++) {
        expect(l.data[t * 36 + i * 7]).toBeGreaterThan(0);
        for (let j = i + 1; j < 6; j++) expect(l.data[t * 36 + i * 6 + j]).toBe(0);
      }
    }
  });

  it('reads only the lower triangle', () => {
    const a = tensor([2, 2], [4, 999, 2, 5]);
    expectClose(cholesky(a), tensor([2, 2], [2, 0, 1, 2]), 1e-15, 0);
  });

  it('a matrix that is not positive definite gives NaN from the first failing pivot on', () => {
    const a = tensor([3, 3], [4, 0, 0, 2, 5, 0, 1, 3, -5]);
    const l = cholesky(a).data;
    expect([l[0], l[3], l[4], l[6], l[7]]).toEqual([2, 1, 2, 0.5, 1.25]);
    // Pivot 2: -5 - 0.5² - 1.25² < 0.
    expect(l[8]).toBeNaN();
    const b = tensor([2, 2], [-1, 0, 1, 1]);
    const lb = cholesky(b).data;
    expect(lb[0]).toBeNaN();
    expect(lb[2]).toBeNaN();
    expect(lb[3]).toBeNaN();
  });
});

describe('triangularSolve', () => {
  it('solves lower and upper systems, reading one triangle', () => {
    const l = cholesky(spd([5, 5], 31));
    const x = randomTensor([2, 5, 3], 32);
    expectClose(triangularSolve(l, matmul(l, x), true), x, 1e-12, 1e-13);
    const u = permute(l, [1, 0]);
    const noisy = { shape: l.shape, data: l.data.map((v, i) => (i % 5 > Math.floor(i / 5) ? 123 : v)) };
    expectClose(triangularSolve(noisy, matmul(l, x), true), x, 1e-12, 1e-13);
    expectClose(triangularSolve(u, matmul(u, x), false), x, 1e-12, 1e-13);
  });
});
