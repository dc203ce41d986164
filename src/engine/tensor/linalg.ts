// Dense linear algebra on batches of square matrices [..., n, n]: LU with partial pivoting
// (the building block of inv, solve, det, logAbsDet), Cholesky, and triangular solves.
//
// Nothing here throws on a singular or indefinite matrix: a zero pivot divides as IEEE
// arithmetic says (Infinity/NaN), and the engine reports non-finite values as warnings.
//
// Each matrix goes to the kernel backend (backend/: OpenBLAS, or the JS loops); the batch loops,
// broadcasting and these conventions stay here, so they hold whichever backend runs.

import { broadcastShapes, formatShape, sizeOf } from './tensor.js';
import type { Tensor } from './tensor.js';
import { advanceMany, broadcastStrides } from './strided.js';
import { kernels } from './backend/index.js';
import type { KernelBackend } from './backend/index.js';

/** n for a batch of square matrices [..., n, n], or a RangeError. */
function squareSize(what: string, a: Tensor): number {
  const rank = a.shape.length;
  const n = a.shape[rank - 1];
  if (rank < 2 || n === undefined || a.shape[rank - 2] !== n) {
    throw new RangeError(`${what}: needs square matrices [..., n, n], got ${formatShape(a.shape)}`);
  }
  return n;
}

/** The LU factors of every matrix in a batch. */
export interface LuFactors {
  /** [..., n, n]: L strictly below the diagonal (unit diagonal implied), U on and above. */
  lu: Tensor;
  /** [..., n]: row j was swapped with row pivots[j] at step j (LAPACK's ipiv, 0-based). */
  pivots: Int32Array;
  /** [...]: the sign (±1) of each row permutation. */
  signs: Float64Array;
}

/**
 * The factorisations of one run of a program, by the storage of the matrix factored: a solve, its
 * adjoint's transposed solve, det and its adjugate, inv after logdet all factor A once. Keyed
 * weakly (a factorisation goes when its matrix does) and only within `withFactorisations`, so a
 * caller's array changed between runs is never read through stale factors.
 */
let factorisations: WeakMap<Float64Array, LuFactors> | undefined;
/** Inside withFactorisations: the cache is made by the first factorisation (most runs have none). */
let reusing = false;

/** Run `fn` with one factorisation per matrix reused across its kernels (nested calls share the outer cache). */
export function withFactorisations<T>(fn: () => T): T {
  if (reusing) return fn();
  reusing = true;
  try {
    return fn();
  } finally {
    reusing = false;
    factorisations = undefined;
  }
}

/** The cached factors of `a` (the same storage, matrices of the same size), if this run made them. */
function cachedLu(a: Tensor, n: number): LuFactors | undefined {
  const known = factorisations?.get(a.data);
  return known !== undefined && known.lu.shape.at(-1) === n ? known : undefined;
}

/**
 * P A = L U with partial pivoting for each matrix: L unit lower (stored below the diagonal), U
 * upper. A column with no non-zero pivot is skipped (its multipliers stay 0), so a singular
 * matrix gets an exactly zero U diagonal entry, as in LAPACK's getrf.
 */
export function lu(a: Tensor): LuFactors {
  const n = squareSize('lu', a);
  const known = cachedLu(a, n);
  if (known !== undefined) return known;
  const factors = factorise(a, n);
  if (reusing) (factorisations ??= new WeakMap()).set(a.data, factors);
  return factors;
}

function factorise(a: Tensor, n: number): LuFactors {
  const batch = sizeOf(a.shape.slice(0, -2));
  const factors = a.data.slice();
  const pivots = new Int32Array(batch * n);
  const signs = new Float64Array(batch);
  const backend = kernels();
  for (let t = 0; t < batch; t++) {
    if (n > 0) backend.getrf(n, factors, t * n * n, n, pivots, t * n);
    let sign = 1;
    for (let j = 0; j < n; j++) if (pivots[t * n + j] !== j) sign = -sign;
    signs[t] = sign;
  }
  return { lu: { shape: [...a.shape], data: factors }, pivots, signs };
}

/** Inverse of each matrix (Infinity/NaN entries for a singular one). */
export function inv(a: Tensor): Tensor {
  const n = squareSize('inv', a);
  const batch = sizeOf(a.shape.slice(0, -2));
  const backend = kernels();
  const known = cachedLu(a, n);
  if (known !== undefined) {
    // Factored already in this run: solve against the identity with those factors.
    const out = new Float64Array(a.data.length);
    for (let t = 0; t < batch; t++) {
      const o = t * n * n;
      for (let i = 0; i < n; i++) out[o + i * (n + 1)] = 1;
      backend.getrs(false, n, n, known.lu.data, o, n, known.pivots, t * n, out, o, n);
    }
    return { shape: [...a.shape], data: out };
  }
  const out = a.data.slice();
  if (n > 0) for (let t = 0; t < batch; t++) backend.inverse(n, out, t * n * n, n);
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

/** X with A X = B (Aᵀ X = B when `transposed`) for A [..., n, n] and B [..., n, k]; batch dims broadcast. */
export function solve(a: Tensor, b: Tensor, transposed = false): Tensor {
  const { n, r, aBatch, bBatch, batchShape, batch, shape } = solveShapes('solve', a, b);
  const out = new Float64Array(batch * n * r);
  if (out.length === 0) return { shape, data: out };
  // Factor each distinct A once, however many right-hand sides share it.
  const { lu: factors, pivots } = lu(a);
  const backend = kernels();
  // offsets[0] counts matrices of A, offsets[1] elements of B.
  const strides = [broadcastStrides(aBatch, batchShape), broadcastStrides(bBatch, batchShape).map((s) => s * n * r)];
  const index = new Array<number>(batchShape.length).fill(0);
  const offsets = [0, 0];
  for (let t = 0; t < batch; t++) {
    const matrix = offsets[0]!;
    const xo = t * n * r;
    out.set(b.data.subarray(offsets[1]!, offsets[1]! + n * r), xo);
    backend.getrs(transposed, n, r, factors.data, matrix * n * n, n, pivots, matrix * n, out, xo, r);
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
  const backend = kernels();
  for (let t = 0; t < batch; t++) {
    const o = t * n * n;
    for (let i = 0; i < n; i++) out.set(src.subarray(o + i * n, o + i * n + i + 1), o + i * n);
    const p = backend.potrf(n, out, o, n);
    if (p >= 0) failedCholesky(backend, src, out, o, n, p);
  }
  return { shape: [...a.shape], data: out };
}

/**
 * Completes a Cholesky factorisation that stopped at pivot p: the columns before p are L's (rows
 * p.. of them solve X L11ᵀ = A21, what the row-by-row algorithm computes before and after the
 * failure), and every lower entry from column p on is NaN, as that algorithm's NaN pivot makes it.
 */
function failedCholesky(backend: KernelBackend, src: Float64Array, out: Float64Array, o: number, n: number, p: number): void {
  const q = n - p;
  if (p > 0) {
    // L11 Xᵀ = A21ᵀ, with A21ᵀ (p×q) gathered from the input's rows p..n-1.
    const x = new Float64Array(p * q);
    for (let r = 0; r < q; r++) for (let j = 0; j < p; j++) x[j * q + r] = src[o + (p + r) * n + j]!;
    backend.trsm(true, false, false, p, q, out, o, n, x, 0, q);
    for (let r = 0; r < q; r++) for (let j = 0; j < p; j++) out[o + (p + r) * n + j] = x[j * q + r]!;
  }
  for (let r = p; r < n; r++) out.fill(NaN, o + r * n + p, o + r * n + r + 1);
}

/**
 * X with T X = B (Tᵀ X = B when `transposed`) for triangular T [..., n, n] (the lower triangle
 * when `lower`, else the upper; the other is not read) and B [..., n, k]; batch dims broadcast. A
 * zero diagonal gives Infinity/NaN.
 */
export function triangularSolve(t: Tensor, b: Tensor, lower: boolean, transposed = false): Tensor {
  const { n, r, aBatch: tBatch, bBatch, batchShape, batch, shape } = solveShapes('triangularSolve', t, b);
  const out = new Float64Array(batch * n * r);
  if (out.length === 0) return { shape, data: out };
  const strides = [
    broadcastStrides(tBatch, batchShape).map((s) => s * n * n),
    broadcastStrides(bBatch, batchShape).map((s) => s * n * r),
  ];
  const index = new Array<number>(batchShape.length).fill(0);
  const offsets = [0, 0];
  const backend = kernels();
  for (let q = 0; q < batch; q++) {
    const xo = q * n * r;
    out.set(b.data.subarray(offsets[1]!, offsets[1]! + n * r), xo);
    backend.trsm(lower, transposed, false, n, r, t.data, offsets[0]!, n, out, xo, r);
    advanceMany(index, batchShape, strides, offsets);
  }
  return { shape, data: out };
}
