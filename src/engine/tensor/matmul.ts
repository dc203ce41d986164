// Matrix product [..., m, k] @ [..., k, n] -> [..., m, n], batch dims broadcast as in NumPy, and
// NumPy's 1-D operands: a vector [..., k] is a row on the left and a column on the right, and that
// dimension is dropped from the product (vector @ vector is a scalar per batch).
//
// Each matrix product goes to the kernel backend's gemm (backend/: OpenBLAS, or the JS loops,
// which sum over k in the same order from 0 whatever loop a shape takes); the batch loop stays here.

import { broadcastShapes, formatShape, sizeOf } from './tensor.js';
import type { Tensor } from './tensor.js';
import { advanceMany, broadcastStrides } from './strided.js';
import { kernels } from './backend/index.js';

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
export function matmul(a: Tensor, b: Tensor, vectors: VectorOperands = 'none', transA = false, transB = false): Tensor {
  if (vectors === 'none') return matrixProduct(a, b, transA, transB);
  if (transA || transB) throw new RangeError('matmul: a vector operand has no transpose');
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

/**
 * op(A) @ op(B): [..., m, k] @ [..., k, n] -> [..., m, n] for operands of rank >= 2, where op
 * transposes the last two dims of an operand stored transposed (A as [..., k, m] with `transA`,
 * B as [..., n, k] with `transB`): gemm reads it transposed, nothing is copied.
 */
function matrixProduct(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const mismatch = (): RangeError =>
    new RangeError(`matmul: cannot multiply ${formatShape(a.shape)}${transA ? 'ᵀ' : ''} by ${formatShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  if (ra < 2 || rb < 2) throw mismatch();
  const m = a.shape[transA ? ra - 1 : ra - 2]!;
  const k = a.shape[transA ? ra - 2 : ra - 1]!;
  const n = b.shape[transB ? rb - 2 : rb - 1]!;
  if (b.shape[transB ? rb - 1 : rb - 2] !== k) throw mismatch();
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const aBatch = a.shape.slice(0, ra - 2);
  const bBatch = b.shape.slice(0, rb - 2);
  const batchShape = broadcastShapes(aBatch, bBatch);
  if (batchShape === null) throw mismatch();
  const batch = sizeOf(batchShape);
  const out = new Float64Array(batch * m * n);
  const shape = [...batchShape, m, n];
  // Nothing to compute when the result is empty, and zeros (as allocated) for an empty inner dimension.
  if (out.length === 0 || k === 0) return { shape, data: out };
  const backend = kernels();
  const aCount = sizeOf(aBatch);
  const bCount = sizeOf(bBatch);
  if (bCount === 1 && !transA) {
    // One B for every batch: the batches of A stack into one tall matrix, and B is packed once.
    backend.gemm(false, transB, aCount * m, n, k, 1, a.data, 0, lda, b.data, 0, ldb, 0, out, 0, n);
  } else if (aCount === batch && bCount === batch) {
    for (let t = 0; t < batch; t++) backend.gemm(transA, transB, m, n, k, 1, a.data, t * m * k, lda, b.data, t * k * n, ldb, 0, out, t * m * n, n);
  } else {
    const strides = [
      broadcastStrides(aBatch, batchShape).map((s) => s * m * k),
      broadcastStrides(bBatch, batchShape).map((s) => s * k * n),
    ];
    const index = new Array<number>(batchShape.length).fill(0);
    const offsets = [0, 0];
    for (let t = 0; t < batch; t++) {
      backend.gemm(transA, transB, m, n, k, 1, a.data, offsets[0]!, lda, b.data, offsets[1]!, ldb, 0, out, t * m * n, n);
      advanceMany(index, batchShape, strides, offsets);
    }
  }
  return { shape, data: out };
}
