// Matrix product [..., m, k] @ [..., k, n] -> [..., m, n], batch dims broadcast as in NumPy, and
// NumPy's 1-D operands: a vector [..., k] is a row on the left and a column on the right, and that
// dimension is dropped from the product (vector @ vector is a scalar per batch).
//
// The single-matrix kernel (gemm) is swappable through MATMUL_KERNELS (a WebAssembly SIMD gemm
// later). The JavaScript one packs B into column panels of width 4 (each panel, k×4, is read
// sequentially and stays in L1) and computes C in 4×4 register blocks: 16 multiply-adds per 8
// loads, about 4x the i-k-j loop on V8. Every path sums over k in the same order from 0, so
// the results do not depend on which path a shape takes.

import { broadcastShapes, formatShape, sizeOf } from './tensor.js';
import type { Tensor } from './tensor.js';
import { advanceMany, broadcastStrides } from './strided.js';

/** C (m×n, at co) = A (m×k, at ao) @ B (k×n, at bo), all row-major and contiguous; C is overwritten. */
export type GemmKernel = (
  m: number,
  k: number,
  n: number,
  a: Float64Array,
  ao: number,
  b: Float64Array,
  bo: number,
  c: Float64Array,
  co: number,
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

/** The textbook cache-friendly loop order (i-k-j: the inner loop walks rows of B and C). */
export const gemmIkj: GemmKernel = (m, k, n, a, ao, b, bo, c, co) => {
  c.fill(0, co, co + m * n);
  for (let i = 0; i < m; i++) {
    const ci = co + i * n;
    const ai = ao + i * k;
    for (let p = 0; p < k; p++) {
      const aip = a[ai + p]!;
      const bp = bo + p * n;
      for (let j = 0; j < n; j++) c[ci + j] = c[ci + j]! + aip * b[bp + j]!;
    }
  }
};

/** One dot product per output: for narrow B (n < 4), where a width-4 panel would waste work. */
const gemmDot: GemmKernel = (m, k, n, a, ao, b, bo, c, co) => {
  for (let i = 0; i < m; i++) {
    const ai = ao + i * k;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0, q = bo + j; p < k; p++, q += n) s += a[ai + p]! * b[q]!;
      c[co + i * n + j] = s;
    }
  }
};

/** Pack B (k×n) into ceil(n/4) panels, panel jp holding columns 4jp..4jp+3 row by row, zero-padded. */
function packPanels(k: number, n: number, b: Float64Array, bo: number, panels: Float64Array): void {
  const full = n >> 2;
  const tail = n & 3;
  for (let p = 0; p < k; p++) {
    const row = bo + p * n;
    for (let jp = 0; jp < full; jp++) {
      const d = (jp * k + p) * 4;
      const s = row + jp * 4;
      panels[d] = b[s]!;
      panels[d + 1] = b[s + 1]!;
      panels[d + 2] = b[s + 2]!;
      panels[d + 3] = b[s + 3]!;
    }
    if (tail > 0) {
      const d = (full * k + p) * 4;
      const s = row + full * 4;
      panels[d] = b[s]!;
      panels[d + 1] = tail > 1 ? b[s + 1]! : 0;
      panels[d + 2] = tail > 2 ? b[s + 2]! : 0;
      panels[d + 3] = 0;
    }
  }
}

/** Packed-panel gemm with a 4×4 register block (rows beyond a multiple of 4 use a 1×4 block). */
export const gemmPacked: GemmKernel = (m, k, n, a, ao, b, bo, c, co) => {
  const panelCount = (n + 3) >> 2;
  const panels = scratchOf(panelCount * k * 4);
  packPanels(k, n, b, bo, panels);
  const m4 = m - (m & 3);
  for (let jp = 0; jp < panelCount; jp++) {
    const j0 = jp * 4;
    const w = Math.min(4, n - j0);
    const base = jp * k * 4;
    for (let i = 0; i < m4; i += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      const a0 = ao + i * k;
      const a1 = a0 + k;
      const a2 = a1 + k;
      const a3 = a2 + k;
      for (let p = 0, q = base; p < k; p++, q += 4) {
        const b0 = panels[q]!, b1 = panels[q + 1]!, b2 = panels[q + 2]!, b3 = panels[q + 3]!;
        let x = a[a0 + p]!;
        c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
        x = a[a1 + p]!;
        c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
        x = a[a2 + p]!;
        c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
        x = a[a3 + p]!;
        c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
      }
      const o = co + i * n + j0;
      storeRow(c, o, w, c00, c01, c02, c03);
      storeRow(c, o + n, w, c10, c11, c12, c13);
      storeRow(c, o + 2 * n, w, c20, c21, c22, c23);
      storeRow(c, o + 3 * n, w, c30, c31, c32, c33);
    }
    for (let i = m4; i < m; i++) {
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      const ai = ao + i * k;
      for (let p = 0, q = base; p < k; p++, q += 4) {
        const x = a[ai + p]!;
        c0 += x * panels[q]!; c1 += x * panels[q + 1]!; c2 += x * panels[q + 2]!; c3 += x * panels[q + 3]!;
      }
      storeRow(c, co + i * n + j0, w, c0, c1, c2, c3);
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

/** Picks a loop for the shape: packed panels for real work, i-k-j for tiny products, dots for narrow B. */
export const gemm: GemmKernel = (m, k, n, a, ao, b, bo, c, co) => {
  if (m === 0 || n === 0) return;
  if (k === 0) c.fill(0, co, co + m * n);
  else if (n < 4) gemmDot(m, k, n, a, ao, b, bo, c, co);
  else if (m * k * n < PACK_MIN_WORK) gemmIkj(m, k, n, a, ao, b, bo, c, co);
  else gemmPacked(m, k, n, a, ao, b, bo, c, co);
};

/** The kernel `matmul` calls for each matrix product; replace `gemm` to swap implementations. */
export const MATMUL_KERNELS: { gemm: GemmKernel } = { gemm };

/**
 * Which operands are vectors (their last dimension only is the core; the others are batch
 * dimensions): NumPy's matmul decides it from the ranks, but a stack of tangents of a vector has
 * rank 2, so the op says it.
 */
export type VectorOperands = 'none' | 'left' | 'right' | 'both';

/**
 * A @ B over the last dims, batch dims broadcast: [..., m, k] @ [..., k, n] -> [..., m, n], and
 * with `vectors`, [..., k] @ [..., k, n] -> [..., n], [..., m, k] @ [..., k] -> [..., m],
 * [..., k] @ [..., k] -> [...]. A vector is promoted as a view (a row on the left, a column on
 * the right), so every case runs the same gemm in the same order of summation.
 */
export function matmul(a: Tensor, b: Tensor, vectors: VectorOperands = 'none'): Tensor {
  if (vectors === 'none') return matrixProduct(a, b);
  const left = vectors === 'left' || vectors === 'both';
  const right = vectors === 'right' || vectors === 'both';
  if (a.shape.length < 1 || b.shape.length < 1) {
    throw new RangeError(`matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)}`);
  }
  const row = left ? { shape: [...a.shape.slice(0, -1), 1, a.shape.at(-1)!], data: a.data } : a;
  const column = right ? { shape: [...b.shape, 1], data: b.data } : b;
  const product = matrixProduct(row, column);
  const batch = product.shape.slice(0, -2);
  const shape = [...batch, ...(left ? [] : [product.shape.at(-2)!]), ...(right ? [] : [product.shape.at(-1)!])];
  return { shape, data: product.data };
}

/** [..., m, k] @ [..., k, n] -> [..., m, n] for operands of rank >= 2. */
function matrixProduct(a: Tensor, b: Tensor): Tensor {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const mismatch = (): RangeError => new RangeError(`matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)}`);
  if (ra < 2 || rb < 2) throw mismatch();
  const m = a.shape[ra - 2]!;
  const k = a.shape[ra - 1]!;
  const n = b.shape[rb - 1]!;
  if (b.shape[rb - 2] !== k) throw mismatch();
  const aBatch = a.shape.slice(0, ra - 2);
  const bBatch = b.shape.slice(0, rb - 2);
  const batchShape = broadcastShapes(aBatch, bBatch);
  if (batchShape === null) throw mismatch();
  const batch = sizeOf(batchShape);
  const out = new Float64Array(batch * m * n);
  const shape = [...batchShape, m, n];
  if (out.length === 0) return { shape, data: out };
  const kernel = MATMUL_KERNELS.gemm;
  const aCount = sizeOf(aBatch);
  const bCount = sizeOf(bBatch);
  if (bCount === 1) {
    // One B for every batch: the batches of A stack into one tall matrix, and B is packed once.
    kernel(aCount * m, k, n, a.data, 0, b.data, 0, out, 0);
  } else if (aCount === batch && bCount === batch) {
    for (let t = 0; t < batch; t++) kernel(m, k, n, a.data, t * m * k, b.data, t * k * n, out, t * m * n);
  } else {
    const strides = [
      broadcastStrides(aBatch, batchShape).map((s) => s * m * k),
      broadcastStrides(bBatch, batchShape).map((s) => s * k * n),
    ];
    const index = new Array<number>(batchShape.length).fill(0);
    const offsets = [0, 0];
    for (let t = 0; t < batch; t++) {
      kernel(m, k, n, a.data, offsets[0]!, b.data, offsets[1]!, out, t * m * n);
      advanceMany(index, batchShape, strides, offsets);
    }
  }
  return { shape, data: out };
}
