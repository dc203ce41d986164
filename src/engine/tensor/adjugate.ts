// The adjugate adj(A) (the transposed matrix of cofactors, A · adj(A) = det(A) I) of each matrix
// in a batch, from one LU factorisation, exact at singular matrices too: det's derivative is
// adj(A)ᵀ, finite everywhere, where det(A) · A⁻ᵀ is 0 · ∞ = NaN at a singular A.
//
// With P A = L U (partial pivoting, sign s = det P):
// - no zero pivot: adj(A) = det(A) A⁻¹;
// - one zero pivot u_kk (rank n − 1): adj(U) = c x yᵀ with c = Π_{i≠k} u_ii, x the null vector of
//   U and y its left null vector, both with 1 at k; then adj(A) = adj(U) adj(L) adj(Pᵀ) =
//   s c x (yᵀ L⁻¹ P), an outer product of A's right and left null vectors;
// - two or more zero pivots: 0. (Every cofactor vanishes at rank n − 2 or less. Partial pivoting
//   can also report two zero pivots at rank n − 1 when a whole column of A is zero, as in
//   [[0, 1], [0, 0]]; there this kernel answers 0 where the cofactors are not all 0.)

import { formatShape } from './tensor.js';
import type { Tensor } from './tensor.js';
import { inv, lu } from './linalg.js';

export function adjugate(a: Tensor): Tensor {
  const rank = a.shape.length;
  const n = a.shape[rank - 1]!;
  if (rank < 2 || a.shape[rank - 2] !== n) throw new RangeError(`adjugate: needs square matrices [..., n, n], got ${formatShape(a.shape)}`);
  const out = new Float64Array(a.data.length);
  if (out.length === 0) return { shape: [...a.shape], data: out };
  if (n === 1) {
    out.fill(1); // the adjugate of a 1×1 matrix is [1]
    return { shape: [...a.shape], data: out };
  }
  const factors = lu(a);
  const f = factors.lu.data;
  const batch = out.length / (n * n);
  let inverse: Tensor | undefined;
  for (let t = 0; t < batch; t++) {
    const o = t * n * n;
    let zeros = 0;
    let k = -1;
    let c = 1;
    for (let i = 0; i < n; i++) {
      const u = f[o + i * (n + 1)]!;
      if (u === 0) {
        zeros++;
        k = i;
      } else c *= u;
    }
    const sign = factors.signs[t]!;
    if (zeros === 0) {
      inverse ??= inv(a);
      const det = sign * c;
      for (let i = 0; i < n * n; i++) out[o + i] = det * inverse.data[o + i]!;
    } else if (zeros === 1) {
      rankOneCofactors(f, o, n, k, factors.pivots, t * n, sign * c, out);
    }
  }
  return { shape: [...a.shape], data: out };
}

/** out[o..] = scale · x wᵀ, with U x = 0, x_k = 1 and wᵀ = yᵀ L⁻¹ P, yᵀ U = 0, y_k = 1. */
function rankOneCofactors(f: Float64Array, o: number, n: number, k: number, pivots: Int32Array, po: number, scale: number, out: Float64Array): void {
  // x: zero below k (U's trailing block is non-singular), back substitution above it.
  const x = new Float64Array(n);
  x[k] = 1;
  for (let i = k - 1; i >= 0; i--) {
    let s = 0;
    for (let j = i + 1; j <= k; j++) s += f[o + i * n + j]! * x[j]!;
    x[i] = -s / f[o + i * (n + 1)]!;
  }
  // y: zero above k (U's leading block is non-singular), forward substitution with Uᵀ below it.
  const y = new Float64Array(n);
  y[k] = 1;
  for (let i = k + 1; i < n; i++) {
    let s = 0;
    for (let j = k; j < i; j++) s += y[j]! * f[o + j * n + i]!;
    y[i] = -s / f[o + i * (n + 1)]!;
  }
  // z = L⁻ᵀ y (L unit lower, stored below the diagonal), then w = Pᵀ z: the swaps undone in reverse.
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let j = i + 1; j < n; j++) s -= f[o + j * n + i]! * y[j]!;
    y[i] = s;
  }
  for (let j = n - 1; j >= 0; j--) {
    const p = pivots[po + j]!;
    if (p !== j) {
      const tmp = y[j]!;
      y[j] = y[p]!;
      y[p] = tmp;
    }
  }
  for (let i = 0; i < n; i++) {
    const xi = scale * x[i]!;
    for (let j = 0; j < n; j++) out[o + i * n + j] = xi * y[j]!;
  }
}
