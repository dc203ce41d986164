// The JavaScript kernel backend: the fallback when no native library loads, and the reference
// every other backend is tested against.
//
// gemm: the packed kernel packs op(B) into column panels of width 4 (each panel, k×4, is read
// sequentially and stays in L1) and computes C in 4×4 register blocks: 16 multiply-adds per 8
// loads, about 4x the i-k-j loop on V8. Transposed operands are read through strides (op(A) row i,
// column p is a[ao + i·ars + p·acs]), and packing reads op(B) the same way, so nothing is copied
// beforehand. Every loop sums over k in the same order from +0, so the results do not depend on
// which loop a shape takes, nor on the transposes.
//
// The factorisations are the textbook unblocked loops (LU with partial pivoting, row-by-row
// Cholesky, substitution), in the order of summation the tests' exact expectations rely on.

import type { KernelBackend } from './types.js';

/**
 * C (m×n, at co, leading dimension ldc) = op(A) op(B), overwritten, where op(A)[i][p] is
 * a[ao + i·ars + p·acs] and op(B)[p][j] is b[bo + p·brs + j·bcs].
 */
export type GemmLoop = (
  m: number,
  n: number,
  k: number,
  a: Float64Array,
  ao: number,
  ars: number,
  acs: number,
  b: Float64Array,
  bo: number,
  brs: number,
  bcs: number,
  c: Float64Array,
  co: number,
  ldc: number,
) => void;

/** Below this many multiply-adds, packing costs more than it saves. */
const PACK_MIN_WORK = 4096;
/** The packing buffer is kept between calls up to this many elements (8 MiB). */
const SCRATCH_KEEP = 1 << 20;
let scratch = new Float64Array(0);

function scratchOf(size: number): Float64Array {
  if (size <= scratch.length) return scratch;
  const buffer = new Float64Array(size);
  if (size <= SCRATCH_KEEP) scratch = buffer;
  return buffer;
}

/** The textbook cache-friendly loop order (i-k-j: the inner loop walks rows of op(B) and C). */
export const gemmIkj: GemmLoop = (m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc) => {
  for (let i = 0; i < m; i++) {
    const ci = co + i * ldc;
    c.fill(0, ci, ci + n);
    const ai = ao + i * ars;
    for (let p = 0; p < k; p++) {
      const aip = a[ai + p * acs]!;
      const bp = bo + p * brs;
      for (let j = 0; j < n; j++) c[ci + j] = c[ci + j]! + aip * b[bp + j * bcs]!;
    }
  }
};

/** One dot product per output: for narrow op(B) (n < 4), where a width-4 panel would waste work. */
export const gemmDot: GemmLoop = (m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc) => {
  for (let i = 0; i < m; i++) {
    const ai = ao + i * ars;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0, x = ai, y = bo + j * bcs; p < k; p++, x += acs, y += brs) s += a[x]! * b[y]!;
      c[co + i * ldc + j] = s;
    }
  }
};

/**
 * Pack op(B) (k×n) into ceil(n/4) panels, panel jp holding columns 4jp..4jp+3 row by row,
 * zero-padded. The loop order follows the storage: rows of B when it is not transposed, else its
 * rows are op(B)'s columns.
 */
function packPanels(k: number, n: number, b: Float64Array, bo: number, brs: number, bcs: number, panels: Float64Array): void {
  const full = n >> 2;
  const tail = n & 3;
  if (bcs === 1) {
    for (let p = 0; p < k; p++) {
      const row = bo + p * brs;
      for (let jp = 0; jp < full; jp++) {
        const d = (jp * k + p) * 4;
        const s = row + jp * 4;
        panels[d] = b[s]!;
        panels[d + 1] = b[s + 1]!;
        panels[d + 2] = b[s + 2]!;
        panels[d + 3] = b[s + 3]!;
      }
    }
  } else {
    for (let jp = 0; jp < full; jp++) {
      const s0 = bo + jp * 4 * bcs;
      const s1 = s0 + bcs;
      const s2 = s1 + bcs;
      const s3 = s2 + bcs;
      for (let p = 0, d = jp * k * 4, s = 0; p < k; p++, d += 4, s += brs) {
        panels[d] = b[s0 + s]!;
        panels[d + 1] = b[s1 + s]!;
        panels[d + 2] = b[s2 + s]!;
        panels[d + 3] = b[s3 + s]!;
      }
    }
  }
  if (tail > 0) {
    const s0 = bo + full * 4 * bcs;
    for (let p = 0, d = full * k * 4; p < k; p++, d += 4) {
      const s = s0 + p * brs;
      panels[d] = b[s]!;
      panels[d + 1] = tail > 1 ? b[s + bcs]! : 0;
      panels[d + 2] = tail > 2 ? b[s + 2 * bcs]! : 0;
      panels[d + 3] = 0;
    }
  }
}

/** Packed-panel gemm with a 4×4 register block (rows beyond a multiple of 4 use a 1×4 block). */
export const gemmPacked: GemmLoop = (m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc) => {
  const panelCount = (n + 3) >> 2;
  const panels = scratchOf(panelCount * k * 4);
  packPanels(k, n, b, bo, brs, bcs, panels);
  const m4 = m - (m & 3);
  const r1 = ars;
  const r2 = 2 * ars;
  const r3 = 3 * ars;
  for (let jp = 0; jp < panelCount; jp++) {
    const j0 = jp * 4;
    const w = Math.min(4, n - j0);
    const base = jp * k * 4;
    for (let i = 0; i < m4; i += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0, q = base, x0 = ao + i * ars; p < k; p++, q += 4, x0 += acs) {
        const b0 = panels[q]!, b1 = panels[q + 1]!, b2 = panels[q + 2]!, b3 = panels[q + 3]!;
        let x = a[x0]!;
        c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
        x = a[x0 + r1]!;
        c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
        x = a[x0 + r2]!;
        c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
        x = a[x0 + r3]!;
        c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
      }
      const o = co + i * ldc + j0;
      storeRow(c, o, w, c00, c01, c02, c03);
      storeRow(c, o + ldc, w, c10, c11, c12, c13);
      storeRow(c, o + 2 * ldc, w, c20, c21, c22, c23);
      storeRow(c, o + 3 * ldc, w, c30, c31, c32, c33);
    }
    for (let i = m4; i < m; i++) {
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let p = 0, q = base, x0 = ao + i * ars; p < k; p++, q += 4, x0 += acs) {
        const x = a[x0]!;
        c0 += x * panels[q]!; c1 += x * panels[q + 1]!; c2 += x * panels[q + 2]!; c3 += x * panels[q + 3]!;
      }
      storeRow(c, co + i * ldc + j0, w, c0, c1, c2, c3);
    }
  }
};

/** Write the first w (1..4) of four values to c[o..]. */
function storeRow(c: Float64Array, o: number, w: number, v0: number, v1: number, v2: number, v3: number): void {
  c[o] = v0;
  if (w > 1) c[o + 1] = v1;
  if (w > 2) c[o + 2] = v2;
  if (w > 3) c[o + 3] = v3;
}

/** Picks a loop for the shape: packed panels for real work, i-k-j for tiny products, dots for narrow op(B). */
export const gemmLoop: GemmLoop = (m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc) => {
  if (m === 0 || n === 0) return;
  if (k === 0) for (let i = 0; i < m; i++) c.fill(0, co + i * ldc, co + i * ldc + n);
  else if (n < 4) gemmDot(m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc);
  else if (m * k * n < PACK_MIN_WORK) gemmIkj(m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc);
  else gemmPacked(m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc);
};

/** Swap rows i and j (n entries each) of the matrix at x[xo..] with leading dimension ld. */
export function swapRows(x: Float64Array, xo: number, ld: number, n: number, i: number, j: number): void {
  const ri = xo + i * ld;
  const rj = xo + j * ld;
  for (let c = 0; c < n; c++) {
    const t = x[ri + c]!;
    x[ri + c] = x[rj + c]!;
    x[rj + c] = t;
  }
}

export const jsKernels: KernelBackend = {
  name: 'js',

  gemm(transA, transB, m, n, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc) {
    if (m === 0 || n === 0) return;
    const ars = transA ? 1 : lda;
    const acs = transA ? lda : 1;
    const brs = transB ? 1 : ldb;
    const bcs = transB ? ldb : 1;
    if (alpha === 1 && beta === 0) {
      gemmLoop(m, n, k, a, ao, ars, acs, b, bo, brs, bcs, c, co, ldc);
      return;
    }
    const t = new Float64Array(m * n);
    gemmLoop(m, n, k, a, ao, ars, acs, b, bo, brs, bcs, t, 0, n);
    for (let i = 0; i < m; i++) {
      const ci = co + i * ldc;
      for (let j = 0; j < n; j++) c[ci + j] = beta === 0 ? alpha * t[i * n + j]! : alpha * t[i * n + j]! + beta * c[ci + j]!;
    }
  },

  // Row by row (Cholesky–Banachiewicz): each entry is a dot product of two row prefixes of L.
  potrf(n, a, ao, lda) {
    for (let i = 0; i < n; i++) {
      const ri = ao + i * lda;
      for (let j = 0; j <= i; j++) {
        const rj = ao + j * lda;
        let s = a[ri + j]!;
        for (let k = 0; k < j; k++) s -= a[ri + k]! * a[rj + k]!;
        if (i !== j) a[ri + j] = s / a[rj + j]!;
        else if (s > 0) a[ri + i] = Math.sqrt(s);
        else return i;
      }
    }
    return -1;
  },

  getrf(n, a, ao, lda, ipiv, po) {
    let singular = -1;
    for (let j = 0; j < n; j++) {
      // Partial pivoting: the largest |entry| on or below the diagonal in column j.
      let p = j;
      let best = Math.abs(a[ao + j * lda + j]!);
      for (let i = j + 1; i < n; i++) {
        const v = Math.abs(a[ao + i * lda + j]!);
        if (v > best) {
          best = v;
          p = i;
        }
      }
      ipiv[po + j] = p;
      if (p !== j) swapRows(a, ao, lda, n, j, p);
      const rj = ao + j * lda;
      const pivot = a[rj + j]!;
      if (pivot === 0) {
        if (singular < 0) singular = j;
        continue;
      }
      for (let i = j + 1; i < n; i++) {
        const ri = ao + i * lda;
        const l = a[ri + j]! / pivot;
        a[ri + j] = l;
        for (let c = j + 1; c < n; c++) a[ri + c] = a[ri + c]! - l * a[rj + c]!;
      }
    }
    return singular;
  },

  getrs(transposed, n, nrhs, lu, lo, ldlu, ipiv, po, b, bo, ldb) {
    if (!transposed) {
      // P A = L U: X <- P B, then L Y = X (unit diagonal), then U X = Y.
      for (let j = 0; j < n; j++) if (ipiv[po + j] !== j) swapRows(b, bo, ldb, nrhs, j, ipiv[po + j]!);
      jsKernels.trsm(true, false, true, n, nrhs, lu, lo, ldlu, b, bo, ldb);
      jsKernels.trsm(false, false, false, n, nrhs, lu, lo, ldlu, b, bo, ldb);
    } else {
      // Aᵀ = Uᵀ Lᵀ P: Uᵀ Z = B, then Lᵀ W = Z, then X = Pᵀ W (the swaps in reverse order).
      jsKernels.trsm(false, true, false, n, nrhs, lu, lo, ldlu, b, bo, ldb);
      jsKernels.trsm(true, true, true, n, nrhs, lu, lo, ldlu, b, bo, ldb);
      for (let j = n - 1; j >= 0; j--) if (ipiv[po + j] !== j) swapRows(b, bo, ldb, nrhs, j, ipiv[po + j]!);
    }
  },

  trsm(lower, transposed, unitDiagonal, m, n, t, to, ldt, b, bo, ldb) {
    // op(T) is lower (forward substitution) when T is lower and not transposed, or upper and transposed.
    const forward = lower !== transposed;
    // op(T)[i][k] is t[to + i·rs + k·cs].
    const rs = transposed ? 1 : ldt;
    const cs = transposed ? ldt : 1;
    for (let step = 0; step < m; step++) {
      const i = forward ? step : m - 1 - step;
      const ri = bo + i * ldb;
      const from = forward ? 0 : i + 1;
      const to2 = forward ? i : m;
      for (let k = from; k < to2; k++) {
        const v = t[to + i * rs + k * cs]!;
        const rk = bo + k * ldb;
        for (let c = 0; c < n; c++) b[ri + c] = b[ri + c]! - v * b[rk + c]!;
      }
      if (unitDiagonal) continue;
      const d = t[to + i * ldt + i]!;
      for (let c = 0; c < n; c++) b[ri + c] = b[ri + c]! / d;
    }
  },

  inverse(n, a, ao, lda) {
    const lu = new Float64Array(n * n);
    for (let i = 0; i < n; i++) lu.set(a.subarray(ao + i * lda, ao + i * lda + n), i * n);
    const ipiv = new Int32Array(n);
    const singular = jsKernels.getrf(n, lu, 0, n, ipiv, 0);
    for (let i = 0; i < n; i++) {
      a.fill(0, ao + i * lda, ao + i * lda + n);
      a[ao + i * lda + i] = 1;
    }
    jsKernels.getrs(false, n, n, lu, 0, n, ipiv, 0, a, ao, lda);
    return singular;
  },
};
