// Dense linear algebra on batches of square matrices [..., n, n]: LU with partial pivoting
// (the building block of inv, solve, det, logAbsDet), Cholesky, and triangular solves.
//
// Nothing here throws on a singular or indefinite matrix: a zero pivot divides as IEEE
// arithmetic says (Infinity/NaN), and the engine reports non-finite values as warnings.

import { broadcastShapes, formatShape, sizeOf } from './tensor.js';
import type { Tensor } from './tensor.js';
import { advanceMany, broadcastStrides } from './strided.js';

/** n for a batch of square matrices [..., n, n], or a RangeError. */
function squareSize(what: string, a: Tensor): number {
  const rank = a.shape.length;
  const n = a.shape[rank - 1];
  if (rank < 2 || n === undefined || a.shape[rank - 2] !== n) {
    throw new RangeError(`${what}: needs square matrices [..., n, n], got ${formatShape(a.shape)}`);
  }
  return n;
}

/**
 * LU factorisation with partial pivoting of the n×n matrix at lu[o..], in place: P A = L U with
 * L unit lower (stored below the diagonal) and U upper. pivots[po + j] is the row swapped with
 * row j at step j (LAPACK's ipiv, 0-based). Returns the permutation's sign (±1).
 * A column with no non-zero pivot is skipped (its multipliers stay 0), so a singular matrix
 * gets an exactly zero U diagonal entry, as in LAPACK's getrf.
 */
export function luFactorInPlace(lu: Float64Array, o: number, n: number, pivots: Int32Array, po: number): number {
  let sign = 1;
  for (let j = 0; j < n; j++) {
    // Partial pivoting: the largest |entry| on or below the diagonal in column j.
    let p = j;
    let best = Math.abs(lu[o + j * n + j]!);
    for (let i = j + 1; i < n; i++) {
      const v = Math.abs(lu[o + i * n + j]!);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    pivots[po + j] = p;
    if (p !== j) {
      sign = -sign;
      const rj = o + j * n;
      const rp = o + p * n;
      for (let c = 0; c < n; c++) {
        const t = lu[rj + c]!;
        lu[rj + c] = lu[rp + c]!;
        lu[rp + c] = t;
      }
    }
    const rj = o + j * n;
    const pivot = lu[rj + j]!;
    if (pivot === 0) continue;
    for (let i = j + 1; i < n; i++) {
      const ri = o + i * n;
      const l = lu[ri + j]! / pivot;
      lu[ri + j] = l;
      for (let c = j + 1; c < n; c++) lu[ri + c] = lu[ri + c]! - l * lu[rj + c]!;
    }
  }
  return sign;
}

/**
 * Solve A X = B in place for the r right-hand-side columns x[xo..] (n×r, row-major), given the
 * factors from luFactorInPlace. Row operations walk whole rows of X, contiguous in memory.
 */
export function luSolveInPlace(
  lu: Float64Array,
  o: number,
  n: number,
  pivots: Int32Array,
  po: number,
  x: Float64Array,
  xo: number,
  r: number,
): void {
  // X <- P B
  for (let j = 0; j < n; j++) {
    const p = pivots[po + j]!;
    if (p === j) continue;
    const rj = xo + j * r;
    const rp = xo + p * r;
    for (let c = 0; c < r; c++) {
      const t = x[rj + c]!;
      x[rj + c] = x[rp + c]!;
      x[rp + c] = t;
    }
  }
  // L Y = P B (unit diagonal)
  for (let i = 1; i < n; i++) {
    const ri = xo + i * r;
    for (let k = 0; k < i; k++) {
      const l = lu[o + i * n + k]!;
      const rk = xo + k * r;
      for (let c = 0; c < r; c++) x[ri + c] = x[ri + c]! - l * x[rk + c]!;
    }
  }
  // U X = Y
  for (let i = n - 1; i >= 0; i--) {
    const ri = xo + i * r;
    for (let k = i + 1; k < n; k++) {
      const u = lu[o + i * n + k]!;
      const rk = xo + k * r;
      for (let c = 0; c < r; c++) x[ri + c] = x[ri + c]! - u * x[rk + c]!;
    }
    const d = lu[o + i * n + i]!;
    for (let c = 0; c < r; c++) x[ri + c] = x[ri + c]! / d;
  }
}

/** The LU factors of every matrix in a batch. */
export interface LuFactors {
  /** [..., n, n]: L strictly below the diagonal (unit diagonal implied), U on and above. */
  lu: Tensor;
  /** [..., n]: LAPACK-style row swaps, see luFactorInPlace. */
  pivots: Int32Array;
  /** [...]: the sign (±1) of each row permutation. */
  signs: Float64Array;
}

export function lu(a: Tensor): LuFactors {
  const n = squareSize('lu', a);
  const batch = sizeOf(a.shape.slice(0, -2));
  const factors = a.data.slice();
  const pivots = new Int32Array(batch * n);
  const signs = new Float64Array(batch);
  for (let t = 0; t < batch; t++) signs[t] = luFactorInPlace(factors, t * n * n, n, pivots, t * n);
  return { lu: { shape: [...a.shape], data: factors }, pivots, signs };
}

/** Inverse of each matrix (Infinity/NaN entries for a singular one). */
export function inv(a: Tensor): Tensor {
  const n = squareSize('inv', a);
  const { lu: factors, pivots } = lu(a);
  const batch = sizeOf(a.shape.slice(0, -2));
  const out = new Float64Array(a.data.length);
  for (let t = 0; t < batch; t++) {
    const o = t * n * n;
    for (let i = 0; i < n; i++) out[o + i * (n + 1)] = 1;
    luSolveInPlace(factors.data, o, n, pivots, t * n, out, o, n);
  }
  return { shape: [...a.shape], data: out };
}

/** The shapes of a solve against A [..., n, n]: B [..., n, r], the broadcast batch, the result. */
function solveShapes(what: string, a: Tensor, b: Tensor) {
  const n = squareSize(what, a);
  const rb = b.shape.length;
  if (rb < 2 || b.shape[rb - 2] !== n) {
    throw new RangeError(`${what}: right-hand side ${formatShape(b.shape)} does not fit ${formatShape(a.shape)}`);
  }
  const r = b.shape[rb - 1]!;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batchShape = broadcastShapes(aBatch, bBatch);
  if (batchShape === null) {
    throw new RangeError(`${what}: batch shapes of ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
  }
  return { n, r, aBatch, bBatch, batchShape, batch: sizeOf(batchShape), shape: [...batchShape, n, r] };
}

/** X with A X = B for A [..., n, n] and B [..., n, k]; batch dims broadcast. */
export function solve(a: Tensor, b: Tensor): Tensor {
  const { n, r, aBatch, bBatch, batchShape, batch, shape } = solveShapes('solve', a, b);
  const out = new Float64Array(batch * n * r);
  if (out.length === 0) return { shape, data: out };
  // Factor each distinct A once, however many right-hand sides share it.
  const { lu: factors, pivots } = lu(a);
  // offsets[0] counts matrices of A, offsets[1] elements of B.
  const strides = [broadcastStrides(aBatch, batchShape), broadcastStrides(bBatch, batchShape).map((s) => s * n * r)];
  const index = new Array<number>(batchShape.length).fill(0);
  const offsets = [0, 0];
  for (let t = 0; t < batch; t++) {
    const matrix = offsets[0]!;
    const xo = t * n * r;
    out.set(b.data.subarray(offsets[1]!, offsets[1]! + n * r), xo);
    luSolveInPlace(factors.data, matrix * n * n, n, pivots, matrix * n, out, xo, r);
    advanceMany(index, batchShape, strides, offsets);
  }
  return { shape, data: out };
}

/** Determinant of each matrix: sign(P) Π U_ii (exactly 0 for a matrix LU finds singular). */
export function det(a: Tensor): Tensor {
  const n = squareSize('det', a);
  const { lu: factors, signs } = lu(a);
  const out = new Float64Array(signs.length);
  for (let t = 0; t < signs.length; t++) {
    let d = signs[t]!;
    const o = t * n * n;
    for (let i = 0; i < n; i++) d *= factors.data[o + i * (n + 1)]!;
    out[t] = d === 0 ? 0 : d; // a singular matrix has det +0, whatever the permutation's sign
  }
  return { shape: a.shape.slice(0, -2), data: out };
}

/** log |det| of each matrix as Σ log |U_ii| (no overflow); -Infinity for a singular matrix. */
export function logAbsDet(a: Tensor): Tensor {
  const n = squareSize('logAbsDet', a);
  const { lu: factors, signs } = lu(a);
  const out = new Float64Array(signs.length);
  for (let t = 0; t < signs.length; t++) {
    let s = 0;
    const o = t * n * n;
    for (let i = 0; i < n; i++) s += Math.log(Math.abs(factors.data[o + i * (n + 1)]!));
    out[t] = s;
  }
  return { shape: a.shape.slice(0, -2), data: out };
}

/**
 * The lower Cholesky factor L (A = L Lᵀ) of each matrix, reading only its lower triangle.
 * A matrix that is not positive definite gets NaN from the first failing pivot on (that
 * diagonal entry, and through it everything right of and below it); it does not throw.
 */
export function cholesky(a: Tensor): Tensor {
  const n = squareSize('cholesky', a);
  const src = a.data;
  const out = new Float64Array(src.length);
  const batch = n === 0 ? 0 : src.length / (n * n);
  for (let t = 0; t < batch; t++) {
    const o = t * n * n;
    // Row by row (Cholesky–Banachiewicz): each entry is a dot product of two row prefixes of L.
    for (let i = 0; i < n; i++) {
      const ri = o + i * n;
      for (let j = 0; j <= i; j++) {
        const rj = o + j * n;
        let s = src[ri + j]!;
        for (let k = 0; k < j; k++) s -= out[ri + k]! * out[rj + k]!;
        if (i === j) out[ri + i] = s > 0 ? Math.sqrt(s) : NaN;
        else out[ri + j] = s / out[rj + j]!;
      }
    }
  }
  return { shape: [...a.shape], data: out };
}

/**
 * X with T X = B for triangular T [..., n, n] (the lower triangle when `lower`, else the upper;
 * the other is not read) and B [..., n, k]; batch dims broadcast. A zero diagonal gives Infinity/NaN.
 */
export function triangularSolve(t: Tensor, b: Tensor, lower: boolean): Tensor {
  const { n, r, aBatch: tBatch, bBatch, batchShape, batch, shape } = solveShapes('triangularSolve', t, b);
  const out = new Float64Array(batch * n * r);
  if (out.length === 0) return { shape, data: out };
  const strides = [
    broadcastStrides(tBatch, batchShape).map((s) => s * n * n),
    broadcastStrides(bBatch, batchShape).map((s) => s * n * r),
  ];
  const index = new Array<number>(batchShape.length).fill(0);
  const offsets = [0, 0];
  const td = t.data;
  for (let q = 0; q < batch; q++) {
    const o = offsets[0]!;
    const xo = q * n * r;
    out.set(b.data.subarray(offsets[1]!, offsets[1]! + n * r), xo);
    for (let step = 0; step < n; step++) {
      // Forward substitution for lower, back substitution for upper.
      const i = lower ? step : n - 1 - step;
      const ri = xo + i * r;
      const from = lower ? 0 : i + 1;
      const to = lower ? i : n;
      for (let k = from; k < to; k++) {
        const v = td[o + i * n + k]!;
        const rk = xo + k * r;
        for (let c = 0; c < r; c++) out[ri + c] = out[ri + c]! - v * out[rk + c]!;
      }
      const d = td[o + i * n + i]!;
      for (let c = 0; c < r; c++) out[ri + c] = out[ri + c]! / d;
    }
    advanceMany(index, batchShape, strides, offsets);
  }
  return { shape, data: out };
}
