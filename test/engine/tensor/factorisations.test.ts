// Linear algebra that reuses factorisations (issue 11): transposes folded into products and
// solves instead of copied, and one LU per matrix per run whatever reads it (a solve and its
// adjoint's transposed solve, det and its adjugate, logdet and the inverse in its gradient).
// Kernels are checked against the plain operations on explicitly transposed copies, on every
// backend this machine has; factorisations are counted through a backend that wraps the selected one.

import { describe, expect, it } from 'vitest';
import { grad, value } from '../../../src/engine/ad/differentiate.js';
import { Engine } from '../../../src/engine/engine.js';
import { backendNamed, kernels, withBackend, type KernelBackend } from '../../../src/engine/tensor/backend/index.js';
import { permute } from '../../../src/engine/tensor/layout.js';
import { solve, triangularSolve } from '../../../src/engine/tensor/linalg.js';
import { matmul } from '../../../src/engine/tensor/matmul.js';
import type { Tensor } from '../../../src/engine/tensor/tensor.js';
import { expectClose, randomTensor } from './reference.js';

let seed = 1;

const swapLast = (x: Tensor): Tensor => permute(x, [...Array.from({ length: x.shape.length - 2 }, (_, i) => i), x.shape.length - 1, x.shape.length - 2]);

function available(): ('js' | 'openblas')[] {
  try {
    backendNamed('openblas');
    return ['js', 'openblas'];
  } catch {
    console.warn('OpenBLAS cannot be loaded here: the transposed kernels are tested on the JS backend only');
    return ['js'];
  }
}

/** A diagonally dominant batch of matrices (well conditioned). */
function dominant(shape: number[]): Tensor {
  const x = randomTensor(shape, seed++);
  const n = shape.at(-1)!;
  for (let o = 0; o < x.data.length; o += n * n) for (let i = 0; i < n; i++) x.data[o + i * (n + 1)]! += 2 * n;
  return x;
}

describe.each(available())('transposed operands on the %s backend', (backend) => {
  it.each([
    [[3, 4], [4, 5]],
    [[1, 7], [7, 1]],
    [[2, 3, 4], [4, 6]],
    [[3, 4], [2, 4, 6]],
    [[2, 1, 3, 4], [5, 4, 2]],
    [[40, 33], [33, 17]],
    [[64, 70], [70, 65]],
  ])('matmul(op(A) %j, op(B) %j) equals the product of transposed copies', (sa, sb) => {
        const a = randomTensor(sa, seed++);
    const b = randomTensor(sb, seed++);
    const want = matmul(a, b);
    withBackend(backend, () => {
      for (const [ta, tb] of [[true, false], [false, true], [true, true]] as const) {
        const got = matmul(ta ? swapLast(a) : a, tb ? swapLast(b) : b, 'none', ta, tb);
        expect(got.shape).toEqual(want.shape);
        expectClose(got, want, 1e-12);
      }
    });
  });

  it.each([
    [[4, 4], [4, 3]],
    [[2, 5, 5], [5, 2]],
    [[5, 5], [3, 5, 1]],
    [[30, 30], [30, 4]],
  ])('solve(A %j, B %j, transposed) solves Aᵀ X = B', (sa, sb) => {
        const a = dominant(sa);
    const b = randomTensor(sb, seed++);
    withBackend(backend, () => expectClose(solve(a, b, true), solve(swapLast(a), b), 1e-12));
  });

  it.each([true, false])('triangularSolve(T, B, lower=%s, transposed) solves Tᵀ X = B with the same triangle', (lower) => {
        const t = dominant([2, 6, 6]);
    const b = randomTensor([6, 3], seed++);
    withBackend(backend, () => expectClose(triangularSolve(t, b, lower, true), triangularSolve(swapLast(t), b, !lower), 1e-12));
  });
});

/** The selected backend, counting LU factorisations. */
function counting(): { backend: KernelBackend; factorisations: () => number } {
  const inner = kernels();
  let count = 0;
  const backend: KernelBackend = {
    name: inner.name,
    gemm: (...args) => inner.gemm(...args),
    potrf: (...args) => inner.potrf(...args),
    getrf: (...args) => (count++, inner.getrf(...args)),
    getrs: (...args) => inner.getrs(...args),
    trsm: (...args) => inner.trsm(...args),
    inverse: (...args) => (count++, inner.inverse(...args)),
  };
  return { backend, factorisations: () => count };
}

describe('one factorisation per matrix per run', () => {
  const engine = new Engine();
  const n = 6;
  const A = dominant([n, n]);
  const y = randomTensor([n], seed++);
  const inputs = new Map([
    ['A', A],
    ['y', y],
  ]);

  it.each([
    ['y @ inv(A) @ y', 'y.T A⁻¹ y, as parsed: (yᵀ A⁻¹) y'],
    ['y @ (inv(A) @ y)', 'yᵀ (A⁻¹ y)'],
    ['sum(solve(A, y))', 'a solve and its adjoint'],
    ['det(A)', "det and its gradient's adjugate"],
    ['logdet(A)', "logdet and its gradient's inverse"],
    ['det(A) + logdet(A) + y @ solve(A, y)', 'all of them on one matrix'],
  ])('%s (%s): value and gradient factor A once', (expr) => {
    const prepared = engine.prepare({ expr }, [
      { name: 'A', shape: [n, n] },
      { name: 'y', shape: [n] },
    ]);
    const { backend, factorisations } = counting();
    const g = grad(prepared, inputs, ['A', 'y']);
    const [first, again] = withBackend(backend, () => [g.run(), g.run()]);
    expect(factorisations()).toBe(2); // once in each run
    // Reused factors give the same numbers run after run (the derivatives themselves are checked
    // against finite differences by test/engine/ops/rules.test.ts).
    expect([...again.gradient.get('A')!.data]).toEqual([...first.gradient.get('A')!.data]);
    expect([...again.gradient.get('y')!.data]).toEqual([...first.gradient.get('y')!.data]);
  });

  it('a caller that changes its array between runs gets fresh factors (nothing is kept across runs)', () => {
    const prepared = engine.prepare({ expr: 'sum(solve(A, y))' }, [{ name: 'A', shape: [n, n] }, { name: 'y', shape: [n] }]);
    const m = { shape: [n, n], data: A.data.slice() };
    const planned = value(prepared, new Map([['A', m], ['y', y]]));
    const before = planned.run().value.data[0]!;
    for (let i = 0; i < n; i++) m.data[i * (n + 1)]! *= 2;
    const after = planned.run().value.data[0]!;
    const fresh = value(prepared, new Map([['A', { shape: [n, n], data: m.data.slice() }], ['y', y]])).run().value.data[0]!;
    expect(after).not.toBe(before);
    expect(after).toBe(fresh);
  });
});
